"""Trace mining: real runtime events (Assistant + scripted FakeModel) in, exact records out."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers.runtime_tools import add, call, explode
from tuneloop.data.io import read_jsonl
from tuneloop.data.validate import validate_files
from tuneloop.runtime.assistant import Assistant, AssistantConfig
from tuneloop.runtime.backends.fake import FakeModel
from tuneloop.runtime.events import ListSink
from tuneloop.runtime.structured import RepairBudget
from tuneloop.runtime.tools import ToolRegistry
from tuneloop.tracing.mine import MineConfig, MinedTrace, mine
from tuneloop.train.preference_data import read_preference_records

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
Q = "What is the capital of France?"
ANSWER = "The capital is Lyon."
FIX = "The capital is Paris."
BAD = '{"town": "Paris"}'  # misses the required key; as long as GOOD (no length bias)
GOOD = '{"city": "Paris"}'


def run(outputs, question=Q, tools=None, config=None, schema=None):
    """Events of one real Assistant.run, as a sink would have received them."""
    sink = ListSink()
    registry = ToolRegistry(tools) if tools else None
    Assistant(FakeModel(outputs), registry, config, output_schema=schema, sink=sink).run(question)
    return sink.events


def trace(tid, events, *feedback, tools=None) -> MinedTrace:
    return MinedTrace(trace_id=tid, events=events, feedback=list(feedback), tools=tools)


def fb(rating=None, correction=None, annotator="ann", tags=(), created=1.0) -> dict:
    return {"trace_id": "x", "rating": rating, "correction": correction, "note": None,
            "tags": list(tags), "annotator": annotator, "created": created}  # fmt: skip


def rows(out: Path, name: str) -> list[dict]:
    return [r.data for r in read_jsonl(out / f"{name}.jsonl")]


def meta(tid, reason, **extra) -> dict:
    return {"source": "tuneloop-mined", "trace_id": tid, "reason": reason, "model": "fake",
            "tags": [], **extra}  # fmt: skip


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def test_correction_gives_sft_and_pair(tmp_path):
    report = mine([trace("t1", run([ANSWER]), fb(correction=FIX, tags=["geo"]))], tmp_path)
    m = meta("t1", "correction", annotator="ann", tags=["geo"])
    assert rows(tmp_path, "sft") == [{"messages": [user(Q), assistant(FIX)], "metadata": m}]
    assert rows(tmp_path, "preferences") == [
        {"prompt": [user(Q)], "chosen": [assistant(FIX)], "rejected": [assistant(ANSWER)],
         "metadata": m}
    ]  # fmt: skip
    assert rows(tmp_path, "kto") == [] and rows(tmp_path, "annotation_queue") == []
    assert report.counts == {"sft": 1, "preferences": 1, "kto": 0, "annotation_queue": 0}
    assert report.reasons["sft"] == {"correction": 1} and report.source_traces == 1


def test_repair_success_gives_pair_and_sft(tmp_path):
    events = run([BAD, GOOD], schema=SCHEMA)
    assert [e.passed for e in events if e.kind == "validation"] == [False, True]
    mine([trace("t2", events)], tmp_path)
    m = meta("t2", "repair_success")
    assert rows(tmp_path, "preferences") == [
        {"prompt": [user(Q)], "chosen": [assistant(GOOD)],
         "rejected": [assistant(BAD)], "metadata": m}
    ]  # fmt: skip
    assert rows(tmp_path, "sft") == [{"messages": [user(Q), assistant(GOOD)], "metadata": m}]
    # A repaired run needs no annotation: its failure is already a pair.
    assert rows(tmp_path, "annotation_queue") == []


def test_thumbs_up_and_down_give_kto(tmp_path):
    up = trace("up", run(["Paris."], question="Capital of France?"), fb(rating="up"))
    down = trace("down", run(["Rome."], question="Capital of Spain?"), fb(rating="down"))
    report = mine([up, down], tmp_path)
    assert rows(tmp_path, "kto") == [
        {"prompt": [user("Capital of France?")], "completion": [assistant("Paris.")],
         "label": True, "metadata": meta("up", "thumbs_up", annotator="ann")},
        {"prompt": [user("Capital of Spain?")], "completion": [assistant("Rome.")],
         "label": False, "metadata": meta("down", "thumbs_down", annotator="ann")},
    ]  # fmt: skip
    assert rows(tmp_path, "sft") == [
        {"messages": [user("Capital of France?"), assistant("Paris.")],
         "metadata": meta("up", "thumbs_up", annotator="ann")}
    ]  # fmt: skip
    # A thumbs-down without a correction is what annotators should correct.
    (item,) = rows(tmp_path, "annotation_queue")
    assert item["trace_id"] == "down" and item["reasons"] == ["thumbs_down"]
    assert report.reasons == {"sft": {"thumbs_up": 1}, "preferences": {},
                              "kto": {"thumbs_up": 1, "thumbs_down": 1},
                              "annotation_queue": {"thumbs_down": 1}}  # fmt: skip


def test_latest_rating_of_an_annotator_counts(tmp_path):
    events = run(["Paris."])
    mine([trace("t", events, fb(rating="down", created=1), fb(rating="up", created=2))], tmp_path)
    assert [r["label"] for r in rows(tmp_path, "kto")] == [True]


def test_thumbs_up_tool_run_keeps_full_transcript(tmp_path):
    events = run([call("add", a=2, b=3), "The sum is 5."], question="2+3?", tools=[add])
    specs = ToolRegistry([add]).specs()
    mine([trace("tool", events, fb(rating="up"), tools=specs)], tmp_path)
    (tc,) = [e for e in events if e.kind == "tool_call"]
    turns = [
        {"role": "assistant", "tool_calls": [{"id": tc.call_id, "type": "function",
         "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}]},
        {"role": "tool", "content": "5", "tool_call_id": tc.call_id, "name": "add"},
        assistant("The sum is 5."),
    ]  # fmt: skip
    m = meta("tool", "thumbs_up", annotator="ann")
    assert rows(tmp_path, "sft") == [{"messages": [user("2+3?"), *turns], "tools": specs,
                                      "metadata": m}]  # fmt: skip
    assert rows(tmp_path, "kto") == [
        {"prompt": [user("2+3?")], "completion": turns, "label": True, "tools": specs,
         "metadata": m}
    ]  # fmt: skip
    assert (
        validate_files([tmp_path / "sft.jsonl"]).ok and validate_files([tmp_path / "kto.jsonl"]).ok
    )


def test_failures_go_to_the_annotation_queue(tmp_path):
    traces = [
        trace("tool_error", run([call("explode", x="now"), "It failed."], tools=[explode])),
        trace(
            "rejected",
            run([call("nope", a=1)], tools=[add], config=AssistantConfig(error_feedback=0)),
        ),  # fmt: skip
        trace(
            "invalid",
            run(
                ['{"city": 1}'],
                schema=SCHEMA,
                config=AssistantConfig(repair=RepairBudget(max_repairs=0)),
            ),
        ),  # fmt: skip
        trace(
            "fabricated",
            run(
                ["<tool_response>42</tool_response> So 42."],
                tools=[add],
                config=AssistantConfig(error_feedback=0),
            ),
        ),  # fmt: skip
        trace("fine", run(["Paris."])),
        trace(
            "corrected",
            run([call("explode", x="a"), "Oops."], tools=[explode]),
            fb(correction="The tool failed, so I cannot say."),
        ),  # fmt: skip
    ]
    report = mine(traces, tmp_path)
    queue = {item["trace_id"]: item for item in rows(tmp_path, "annotation_queue")}
    assert {k: v["reasons"] for k, v in queue.items()} == {
        "tool_error": ["tool_error"],
        "rejected": ["run_error", "tool_call_rejected"],
        "invalid": ["run_error", "validation_failed"],
        "fabricated": ["fabricated_tool_response", "run_error"],
    }
    assert queue["tool_error"] == {
        "trace_id": "tool_error", "model": "fake", "reasons": ["tool_error"],
        "prompt": [user(Q)], "outputs": [call("explode", x="now"), "It failed."],
        "answer": "It failed.", "errors": ["explode: RuntimeError: boom on now"],
    }  # fmt: skip
    assert queue["invalid"]["outputs"] == ['{"city": 1}'] and queue["invalid"]["answer"] is None
    assert any("city: 1 is not of type 'string'" in e for e in queue["invalid"]["errors"])
    assert any("'nope'" in e for e in queue["rejected"]["errors"])
    assert report.counts["annotation_queue"] == 4
    assert report.reasons["annotation_queue"]["run_error"] == 3


def test_length_policy_drop_flag_keep(tmp_path):
    long_fix = "The capital of France is Paris, on the Seine, since the tenth century."
    t = trace("t", run(["Lyon."]), fb(correction=long_fix))
    dropped = mine([t], tmp_path / "drop")
    assert rows(tmp_path / "drop", "preferences") == [] and len(rows(tmp_path / "drop", "sft")) == 1
    assert dropped.dropped["length"] == 1
    assert dropped.drops == [{"output": "preferences", "trace_id": "t", "reason": "correction",
                              "why": "length", "detail": "chosen 70 chars > 1.5 x rejected 5"}]  # fmt: skip

    flagged = mine([t], tmp_path / "flag", MineConfig(length_policy="flag"))
    (pair,) = rows(tmp_path / "flag", "preferences")
    assert pair["metadata"]["length_biased"] is True and flagged.length_bias.flagged == 1
    assert flagged.length_bias.model_dump() == {"pairs": 1, "chosen_longer": 1,
        "chosen_longer_share": 1.0, "mean_length_ratio": 14.0, "flagged": 1}  # fmt: skip

    kept = mine([t], tmp_path / "keep", MineConfig(length_policy="keep"))
    (pair,) = rows(tmp_path / "keep", "preferences")
    assert "length_biased" not in pair["metadata"] and kept.dropped["length"] == 0
    ratio = mine([t], tmp_path / "ratio", MineConfig(max_length_ratio=20))
    assert ratio.counts["preferences"] == 1


def test_correction_copying_an_eval_sample_is_dropped(tmp_path):
    leaked = "The treaty was signed in 1648 in the Westphalian cities of Osnabruck and Munster."
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(json.dumps({"id": "e1", "input": [user("When was it signed?")],
                                     "target": leaked}) + "\n")  # fmt: skip
    traces = [
        trace("leak", run(["In 1700."], question="When?"), fb(correction=leaked)),
        trace("clean", run([ANSWER]), fb(correction=FIX)),
    ]
    report = mine(traces, tmp_path / "out", MineConfig(eval_sets=[eval_file]))
    assert {r["metadata"]["trace_id"] for r in rows(tmp_path / "out", "sft")} == {"clean"}
    assert report.dropped["contamination"] == 1  # the pair went first, for its length
    assert report.dropped["length"] == 1
    assert [(d["output"], d["why"]) for d in report.drops] == [
        ("preferences", "length"), ("sft", "contamination")]  # fmt: skip
    same_len = trace("leak2", run(["The treaty was signed in 1700, in Paris, by France and Spain "
                                   "and Portugal."], question="When?"), fb(correction=leaked))  # fmt: skip
    report = mine([same_len], tmp_path / "out2", MineConfig(eval_sets=[eval_file]))
    assert report.counts["sft"] == report.counts["preferences"] == 0
    assert report.dropped["contamination"] == 2


def test_identical_corrections_are_deduplicated(tmp_path):
    a = trace("a", run([ANSWER]), fb(correction=FIX))
    b = trace("b", run([ANSWER]), fb(correction=FIX))
    report = mine([a, b], tmp_path)
    assert [r["metadata"]["trace_id"] for r in rows(tmp_path, "sft")] == ["a"]
    assert [r["metadata"]["trace_id"] for r in rows(tmp_path, "preferences")] == ["a"]
    assert report.dropped == {"length": 0, "contamination": 0, "duplicate": 2, "invalid": 0}
    kept = mine([a, b], tmp_path / "nodedup", MineConfig(dedup=False))
    assert kept.counts["sft"] == 2 and kept.dropped["duplicate"] == 0


def test_records_failing_validation_are_dropped_not_written(tmp_path):
    # The correction equals the answer: the pair carries no preference (pair_identical).
    report = mine([trace("same", run([FIX]), fb(correction=FIX))], tmp_path)
    assert rows(tmp_path, "preferences") == [] and len(rows(tmp_path, "sft")) == 1
    (drop,) = report.drops
    assert (drop["output"], drop["why"]) == ("preferences", "invalid")
    assert drop["detail"].startswith("pair_identical")
    # The runtime records the tool specs, so a tool-call transcript validates...
    events = run([call("add", a=1, b=2), "3"], question="1+2?", tools=[add])
    assert events[0].tool_specs[0]["function"]["name"] == "add"
    report = mine([trace("specs", events, fb(rating="up"))], tmp_path / "specs")
    assert report.counts["sft"] == report.counts["kto"] == 1 and report.dropped["invalid"] == 0
    # ...and without them (an older trace) it cannot (tool_call_unknown).
    events[0] = events[0].model_copy(update={"tool_specs": []})
    report = mine([trace("nospecs", events, fb(rating="up"))], tmp_path / "nospecs")
    assert report.counts["sft"] == report.counts["kto"] == 0 and report.dropped["invalid"] == 2
    assert "no tool specs were recorded" in report.warnings[0]
    assert {(d["output"], d["detail"].split(":")[0]) for d in report.drops} == {
        ("sft", "tool_call_unknown"), ("kto", "tool_call_unknown")}  # fmt: skip


def test_outputs_validate_and_carry_provenance(tmp_path):
    traces = [
        trace("c", run([ANSWER]), fb(correction=FIX, rating="down")),
        trace("r", run([BAD, GOOD], schema=SCHEMA), fb(rating="up")),
        trace("e", run([call("explode", x="now"), "It failed."], tools=[explode])),
    ]
    report = mine(traces, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "DATA_CARD.md", "annotation_queue.jsonl", "kto.jsonl", "preferences.jsonl",
        "report.json", "sft.jsonl"]  # fmt: skip
    files = [tmp_path / f"{n}.jsonl" for n in ("sft", "preferences", "kto")]
    for f in files:
        assert validate_files([f]).ok, f
    for f in files:
        for r in rows(tmp_path, f.stem):
            md = r["metadata"]
            assert md["source"] == "tuneloop-mined" and md["model"] == "fake"
            assert md["trace_id"] in {"c", "r"} and md["reason"]
    # r's thumbs-up SFT is its repair-success SFT again: one is dropped as a duplicate.
    assert report.counts == {"sft": 2, "preferences": 2, "kto": 2, "annotation_queue": 1}
    assert report.dropped == {"length": 0, "contamination": 0, "duplicate": 1, "invalid": 0}
    assert report.source_traces == 3 and report.traces == 3
    assert json.loads((tmp_path / "report.json").read_text())["counts"] == report.counts
    card = (tmp_path / "DATA_CARD.md").read_text()
    assert "| sft.jsonl | 2 |" in card and "3 trace(s) contributed" in card
    assert report.created[:4] in card and "mean chosen/rejected length ratio" in card


def test_trace_without_run_started_is_skipped_with_a_warning(tmp_path):
    good = trace("good", run([ANSWER]), fb(correction=FIX))
    bad = trace("bad", [e for e in run(["x"]) if e.kind != "run_started"], fb(correction=FIX))
    report = mine([bad, good], tmp_path)
    assert report.traces == 2 and report.traces_skipped == 1
    assert report.warnings == ["trace bad: no run_started event; skipped"]
    assert report.counts["sft"] == 1


def test_events_as_json_dicts_mine_the_same(tmp_path):
    events = run([ANSWER])
    typed = mine([trace("t", events, fb(correction=FIX))], tmp_path / "a")
    dicts = mine([trace("t", [e.model_dump(mode="json") for e in events], fb(correction=FIX))],
                 tmp_path / "b")  # fmt: skip
    assert typed.counts == dicts.counts
    assert rows(tmp_path / "a", "sft") == rows(tmp_path / "b", "sft")


def test_mined_pairs_load_through_the_dpo_loader(tmp_path):
    traces = [
        trace("c", run([ANSWER]), fb(correction=FIX)),
        trace("r", run([BAD, GOOD], schema=SCHEMA)),
    ]
    mine(traces, tmp_path)
    records = read_preference_records([tmp_path / "preferences.jsonl"], labeled=False)
    assert [r.metadata.reason for _, r in records] == ["correction", "repair_success"]
    assert records[0][0] == f"{tmp_path / 'preferences.jsonl'}:1"
    assert read_preference_records([tmp_path / "kto.jsonl"], labeled=True) == []


# ------------------------------------------------------------------ CLI


class _FakeStore:
    traces: dict = {}

    def __init__(self, path=None):
        self.path = path

    def list_traces(self, since=None, **_):
        return [types.SimpleNamespace(trace_id=t) for t in self.traces]

    def run_events(self, trace_id):
        return self.traces[trace_id][0]

    def feedback_for(self, trace_id):
        return self.traces[trace_id][1]


@pytest.fixture
def fake_store(monkeypatch):
    module = types.ModuleType("tuneloop.tracing.store")
    module.TraceStore = _FakeStore
    module.default_store_path = lambda: Path("/nonexistent/traces.db")
    monkeypatch.setitem(sys.modules, "tuneloop.tracing.store", module)
    _FakeStore.traces = {"t1": (run([ANSWER]), [fb(correction=FIX)])}
    return _FakeStore


def test_cli_mine_writes_outputs_and_refuses_a_non_empty_dir(tmp_path, fake_store):
    from tuneloop.cli import app

    out = tmp_path / "out"
    (tmp_path / "t.db").touch()
    runner = CliRunner()
    result = runner.invoke(app, ["mine", "--db", str(tmp_path / "t.db"), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"]["sft"] == 1
    again = runner.invoke(app, ["mine", "--db", str(tmp_path / "t.db"), "-o", str(out)])
    assert again.exit_code == 1 and "--force" in again.output
    forced = runner.invoke(app, ["mine", "--db", str(tmp_path / "t.db"), "-o", str(out),
                                 "--force", "--since", "2h", "--length-policy", "keep"])  # fmt: skip
    assert forced.exit_code == 0, forced.output


def test_since_parses_durations_and_iso_dates():
    from tuneloop.cli.mine import parse_since

    now = 1_000_000.0
    assert parse_since("2h", now) == now - 7200
    assert parse_since("1d", now) == now - 86400
    assert parse_since("30m", now) == now - 1800
    assert parse_since("2026-01-01T00:00:00+00:00", now) == 1767225600.0
    with pytest.raises(ValueError):
        parse_since("yesterday", now)


def test_cli_mine_over_a_real_trace_store(tmp_path):
    from tuneloop.cli import app
    from tuneloop.tracing import TraceSink, TraceStore

    sink = TraceSink(tmp_path / "traces.db")
    Assistant(FakeModel([ANSWER]), sink=sink).run(Q)
    store = TraceStore(tmp_path / "traces.db")
    (summary,) = store.list_traces()
    store.add_feedback(summary.trace_id, correction=FIX, rating="down", annotator="me")
    args = ["mine", "--db", str(tmp_path / "traces.db"), "-o", str(tmp_path / "out"), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == {
        "sft": 1, "preferences": 1, "kto": 1, "annotation_queue": 0}  # fmt: skip
    (pair,) = rows(tmp_path / "out", "preferences")
    assert pair["chosen"] == [assistant(FIX)] and pair["rejected"] == [assistant(ANSWER)]
    assert pair["metadata"]["trace_id"] == summary.trace_id
    assert pair["metadata"]["annotator"] == "me"


def test_thumbs_up_after_a_rejected_call_masks_the_rejected_turn(tmp_path):
    events = run([call("multiply", a=2, b=3), call("add", a=2, b=3), "5"], "2+3?", tools=[add])
    specs = ToolRegistry([add]).specs()
    report = mine([trace("t", events, fb(rating="up"), tools=specs)], tmp_path)
    (sft,) = rows(tmp_path, "sft")
    roles = [(m["role"], m.get("weight")) for m in sft["messages"]]
    assert roles == [("user", None), ("assistant", 0), ("user", None), ("assistant", None),
                     ("tool", None), ("assistant", None)]  # fmt: skip
    assert sft["messages"][2]["content"].startswith("[runtime]")
    (kto,) = rows(tmp_path, "kto")  # the runtime's feedback is context, not completion
    unweighted = [{k: v for k, v in m.items() if k != "weight"} for m in sft["messages"]]
    assert kto["completion"] == [assistant("5")] and kto["prompt"] == unweighted[:-1]
    # The rejected call still needs an annotator: the model should not have made it.
    assert report.reasons["annotation_queue"] == {"tool_call_rejected": 1}


def test_correction_of_a_tool_run_keeps_the_real_tool_result_as_context(tmp_path):
    events = run([call("add", a=12, b=72), "12 + 72 is 72."], question="12+72?", tools=[add])
    mine([trace("t", events, fb(correction="12 + 72 is 84."))], tmp_path)
    (sft,) = rows(tmp_path, "sft")
    roles = [m["role"] for m in sft["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert sft["messages"][1]["tool_calls"][0]["function"]["name"] == "add"
    assert sft["messages"][2]["content"] == "84"
    assert sft["messages"][-1]["content"] == "12 + 72 is 84."
    (pair,) = rows(tmp_path, "preferences")
    assert pair["prompt"] == sft["messages"][:-1]
    assert (
        pair["chosen"][0]["content"] == "12 + 72 is 84."
        and pair["rejected"][0]["content"] == "12 + 72 is 72."
    )
