"""Traces: runtime events -> OTel spans (GenAI conventions) -> SQLite -> list/show/export."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.runtime_tools import add, call, explode
from tuneloop.cli import app
from tuneloop.runtime.assistant import Assistant
from tuneloop.runtime.backends.fake import FakeModel
from tuneloop.runtime.events import (
    ListSink,
    ModelCall,
    MultiSink,
    RunFinished,
    RunStarted,
    ToolCallEvent,
    ValidationResult,
    new_id,
)
from tuneloop.runtime.tools import ToolRegistry
from tuneloop.tracing import TraceNotFound, TraceSink, TraceStore

ROOT = Path(__file__).resolve().parents[2]


def run_assistant(db: Path, script, tools=(add,), prompt="What is 2+3?", **kw):
    events = ListSink()
    sink = TraceSink(db, **kw)
    result = Assistant(FakeModel(script), ToolRegistry(tools), sink=MultiSink(events, sink)).run(
        prompt
    )
    return result, events.events, sink


def synthetic_run(sink: TraceSink, *, model="m1", t0=None, latency=1.0, tool_ok=None,
                  valid=None, run_id=None) -> str:  # fmt: skip
    """One run as events, with times under our control."""
    run_id = run_id or new_id()
    t0 = time.time() if t0 is None else t0
    events = [RunStarted(model=model, messages=[{"role": "user", "content": "hi"}], time=t0),
              ModelCall(model=model, prompt_hash="h", prompt_tokens=3, completion_tokens=2,
                        latency_s=latency / 2, output="out", time=t0 + latency / 2)]  # fmt: skip
    if tool_ok is not None:
        events.append(ToolCallEvent(call_id="c1", tool="add", arguments={}, ok=tool_ok,
                                    result="5" if tool_ok else None,
                                    error=None if tool_ok else "boom", time=t0 + latency * 0.7))  # fmt: skip
    if valid is not None:
        events.append(ValidationResult(passed=valid, errors=[] if valid else ["bad"],
                                       time=t0 + latency * 0.8))  # fmt: skip
    events.append(RunFinished(status="ok", steps=1, prompt_tokens=3, completion_tokens=2,
                              latency_s=latency, answer="out", time=t0 + latency))  # fmt: skip
    for e in events:
        e.run_id = run_id
        sink.emit(e)
    return run_id


# ------------------------------------------------------------------ span tree


def test_span_tree_follows_genai_conventions(tmp_path):
    db = tmp_path / "t.db"
    result, events, _ = run_assistant(db, [call("add", a=2, b=3), call("explode", x="y"), "5"],
                                      tools=(add, explode))  # fmt: skip
    trace = TraceStore(db).get_trace(result.run_id)
    (root,) = trace.spans
    assert root.name == "invoke_agent fake" and root.parent_id is None
    a = root.attributes
    assert a["gen_ai.operation.name"] == "invoke_agent" and a["gen_ai.request.model"] == "fake"
    assert a["gen_ai.usage.input_tokens"] == result.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == result.completion_tokens
    assert a["tuneloop.status"] == "ok" and a["tuneloop.tools_hash"]
    assert json.loads(a["tuneloop.event"])["kind"] == "run_started"
    names = [c.name for c in root.children]
    assert names == ["chat fake", "execute_tool add", "chat fake", "execute_tool explode",
                     "chat fake"]  # fmt: skip
    chat = root.children[0].attributes
    assert chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.response.finish_reasons"] == ["stop"]
    assert chat["tuneloop.purpose"] == "step" and chat["tuneloop.step"] == 0
    assert json.loads(chat["gen_ai.input.messages"])[0]["content"] == "What is 2+3?"
    assert "<tool_call>" in json.loads(chat["gen_ai.output.messages"])[0]["content"]
    ok_tool, bad_tool = root.children[1], root.children[3]
    assert ok_tool.attributes["gen_ai.tool.name"] == "add"
    assert ok_tool.attributes["gen_ai.tool.call.result"] == "5"
    assert json.loads(ok_tool.attributes["gen_ai.tool.call.arguments"]) == {"a": 2, "b": 3}
    assert bad_tool.status == "ERROR" and bad_tool.attributes["error.type"] == "exception"
    for span in root.walk():
        assert root.start_ns <= span.start_ns <= span.end_ns <= root.end_ns
        assert "tuneloop.event" in span.attributes
    assert trace.summary.tool_error and trace.summary.tools == ["add", "explode"]
    assert trace.summary.trace_id == result.run_id  # trace id = run id


def test_validation_and_rejection_are_span_events(tmp_path):
    db = tmp_path / "t.db"
    model = FakeModel([call("nope"), '{"x": 1}', '{"x": "a"}'])
    schema = {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}
    sink = TraceSink(db)
    result = Assistant(model, ToolRegistry([add]), output_schema=schema, sink=sink).run("q")
    (root,) = TraceStore(db).get_trace(result.run_id).spans
    events = [e for span in root.walk() for e in span.events]
    by_name = {}
    for e in events:
        by_name.setdefault(e["name"], []).append(e["attributes"])
    assert by_name["tuneloop.tool_call_rejected"][0]["tuneloop.reason"] == "unknown_tool"
    evals = by_name["gen_ai.evaluation.result"]
    assert [e["gen_ai.evaluation.score.label"] for e in evals] == ["fail", "pass"]
    assert evals[0]["gen_ai.evaluation.name"] == "json_schema" and evals[0]["tuneloop.errors"]
    assert "tuneloop.repair" in by_name
    summary = TraceStore(db).list_traces()[0]
    assert summary.failed_validation and summary.tool_error


def test_record_content_off_keeps_content_out_of_attributes(tmp_path):
    db = tmp_path / "t.db"
    result, _, _ = run_assistant(db, [call("add", a=2, b=3), "5"], record_content=False)
    (root,) = TraceStore(db).get_trace(result.run_id).spans
    for span in root.children:
        assert not {"gen_ai.input.messages", "gen_ai.output.messages",
                    "gen_ai.tool.call.arguments", "gen_ai.tool.call.result"} & set(span.attributes)  # fmt: skip


# ------------------------------------------------------------------ redaction


def test_redaction_keeps_pii_and_keys_out_of_the_db_file(tmp_path):
    db = tmp_path / "t.db"
    secret = "sk-proj-abcDEF1234567890ghijKLMN"
    prompt = f"mail jane.doe@example.com, key {secret}, header Bearer abcdef1234567890ABCDEFGH"
    result, _, sink = run_assistant(db, [f"echo {secret}"], prompt=prompt)
    sink.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("t.db"))
    assert b"jane.doe@example.com" not in raw and secret.encode() not in raw
    assert b"abcdef1234567890ABCDEFGH" not in raw
    assert b"[REDACTED_EMAIL]" in raw and b"[REDACTED_API_KEY]" in raw
    store = TraceStore(db)
    assert "[REDACTED_EMAIL]" in store.list_traces()[0].first_user
    assert "[REDACTED_API_KEY]" in store.run_events(result.run_id)[-1].answer


def test_run_events_round_trip_equals_the_emitted_events(tmp_path):
    db = tmp_path / "t.db"
    result, events, _ = run_assistant(db, [call("add", a=2, b=3), "5"])
    assert TraceStore(db).run_events(result.run_id) == events


# ------------------------------------------------------------------ the store


@pytest.fixture
def populated(tmp_path):
    """Four runs: old/fast/m1, tool error/m2, failed validation, slow with feedback."""
    db = tmp_path / "t.db"
    sink = TraceSink(db)
    now = time.time()
    ids = {
        "old": synthetic_run(sink, t0=now - 3 * 86400, latency=0.5),
        "tool": synthetic_run(sink, model="m2", t0=now - 3600, tool_ok=False),
        "invalid": synthetic_run(sink, t0=now - 1800, valid=False),
        "slow": synthetic_run(sink, t0=now - 60, latency=9.0, tool_ok=True, valid=True),
    }
    store = TraceStore(db)
    store.add_feedback(ids["slow"], rating="down", correction="better")
    store.add_feedback(ids["tool"], rating="up")
    return store, ids


def _ids(summaries) -> set[str]:
    return {s.trace_id for s in summaries}


def test_filters_each_match_and_exclude(populated):
    store, ids = populated
    assert [s.trace_id for s in store.list_traces()] == [
        ids["slow"],
        ids["invalid"],
        ids["tool"],
        ids["old"],
    ]  # newest first
    now = datetime.now(timezone.utc)
    cases = [
        ({"since": now - timedelta(days=1)}, {"slow", "invalid", "tool"}),
        ({"since": now + timedelta(days=1)}, set()),
        ({"until": now - timedelta(days=1)}, {"old"}),
        ({"model": "m2"}, {"tool"}),
        ({"model": "m3"}, set()),
        ({"failed_validation": True}, {"invalid"}),
        ({"failed_validation": False}, {"old", "tool", "slow"}),
        ({"tool_error": True}, {"tool"}),
        ({"feedback": "down"}, {"slow"}),
        ({"feedback": "up"}, {"tool"}),
        ({"feedback": "any"}, {"slow", "tool"}),
        ({"feedback": "none"}, {"old", "invalid"}),
        ({"min_latency_s": 5.0}, {"slow"}),
        ({"min_latency_s": 100.0}, set()),
        ({"status": "ok"}, set(ids)),
        ({"status": "error"}, set()),
        ({"model": "m1", "failed_validation": True}, {"invalid"}),
    ]
    for filters, expected in cases:
        assert _ids(store.list_traces(**filters)) == {ids[k] for k in expected}, filters
    assert len(store.list_traces(limit=2)) == 2


def test_prefix_ids_and_not_found(populated):
    store, ids = populated
    full = ids["slow"]
    assert store.get_trace(full[:8]).summary.trace_id == full
    with pytest.raises(TraceNotFound, match="no trace"):
        store.get_trace("ffffffffffffffff0000")
    with pytest.raises(TraceNotFound, match="not a trace id"):
        store.get_trace("xyz")


def test_ambiguous_prefix(tmp_path):
    sink = TraceSink(tmp_path / "t.db")
    synthetic_run(sink, run_id="ab" + "0" * 30)
    synthetic_run(sink, run_id="ab" + "1" * 30)
    store = TraceStore(tmp_path / "t.db")
    with pytest.raises(TraceNotFound, match="ambiguous"):
        store.get_trace("ab")
    assert store.get_trace("ab1").summary.trace_id == "ab" + "1" * 30


def test_feedback_add_and_validation(populated):
    store, ids = populated
    fb = store.add_feedback(ids["old"][:10], note="meh", tags=["x", "y"], annotator="ann")
    assert (fb.trace_id, fb.tags, fb.annotator) == (ids["old"], ["x", "y"], "ann")
    assert [f.note for f in store.feedback_for(ids["old"])] == ["meh"]
    with pytest.raises(ValueError, match="needs a rating"):
        store.add_feedback(ids["old"])
    with pytest.raises(ValueError, match="empty"):
        store.add_feedback(ids["old"], correction="  ")
    with pytest.raises(ValueError, match="rating"):
        store.add_feedback(ids["old"], rating="sideways")
    with pytest.raises(TraceNotFound):
        store.add_feedback("deadbeef", rating="up")


def test_corrupt_and_foreign_rows_are_skipped_with_a_warning(populated):
    store, ids = populated
    tid = ids["slow"]
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE spans SET attributes = '{not json' WHERE trace_id = ? AND name LIKE "
                     "'execute_tool%'", (tid,))  # fmt: skip
        conn.execute("INSERT INTO spans VALUES (?, 'ffff000011112222', NULL, 'GET /foo', 1, 2,"
                     " 'UNSET', '{}', '[]')", (tid,))  # fmt: skip
        conn.execute("INSERT INTO traces (trace_id, start_ns, tools) VALUES ('ee', 'x', '[oops')")
    assert len(store.list_traces()) == 4
    events = store.run_events(tid)
    assert [e.kind for e in events] == ["run_started", "model_call", "validation", "run_finished"]
    trace = store.get_trace(tid)
    assert [c.name for c in trace.spans[0].children] == ["chat m1"]
    joined = "\n".join(store.warnings)
    assert "unreadable row" in joined and "foreign span 'GET /foo'" in joined
    assert "unreadable summary" in joined


def test_export_jsonl(populated, tmp_path):
    store, ids = populated
    out = tmp_path / "out" / "traces.jsonl"
    assert store.export_jsonl(out, feedback="any") == 2
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["trace_id"] for r in rows] == [ids["slow"], ids["tool"]]
    assert rows[0]["summary"]["latency_s"] == 9.0
    assert [e["kind"] for e in rows[0]["events"]] == [
        "run_started", "model_call", "tool_call", "validation", "run_finished"
    ]  # fmt: skip
    assert rows[0]["feedback"][0]["correction"] == "better"
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_flush_writes_unfinished_runs_as_incomplete(tmp_path):
    sink = TraceSink(tmp_path / "t.db")
    run_id = new_id()
    for e in (RunStarted(model="m", run_id=run_id),
              ModelCall(model="m", prompt_hash="h", run_id=run_id)):  # fmt: skip
        sink.emit(e)
    assert TraceStore(tmp_path / "t.db").list_traces() == []
    sink.flush()
    (summary,) = TraceStore(tmp_path / "t.db").list_traces()
    assert summary.status == "incomplete" and summary.trace_id == run_id


def test_otlp_without_the_extra_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(ImportError, match=r"tuneloop\[otlp\]"):
        TraceSink(tmp_path / "t.db", otlp_endpoint="http://127.0.0.1:4318/v1/traces")


# ---------------------------------------------------------------- concurrency


def test_eight_threads_write_a_thousand_traces_each(tmp_path):
    db = tmp_path / "t.db"
    sink = TraceSink(db)
    t0 = time.time()
    errors = []

    def worker():
        try:
            for _ in range(1000):
                synthetic_run(sink, tool_ok=True)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    assert not errors
    store = TraceStore(db)
    summaries = store.list_traces()
    assert len(summaries) == 8000 and len({s.trace_id for s in summaries}) == 8000
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0] == 3 * 8000
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for s in summaries[::997]:
        assert [e.kind for e in store.run_events(s.trace_id)] == [
            "run_started", "model_call", "tool_call", "run_finished"
        ]  # fmt: skip
    size = sum(p.stat().st_size for p in tmp_path.iterdir())
    print(f"8x1000 traces: {elapsed:.1f} s, db+wal {size / 1e6:.1f} MB")


_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from unit.test_tracing import synthetic_run
    from tuneloop.tracing import TraceSink
    sink = TraceSink({db!r})
    i = 0
    while True:
        synthetic_run(sink, tool_ok=True)
        i += 1
        print(i, flush=True)
    """
)


