"""The annotation web app: blind pairwise comparisons, trace review, the failure queue.

Server-rendered HTML; every piece of model or user text goes through ``html.escape``
(responses are untrusted). The side a response is shown on is a pure function of
``(seed, item, annotator)``, so the server can check the client's claim without state.
"""

from __future__ import annotations

import hmac
import json
import random
from html import escape
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from tuneloop.annotate.store import MAX_NOTE, AnnotationError, AnnotationStore, Item
from tuneloop.tracing import SpanRecord, TraceNotFound, TraceStore

RUBRIC = ("helpful", "correct", "concise", "safe", "format")
"""Tags offered as checkboxes next to every comparison."""
COOKIE = "tuneloop_annotate_token"


def shown_left(seed: int | None, item_id: str, annotator: str) -> Literal["a", "b"]:
    """Which canonical response (``a`` or ``b``) this annotator sees on the left."""
    rng = random.Random(f"{seed}:{item_id}:{annotator}")
    return "a" if rng.random() < 0.5 else "b"


class JudgeRequest(BaseModel):
    item_id: str = Field(min_length=1, max_length=64)
    annotator: str = Field(min_length=1, max_length=100)
    choice: Literal["left", "right", "tie", "skip"]
    shown_left: Literal["a", "b"]
    tags: list[Annotated[str, Field(max_length=50)]] = Field(default_factory=list, max_length=20)
    note: str = Field("", max_length=MAX_NOTE)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _page(title: str, body: str, script: str = "") -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_CSS}</style></head><body><nav><a href='/'>tuneloop annotate</a></nav>"
        f"{body}<script>{script}</script></body></html>"
    )


def _messages_html(messages: list[dict[str, Any]]) -> str:
    parts = []
    for m in messages:
        text = m.get("content") or ""
        calls = m.get("tool_calls")
        if calls:
            text += ("\n" if text else "") + json.dumps(calls, indent=1, ensure_ascii=False)
        parts.append(f"<div class='msg {escape(str(m.get('role')))}'><b>{escape(str(m.get('role')))}"
                     f"</b><pre>{escape(text)}</pre></div>")  # fmt: skip
    return "".join(parts)


