"""``tuneloop traces``: list, show, export and give feedback on stored assistant runs."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated

import typer

from tuneloop.cli._common import fail, out

traces_app = typer.Typer(
    help="Inspect stored assistant runs (traces), export them, rate and correct them.",
    no_args_is_help=True,
)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="Trace store (default: $TUNELOOP_HOME/traces.db)."),
]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(text: str | None, option: str) -> datetime | None:
    """``2h``/``30m``/``1d``/``1w`` ago, or an ISO date/time (UTC unless it says otherwise)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if m:
        return datetime.now(timezone.utc) - timedelta(seconds=float(m[1]) * _UNITS[m[2]])
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"{option} {text!r}: expected a duration like 2h, 30m, 1d or an ISO date/time")
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _store(db: Path | None, must_exist: bool = True):
    from tuneloop.tracing import TraceStore, default_store_path

    path = db or default_store_path()
    if must_exist and not path.exists():
        fail(f"no trace store at {path} (run `tuneloop chat` with tools, or pass --db)")
    return TraceStore(path)


def _filters(since, until, model, failed_validation, tool_error, feedback, min_latency, limit):
    if feedback not in (None, "up", "down", "any", "none"):
        fail(f"--feedback {feedback!r}: expected up, down, any or none")
    return {
        "since": parse_when(since, "--since"), "until": parse_when(until, "--until"),
        "model": model, "failed_validation": True if failed_validation else None,
        "tool_error": True if tool_error else None, "feedback": feedback,
        "min_latency_s": min_latency, "limit": limit,
    }  # fmt: skip


SinceOpt = Annotated[str | None, typer.Option("--since", help="2h, 1d, or an ISO time.")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="2h, 1d, or an ISO time.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Only runs of this model.")]
FailedOpt = Annotated[
    bool, typer.Option("--failed-validation", help="Only runs with an invalid answer.")
]
ToolErrOpt = Annotated[
    bool, typer.Option("--tool-error", help="Only runs with a failed or rejected tool call.")
]
FeedbackOpt = Annotated[str | None, typer.Option("--feedback", help="up, down, any or none.")]
LatencyOpt = Annotated[float | None, typer.Option("--min-latency", help="Seconds, at least.")]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="At most this many.")]


@traces_app.command("list")
def list_cmd(
    db: DbOption = None, since: SinceOpt = None, until: UntilOpt = None, model: ModelOpt = None,
    failed_validation: FailedOpt = False, tool_error: ToolErrOpt = False,
    feedback: FeedbackOpt = None, min_latency: LatencyOpt = None, limit: LimitOpt = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:  # fmt: skip
    """Stored runs, newest first."""
    from rich.table import Table

    filters = _filters(since, until, model, failed_validation, tool_error, feedback, min_latency,
                       limit)  # fmt: skip
    store = _store(db)
    summaries = store.list_traces(**filters)
    if as_json:
        for s in summaries:
            print(s.model_dump_json())
        return
    table = Table(box=None, pad_edge=False)
    for col in ("id", "time", "model", "status", "tokens", "latency", "tools", "feedback"):
        # One line per run: long model names and tool lists end in an ellipsis (--json has all).
        widths = {"id": 12, "time": 14, "tokens": 7, "latency": 7}
        table.add_column(col, overflow="ellipsis", no_wrap=True,
                         min_width=widths.get(col, len(col)),
                         max_width=14 if col in ("model", "tools", "status") else None)  # fmt: skip
    for s in summaries:
        status = s.status or "?"
        if s.failed_validation:
            status += " (invalid answer)"
        table.add_row(
            s.trace_id[:12], s.start.astimezone().strftime("%m-%d %H:%M:%S"), s.model or "?",
            status, f"{s.input_tokens}/{s.output_tokens}", f"{s.latency_s:.1f}s",
            ", ".join(s.tools) + (" [red]err[/]" if s.tool_error else ""),
            (s.rating or "") + (f" ({s.feedback_count})" if s.feedback_count else ""),
        )  # fmt: skip
    out.print(table)
    if not summaries:
        out.print("[dim]no traces match[/]")
    _print_warnings(store)


def _print_warnings(store) -> None:
    from tuneloop.cli._common import err

    for warning in store.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)


def _clip(text: str | None, limit: int = 200) -> str:
    text = (text or "").replace("\n", "\\n")
    return text if len(text) <= limit else text[:limit] + "..."


def _event_line(event: dict) -> str:
    a = event.get("attributes") or {}
    name = event.get("name", "")
    if name == "gen_ai.evaluation.result":
        label = a.get("gen_ai.evaluation.score.label")
        errors = "; ".join(a.get("tuneloop.errors") or [])[:200]
        return f"validation {a.get('gen_ai.evaluation.name')}: {label}" + (
            f" ({errors})" if errors else ""
        )
    if name == "tuneloop.tool_call_rejected":
        return f"rejected tool call ({a.get('tuneloop.reason')}): {_clip(a.get('tuneloop.error'))}"
    if name == "tuneloop.repair":
        return f"repair attempt {a.get('tuneloop.attempt')}"
    if name == "tuneloop.context_policy":
        return (f"context policy {a.get('tuneloop.action')}: {a.get('tuneloop.tokens_before')} -> "
                f"{a.get('tuneloop.tokens_after')} tokens")  # fmt: skip
    return name.removeprefix("tuneloop.").replace("_", " ")