def test_killed_writer_leaves_a_sound_db(tmp_path):
    db = tmp_path / "t.db"
    code = _WRITER.format(tests=str(ROOT / "tests"), db=str(db))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    committed = 0
    try:
        for line in proc.stdout:
            committed = int(line)
            if committed >= 200:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert committed >= 200, "writer died before writing"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = TraceStore(db)
    summaries = store.list_traces()
    assert len(summaries) >= committed
    for s in summaries:
        assert len(store.run_events(s.trace_id)) == 4
    assert store.warnings == []


# ------------------------------------------------------------------------ CLI


def cli(*args):
    return CliRunner().invoke(app, ["traces", *map(str, args)])


def test_cli_list_show_export_feedback(populated, tmp_path):
    store, ids = populated
    db = store.path
    res = cli("list", "--db", db)
    assert res.exit_code == 0, res.output
    assert all(ids[k][:12] in res.output for k in ids)
    res = cli("list", "--db", db, "--since", "2h", "--json")
    assert {json.loads(x)["trace_id"] for x in res.output.splitlines()} == {
        ids["slow"],
        ids["invalid"],
        ids["tool"],
    }
    res = cli("list", "--db", db, "--tool-error", "--model", "m2", "--json")
    assert [json.loads(x)["trace_id"] for x in res.output.splitlines()] == [ids["tool"]]
    res = cli("show", ids["slow"][:8], "--db", db)
    assert res.exit_code == 0, res.output
    for text in ("chat", "tool add", "validation json_schema: pass", "correction: better"):
        assert text in res.output, text
    res = cli("show", ids["slow"][:8], "--db", db, "--json")
    assert json.loads(res.output)["summary"]["trace_id"] == ids["slow"]
    out = tmp_path / "e.jsonl"
    res = cli("export", "-o", out, "--db", db, "--failed-validation")
    assert res.exit_code == 0 and "wrote 1 trace" in res.output
    correction = tmp_path / "fix.txt"
    correction.write_text("the right answer")
    res = cli("feedback", ids["old"][:8], "--down", "--correction-file", correction, "--tag",
              "a", "--tag", "b", "--note", "n", "--annotator", "me", "--db", db)  # fmt: skip
    assert res.exit_code == 0, res.output
    (fb,) = store.feedback_for(ids["old"])
    assert (fb.rating, fb.correction, fb.tags, fb.annotator) == (
        "down", "the right answer", ["a", "b"], "me"
    )  # fmt: skip


def test_cli_bad_input_is_one_line_exit_1(populated, tmp_path):
    store, ids = populated
    db = store.path
    cases = [
        (("show", "0123abc", "--db", db), "no trace"),
        (("feedback", ids["old"], "--db", db), "needs --up"),
        (
            (
                "feedback",
                ids["old"],
                "--up",
                "--correction-file",
                tmp_path / "missing.txt",
                "--db",
                db,
            ),
            "missing.txt",
        ),  # fmt: skip
        (("feedback", "0123abc", "--up", "--db", db), "no trace"),
        (("list", "--db", db, "--since", "yesterday"), "--since"),
        (("list", "--db", db, "--feedback", "maybe"), "--feedback"),
        (("list", "--db", tmp_path / "nope.db"), "no trace store"),
    ]
    for args, message in cases:
        res = cli(*args)
        assert res.exit_code == 1, (args, res.output)
        assert message in res.output and "Traceback" not in res.output, (args, res.output)


def test_chat_options_are_wired():
    res = CliRunner().invoke(app, ["chat", "--help"])
    assert "--trace-db" in res.output and "--no-trace" in res.output