def create_app(store: AnnotationStore, *, trace_store: TraceStore | None = None,
               token: str | None = None, seed: int | None = None) -> FastAPI:  # fmt: skip
    """The app. ``token``: every request must carry it (query, cookie or Bearer header)."""
    app = FastAPI(title="tuneloop annotate", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store, app.state.trace_store, app.state.seed = store, trace_store, seed
    app.state.shown_left = lambda iid, annotator: shown_left(seed, iid, annotator)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, f"{where}: {first.get('msg')}")

    if token:

        @app.middleware("http")
        async def _auth(request: Request, call_next):
            header = request.headers.get("authorization", "")
            given = [request.query_params.get("token"), request.cookies.get(COOKIE),
                     header[7:] if header.lower().startswith("bearer ") else None]  # fmt: skip
            if not any(g and hmac.compare_digest(g.encode(), token.encode()) for g in given):
                return _error(401, "missing or wrong token")
            response = await call_next(request)
            if request.cookies.get(COOKIE) != token:
                response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response

    @app.get("/")
    def index(annotator: str | None = None) -> HTMLResponse:
        rows = ""
        if annotator:
            done, total = store.progress(annotator)
            qdone, qtotal = store.progress(annotator, "queue")
            rows = f"<p>{escape(annotator)}: comparisons {done} / {total}, queue {qdone} / {qtotal}</p>"
        body = (f"<h1>Annotate</h1>{rows}<form action='/compare'><label>Your name "
                f"<input name='annotator' required maxlength='100' value='{escape(annotator or '')}'>"
                "</label> <button>Compare responses</button> <button formaction='/queue'>"
                "Work the failure queue</button></form><p><a href='/traces'>Review traces</a></p>")  # fmt: skip
        return _page("tuneloop annotate", body)

    @app.get("/compare", response_model=None)
    def compare(annotator: str = "") -> HTMLResponse | JSONResponse:
        if not annotator.strip() or len(annotator) > 100:
            return _error(400, "annotator: give your name as ?annotator=NAME")
        done, total = store.progress(annotator)
        item = store.next_item(annotator)
        progress = f"<p id='progress'>{done} / {total}</p>"
        if item is None:
            return _page("All done", f"<h1 id='done'>All done</h1>{progress}"
                                     f"<p>{escape(annotator)} has judged every comparison.</p>")  # fmt: skip
        return _page("Compare", _compare_body(item, annotator, shown_left(seed, item.id, annotator),
                                              progress), _COMPARE_JS)  # fmt: skip

    @app.post("/api/judge")
    def judge(req: JudgeRequest) -> JSONResponse:
        item = store.get_item(req.item_id)
        if item is None or item.kind != "pair":
            return _error(404, f"no comparison item {req.item_id!r}")
        if not req.annotator.strip():
            return _error(400, "annotator: missing")
        expected = shown_left(seed, item.id, req.annotator)
        if req.shown_left != expected:
            return _error(400, "shown_left does not match what this annotator was shown")
        if store.has_judged(item.id, req.annotator):
            return _error(409, f"{req.annotator} has already judged item {item.id}")
        other = "b" if expected == "a" else "a"
        verdict = {"left": expected, "right": other}.get(req.choice, req.choice)
        try:
            store.record(item.id, req.annotator, verdict, expected, req.tags, req.note)
        except AnnotationError as exc:
            return _error(400, str(exc))
        done, total = store.progress(req.annotator)
        return JSONResponse({"ok": True, "verdict": verdict, "done": done, "total": total})

    @app.get("/traces", response_model=None)
    def traces() -> HTMLResponse | JSONResponse:
        if trace_store is None:
            return _error(404, "no trace store (start with --traces-db)")
        rows = "".join(
            f"<tr><td><a href='/traces/{escape(s.trace_id)}'>{escape(s.trace_id[:12])}</a></td>"
            f"<td>{escape(str(s.model))}</td><td>{escape(str(s.status))}</td>"
            f"<td>{escape(s.rating or '')}</td><td>{escape((s.first_user or '')[:120])}</td></tr>"
            for s in trace_store.list_traces(limit=500)
        )
        return _page("Traces", "<h1>Traces</h1><table><tr><th>id</th><th>model</th><th>status"
                               f"</th><th>rating</th><th>first user message</th></tr>{rows}</table>")  # fmt: skip

    @app.get("/traces/{trace_id}", response_model=None)
    def trace_page(trace_id: str) -> HTMLResponse | JSONResponse:
        if trace_store is None:
            return _error(404, "no trace store (start with --traces-db)")
        try:
            trace = trace_store.get_trace(trace_id)
        except TraceNotFound as exc:
            return _error(404, str(exc))
        return _page(f"Trace {trace.summary.trace_id[:12]}", _trace_body(trace))

    @app.post("/traces/{trace_id}/feedback", response_model=None)
    def trace_feedback(trace_id: str, rating: str = Form(""), correction: str = Form(""),
                       note: str = Form("", max_length=MAX_NOTE), tags: str = Form(""),
                       annotator: str = Form("web", max_length=100)) -> Any:  # fmt: skip
        if trace_store is None:
            return _error(404, "no trace store (start with --traces-db)")
        try:
            fb = trace_store.add_feedback(
                trace_id, rating=rating or None, correction=correction or None, note=note or None,
                tags=[t.strip() for t in tags.split(",") if t.strip()], annotator=annotator or "web",
            )  # fmt: skip
        except TraceNotFound as exc:
            return _error(404, str(exc))
        except ValueError as exc:
            return _error(400, str(exc))
        return RedirectResponse(f"/traces/{fb.trace_id}", status_code=303)

    @app.get("/queue", response_model=None)
    def queue(annotator: str = "") -> HTMLResponse | JSONResponse:
        if not annotator.strip() or len(annotator) > 100:
            return _error(400, "annotator: give your name as ?annotator=NAME")
        done, total = store.progress(annotator, "queue")
        item = store.next_item(annotator, "queue")
        if item is None:
            return _page(
                "Queue done", f"<h1 id='done'>Queue done</h1><p id='progress'>{done} / {total}</p>"
            )
        return _page("Queue", _queue_body(item, annotator, done, total))

    @app.post("/api/queue", response_model=None)
    def queue_answer(item_id: str = Form(..., max_length=64), annotator: str = Form(..., max_length=100),
                     action: Literal["correct", "skip"] = Form(...), correction: str = Form(""),
                     note: str = Form("", max_length=MAX_NOTE)) -> Any:  # fmt: skip
        item = store.get_item(item_id)
        if item is None or item.kind != "queue":
            return _error(404, f"no queue item {item_id!r}")
        if not annotator.strip():
            return _error(400, "annotator: missing")
        if action == "correct":
            if trace_store is None:
                return _error(400, "no trace store to record the correction in (--traces-db)")
            if not correction.strip():
                return _error(400, "correction: empty")
            try:
                trace_store.add_feedback(item.source["trace_ids"][0], correction=correction,
                                         note=note or None, annotator=annotator,
                                         tags=list(item.source.get("reasons") or []))  # fmt: skip
            except (TraceNotFound, ValueError) as exc:
                return _error(400, str(exc))
        # Queue items are never exported as pairs: the judgement only marks the item done.
        store.record(
            item.id, annotator, "skip", "a", ["corrected"] if action == "correct" else [], note
        )
        return RedirectResponse(f"/queue?annotator={quote(annotator)}", status_code=303)

    return app