def _span_label(span) -> str:
    a = span.attributes
    op = a.get("gen_ai.operation.name")
    secs = (span.end_ns - span.start_ns) / 1e9
    if op == "chat":
        output = json.loads(a.get("gen_ai.output.messages", "[{}]"))[0].get("content")
        return (f"[bold]chat[/] {a.get('tuneloop.purpose')} step {a.get('tuneloop.step')}: "
                f"{a.get('gen_ai.usage.input_tokens')}+{a.get('gen_ai.usage.output_tokens')} "
                f"tokens, {secs:.2f}s -> {_escape(_clip(output))}")  # fmt: skip
    if op == "execute_tool":
        args = a.get("gen_ai.tool.call.arguments", "")
        shown = (f"[red]error ({a.get('error.type')})[/]" if span.status == "ERROR"
                 else _escape(_clip(a.get("gen_ai.tool.call.result"))))  # fmt: skip
        return (
            f"[bold]tool[/] {a.get('gen_ai.tool.name')}({_escape(args)}) -> {shown} ({secs:.2f}s)"
        )
    return f"[bold]{span.name}[/]"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@traces_app.command("show")
def show(
    trace_id: Annotated[str, typer.Argument(help="Trace id or a unique prefix of it.")],
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="The whole trace as JSON.")] = False,
) -> None:
    """One run as a tree: model calls, tool calls, validation, repairs, feedback."""
    from rich.tree import Tree

    from tuneloop.tracing import TraceNotFound

    store = _store(db)
    try:
        trace = store.get_trace(trace_id)
    except TraceNotFound as exc:
        fail(str(exc))
    if as_json:
        print(trace.model_dump_json())
        return
    s = trace.summary
    head = (f"[bold]{s.trace_id}[/] {s.model} {s.status} - {s.steps} step(s), "
            f"{s.input_tokens}+{s.output_tokens} tokens, {s.latency_s:.2f}s")  # fmt: skip
    if s.error_type:
        head += f" [red]{_escape(s.error_type)}[/]"
    tree = Tree(head)
    if s.first_user:
        tree.add(f"user: {_escape(_clip(s.first_user))}")
    for root in trace.spans:
        for event in root.events:
            tree.add(_escape(_event_line(event)))
        for child in root.children:
            node = tree.add(_span_label(child))
            for event in child.events:
                node.add(_escape(_event_line(event)))
    for fb in trace.feedback:
        parts = [fb.rating or "", f"note: {fb.note}" if fb.note else "",
                 f"correction: {_clip(fb.correction)}" if fb.correction else "",
                 f"tags: {', '.join(fb.tags)}" if fb.tags else ""]  # fmt: skip
        tree.add(
            f"feedback by {_escape(fb.annotator)}: " + _escape(" ".join(p for p in parts if p))
        )
    out.print(tree)
    _print_warnings(store)


@traces_app.command("export")
def export_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL file to write.")],
    db: DbOption = None, since: SinceOpt = None, until: UntilOpt = None, model: ModelOpt = None,
    failed_validation: FailedOpt = False, tool_error: ToolErrOpt = False,
    feedback: FeedbackOpt = None, min_latency: LatencyOpt = None, limit: LimitOpt = None,
) -> None:  # fmt: skip
    """Write matching traces as JSONL: trace_id, summary, events, feedback per line."""
    filters = _filters(since, until, model, failed_validation, tool_error, feedback, min_latency,
                       limit)  # fmt: skip
    store = _store(db)
    n = store.export_jsonl(output, **filters)
    out.print(f"wrote {n} trace(s) to {output}", highlight=False)
    _print_warnings(store)


@traces_app.command("feedback")
def feedback_cmd(
    trace_id: Annotated[str, typer.Argument(help="Trace id or a unique prefix of it.")],
    up: Annotated[bool, typer.Option("--up", help="The run was good.")] = False,
    down: Annotated[bool, typer.Option("--down", help="The run was bad.")] = False,
    correction: Annotated[
        str | None, typer.Option("--correction", help="The answer it should have given.")
    ] = None,
    correction_file: Annotated[
        Path | None, typer.Option("--correction-file", help="File holding the correction.")
    ] = None,
    note: Annotated[str | None, typer.Option("--note")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Repeatable.")] = None,
    annotator: Annotated[str, typer.Option("--annotator")] = "cli",
    db: DbOption = None,
) -> None:
    """Rate a run (--up/--down) and/or record the answer it should have given."""
    from tuneloop.tracing import TraceNotFound

    if up and down:
        fail("give --up or --down, not both")
    if correction is not None and correction_file is not None:
        fail("give --correction or --correction-file, not both")
    if correction_file is not None:
        try:
            correction = correction_file.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"--correction-file {correction_file}: {exc.strerror or exc}")
    rating = "up" if up else "down" if down else None
    if rating is None and correction is None:
        fail("feedback needs --up, --down, --correction or --correction-file")
    store = _store(db)
    try:
        fb = store.add_feedback(trace_id, rating=rating, correction=correction, note=note,
                                tags=tag or (), annotator=annotator)  # fmt: skip
    except (TraceNotFound, ValueError) as exc:
        fail(str(exc))
    out.print(f"feedback {fb.id} recorded on trace {fb.trace_id}", highlight=False)
