"""Rejected sides and undesirable KTO completions may hold invalid tool calls (that is
what they teach away from); the same call on a chosen side is an error."""

from __future__ import annotations

import json

from tuneloop.data.validate import ValidateConfig, validate_files

TOOLS = [{"type": "function", "function": {"name": "convert_currency", "parameters": {
    "type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]}}}]
PROMPT = [{"role": "user", "content": "Convert 88 euros to dollars."}]
GOOD = [{"role": "assistant", "tool_calls": [{"type": "function", "function": {
    "name": "convert_currency", "arguments": {"amount": 88}}}]}]
BAD = [{"role": "assistant", "tool_calls": [{"type": "function", "function": {
    "name": "convert_currency", "arguments": {"amount": "88 euros"}}}]}]


def _tool_findings(tmp_path, rows):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = validate_files([path], ValidateConfig())
    return {(f.check, f.line) for f in report.findings if f.check.startswith("tool_")}


def test_invalid_call_on_rejected_side_is_allowed(tmp_path):
    rows = [{"prompt": PROMPT, "chosen": GOOD, "rejected": BAD, "tools": TOOLS}]
    assert _tool_findings(tmp_path, rows) == set()


def test_invalid_call_on_chosen_side_is_an_error(tmp_path):
    rows = [{"prompt": PROMPT, "chosen": BAD, "rejected": GOOD, "tools": TOOLS}]
    assert _tool_findings(tmp_path, rows) == {("tool_args_invalid", 1)}


def test_kto_label_decides(tmp_path):
    rows = [
        {"prompt": PROMPT, "completion": BAD, "label": False, "tools": TOOLS},
        {"prompt": PROMPT, "completion": BAD, "label": True, "tools": TOOLS},
    ]
    assert _tool_findings(tmp_path, rows) == {("tool_args_invalid", 2)}