def _compare_body(item: Item, annotator: str, left: str, progress: str) -> str:
    right = "b" if left == "a" else "a"
    resp = {"a": item.response_a, "b": item.response_b}
    boxes = "".join(
        f"<label><input type='checkbox' name='tag' value='{t}'> {t}</label> " for t in RUBRIC
    )
    data = json.dumps({"item_id": item.id, "annotator": annotator, "shown_left": left})
    return (
        f"<h1>Which response is better?</h1>{progress}<div id='item' data-judge='{escape(data)}'>"
        f"<h2>Prompt</h2>{_messages_html(item.prompt)}<div class='cols'>"
        f"<div class='col'><h2>A</h2>{_messages_html(resp[left])}</div>"
        f"<div class='col'><h2>B</h2>{_messages_html(resp[right])}</div></div>"
        f"<p>{boxes}</p><textarea id='note' maxlength='{MAX_NOTE}' placeholder='note (optional)'>"
        "</textarea><p><button data-choice='left'>A is better (a, &larr;)</button> "
        "<button data-choice='right'>B is better (b, &rarr;)</button> "
        "<button data-choice='tie'>Tie (t)</button> <button data-choice='skip'>Skip (s)</button></p>"
        "<p id='status'></p></div>"
    )


def _span_html(span: SpanRecord) -> str:
    a = span.attributes
    label = escape(span.name)
    if a.get("gen_ai.operation.name") == "chat":
        try:
            out = json.loads(a.get("gen_ai.output.messages", "[{}]"))[0].get("content") or ""
        except (ValueError, IndexError, AttributeError):
            out = ""
        label = f"<b>model call</b> ({escape(str(a.get('tuneloop.purpose', '')))})<pre>{escape(str(out))}</pre>"
    elif a.get("gen_ai.operation.name") == "execute_tool":
        result = a.get("error.type") if span.status == "ERROR" else a.get("gen_ai.tool.call.result")
        label = (f"<b>tool</b> {escape(str(a.get('gen_ai.tool.name')))}("
                 f"{escape(str(a.get('gen_ai.tool.call.arguments', '')))}) &rarr; "
                 f"<pre>{escape(str(result))}</pre>")  # fmt: skip
    events = "".join(f"<li>{escape(str(e.get('name', '')))}</li>" for e in span.events)
    children = "".join(_span_html(c) for c in span.children)
    return f"<li>{label}<ul>{events}{children}</ul></li>"


