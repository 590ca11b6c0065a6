"""The assistant loop on the real default model: tool calls that run, schemas that hold."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from tuneloop.runtime.assistant import Assistant, AssistantConfig
from tuneloop.runtime.backends.local import LocalEngine
from tuneloop.runtime.builtin_tools import builtin_registry
from tuneloop.runtime.events import JsonlSink, parse_event
from tuneloop.runtime.structured import RepairBudget

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(default_model_dir):
    return LocalEngine.from_ref(str(default_model_dir))


@pytest.mark.parametrize(
    "question, expected",
    [
        ("What is 1234 * 5678?", "7006652"),
        ("What is 98765 - 4321?", "94444"),
        ("Compute 17 * 23.", "391"),
    ],
)
def test_calculator_call_gives_the_exact_result(engine, question, expected):
    tools = builtin_registry(["calculator"])
    config = AssistantConfig(tool_choice="required", max_steps=3, generation={"max_new_tokens": 64})
    result = Assistant(engine, tools, config).run(question)
    call = result.tool_calls[0]
    assert call.tool == "calculator" and call.ok, call
    assert call.result == expected, (call.arguments, call.result)
    # The transcript the model saw holds the real result in a tool message.
    assert {
        "role": "tool",
        "tool_call_id": call.call_id,
        "name": "calculator",
        "content": expected,
    } in result.messages


SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "country": {"type": "string", "maxLength": 40},
        "population_millions": {"type": "number", "minimum": 0},
        "landmarks": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 3},
    },
    "required": ["city", "country", "population_millions", "landmarks"],
    "additionalProperties": False,
}
CITIES = ["Paris", "Tokyo", "Cairo", "Lima", "Oslo", "Nairobi", "Hanoi", "Quito", "Rome", "Seoul",
          "Lagos", "Dublin", "Madrid", "Sydney", "Toronto", "Mumbai", "Berlin", "Havana", "Vienna", "Riga"]  # fmt: skip


def test_schema_answers_always_validate_without_repairs(engine, tmp_path):
    config = AssistantConfig(repair=RepairBudget(max_repairs=0), generation={"max_new_tokens": 160})
    sink = JsonlSink(tmp_path / "events.jsonl")
    assistant = Assistant(engine, config=config, output_schema=SCHEMA, sink=sink)
    valid = 0
    for city in CITIES:
        result = assistant.run(f"Describe {city} as JSON.")
        assert result.ok, (city, result.error)
        jsonschema.validate(json.loads(result.answer), SCHEMA)
        assert result.value == json.loads(result.answer)
        valid += 1
    assert valid == 20
    events = [parse_event(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    calls = [e for e in events if e.kind == "model_call"]
    assert len(calls) == 20 and all(c.constrained for c in calls)
    assert sum(e.kind == "validation" and e.passed for e in events) == 20


def tuneloop(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tuneloop.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_tool_call_shows_call_and_result(default_model_dir, tmp_path):
    trace, db = tmp_path / "trace.jsonl", tmp_path / "traces.db"
    result = tuneloop("chat", "--tools", "calculator", "-p", "What is 1234 * 5678?",
                      "--trace-file", str(trace), "--trace-db", str(db))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "calculator(" in result.stderr and "-> 7006652" in result.stderr
    tool_events = [json.loads(x) for x in trace.read_text().splitlines() if '"tool_call"' in x]
    assert tool_events[0]["result"] == "7006652"
    # The run is in the trace store, with tokens and latency, and its tree shows the call.
    listed = tuneloop("traces", "list", "--db", str(db), "--json")
    assert listed.returncode == 0, listed.stderr
    (summary,) = [json.loads(x) for x in listed.stdout.splitlines()]
    assert summary["input_tokens"] > 0 and summary["output_tokens"] > 0 and summary["latency_s"] > 0
    assert summary["tools"] == ["calculator"] and summary["status"] == "ok"
    shown = tuneloop("traces", "show", summary["trace_id"][:12], "--db", str(db))
    assert shown.returncode == 0 and 'tool calculator({"expression"' in shown.stdout
    assert "7006652" in shown.stdout


def test_cli_output_schema_prints_valid_json(default_model_dir, tmp_path):
    schema_file = tmp_path / "city.json"
    schema_file.write_text(json.dumps(SCHEMA))
    result = tuneloop("chat", "--output-schema", str(schema_file), "-p", "Describe Paris as JSON.",
                      "--no-trace")  # fmt: skip
    assert result.returncode == 0, result.stderr
    jsonschema.validate(json.loads(result.stdout), SCHEMA)


def test_cli_bad_schema_file_fails_before_loading(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "object",\n "properties": {"a": {"type": "nope"}}}')
    result = tuneloop("chat", "--output-schema", str(bad), "-p", "x")
    assert (
        result.returncode == 1
        and "bad.json: invalid JSON Schema at properties/a/type" in result.stderr
    )
    missing_root = tuneloop("chat", "--tools", "read_file", "-p", "x")
    assert missing_root.returncode == 1 and "--tools-root" in missing_root.stderr