def _trace_body(trace) -> str:
    s = trace.summary
    feedback = "".join(
        f"<li>{escape(fb.annotator)}: {escape(fb.rating or '')} {escape(fb.note or '')}"
        f"{'<pre>' + escape(fb.correction) + '</pre>' if fb.correction else ''}</li>"
        for fb in trace.feedback
    )
    return (
        f"<h1>Trace {escape(s.trace_id)}</h1><p>{escape(str(s.model))} &middot; {escape(str(s.status))}"
        f" &middot; {s.steps} step(s)</p><h2>User</h2><pre>{escape(s.first_user or '')}</pre>"
        f"<h2>Run</h2><ul class='tree'>{''.join(_span_html(r) for r in trace.spans)}</ul>"
        f"<h2>Feedback</h2><ul>{feedback}</ul>"
        f"<form method='post' action='/traces/{escape(s.trace_id)}/feedback'>"
        "<label><input type='radio' name='rating' value='up'> &#128077;</label> "
        "<label><input type='radio' name='rating' value='down'> &#128078;</label><br>"
        "<textarea name='correction' placeholder='corrected answer'></textarea><br>"
        f"<textarea name='note' maxlength='{MAX_NOTE}' placeholder='note'></textarea><br>"
        "<input name='tags' placeholder='tags, comma separated'> "
        "<input name='annotator' placeholder='your name' value='web'> <button>Save</button></form>"
    )


def _queue_body(item: Item, annotator: str, done: int, total: int) -> str:
    src = item.source
    errors = "".join(f"<li><pre>{escape(str(e))}</pre></li>" for e in src.get("errors") or [])
    reasons = ", ".join(escape(str(r)) for r in src.get("reasons") or [])
    return (
        f"<h1>Failure queue</h1><p id='progress'>{done} / {total}</p><p>trace "
        f"{escape(str((src.get('trace_ids') or [''])[0]))} &middot; {reasons}</p>"
        f"<h2>Prompt</h2>{_messages_html(item.prompt)}<h2>Model outputs</h2>"
        f"{_messages_html(item.response_a)}<h2>Errors</h2><ul>{errors}</ul>"
        f"<form method='post' action='/api/queue'><input type='hidden' name='item_id' value='{escape(item.id)}'>"
        f"<input type='hidden' name='annotator' value='{escape(annotator)}'>"
        "<textarea name='correction' placeholder='the answer the assistant should have given'></textarea><br>"
        f"<textarea name='note' maxlength='{MAX_NOTE}' placeholder='note'></textarea><br>"
        "<button name='action' value='correct'>Save correction</button> "
        "<button name='action' value='skip'>Skip</button></form>"
    )


_CSS = """body{font-family:system-ui,sans-serif;margin:1rem 2rem}pre{white-space:pre-wrap;
background:#f6f6f6;padding:.5rem}.cols{display:flex;gap:1rem}.col{flex:1;border:1px solid #ccc;
padding:.5rem}textarea{width:100%;min-height:3rem}nav{margin-bottom:1rem}"""

_COMPARE_JS = """
const box = document.getElementById('item');
const base = JSON.parse(box.dataset.judge);
let sent = false;
async function judge(choice) {
  if (sent) return;
  sent = true;
  const tags = [...document.querySelectorAll("input[name=tag]:checked")].map(e => e.value);
  const note = document.getElementById('note').value;
  const r = await fetch('/api/judge', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({...base, choice, tags, note})});
  if (r.ok) { location.reload(); return; }
  sent = false;
  document.getElementById('status').textContent = (await r.json()).error || r.statusText;
}
document.querySelectorAll('button[data-choice]').forEach(b =>
  b.addEventListener('click', () => judge(b.dataset.choice)));
const KEYS = {a: 'left', ArrowLeft: 'left', b: 'right', ArrowRight: 'right', t: 'tie', s: 'skip'};
document.addEventListener('keydown', e => {
  if (e.target.tagName === 'TEXTAREA' || e.target.tagName === 'INPUT') return;
  if (KEYS[e.key]) { e.preventDefault(); judge(KEYS[e.key]); }
});
"""
