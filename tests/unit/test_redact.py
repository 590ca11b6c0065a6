"""``redact_file`` and ``tuneloop data redact`` (tuneloop.data.redact, tuneloop.cli.data_redact)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tuneloop.data.io import DataError
from tuneloop.data.redact import redact_file

CONVERSATION = {
    "messages": [
        {"role": "system", "content": "You help with accounts."},
        {"role": "user", "content": "I'm jane@example.com, call me on +44 20 7946 0958."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {
                        "name": "lookup",
                        "arguments": {
                            "email": "jane@example.com",
                            "filters": [{"ip": "10.0.0.1"}, 3, True, None],
                        },
                    },
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "c1",
            "name": "lookup",
            "content": '{"card": "4111 1111 1111 1111"}',
        },
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"name": "notify", "arguments": '{"to": "bob@corp.org"}'},
                }
            ],
        },
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look up an account; escalate to admin@corp.org.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "email": {"type": "string", "description": "e.g. someone@example.net"},
                        "description": {"type": "string"},
                    },
                },
            },
        }
    ],
    "metadata": {"source": "trace jane@example.com", "tags": ["x"]},
    "id": "conv-1",
}
PAIR = {
    "prompt": [{"role": "user", "content": "my key is AKIAIOSFODNN7EXAMPLE"}],
    "chosen": [{"role": "assistant", "content": "Never share keys."}],
    "rejected": [{"role": "assistant", "content": "Saved AKIAIOSFODNN7EXAMPLE for you."}],
}
EVAL = {
    "id": "e1",
    "input": [{"role": "user", "content": "Which address is 8.8.8.8?"}],
    "target": "8.8.8.8 is Google DNS",
    "reference": "8.8.8.8",
}


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_redact_file_round_trip(tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(src, [CONVERSATION, PAIR, EVAL])
    result = redact_file(src, dst)
    assert result.records == 3
    assert result.matches_by_kind == {
        "api_key": 2,
        "credit_card": 1,
        "email": 5,
        "ip_address": 4,
        "phone": 1,
    }
    conv, pair, ev = _read(dst)
    msgs = conv["messages"]
    assert msgs[0] == CONVERSATION["messages"][0]
    assert msgs[1]["content"] == "I'm [REDACTED_EMAIL], call me on [REDACTED_PHONE]."
    assert msgs[2]["content"] is None  # structure kept, nulls too
    assert msgs[2]["tool_calls"][0]["function"]["arguments"] == {
        "email": "[REDACTED_EMAIL]",
        "filters": [{"ip": "[REDACTED_IP_ADDRESS]"}, 3, True, None],
    }
    assert msgs[3]["content"] == '{"card": "[REDACTED_CREDIT_CARD]"}'
    assert json.loads(msgs[4]["tool_calls"][0]["function"]["arguments"]) == {
        "to": "[REDACTED_EMAIL]"
    }
    fn = conv["tools"][0]["function"]
    assert fn["description"] == "Look up an account; escalate to [REDACTED_EMAIL]."
    assert fn["parameters"]["properties"]["email"]["description"] == "e.g. [REDACTED_EMAIL]"
    assert fn["parameters"]["properties"]["description"] == {"type": "string"}
    assert conv["metadata"] == CONVERSATION["metadata"] and conv["id"] == "conv-1"
    assert pair["prompt"][0]["content"] == "my key is [REDACTED_API_KEY]"
    assert pair["chosen"] == PAIR["chosen"]
    assert ev["input"][0]["content"] == "Which address is [REDACTED_IP_ADDRESS]?"
    assert ev["target"] == "[REDACTED_IP_ADDRESS] is Google DNS"
    assert ev["reference"] == "[REDACTED_IP_ADDRESS]"


def test_redact_file_selected_kinds_and_in_place(tmp_path):
    src = tmp_path / "data.jsonl"
    _write(src, [CONVERSATION, PAIR])
    result = redact_file(src, src, ["api_key"])
    assert result.matches_by_kind == {"api_key": 2}
    conv, pair = _read(src)
    assert conv == CONVERSATION
    assert pair["rejected"][0]["content"] == "Saved [REDACTED_API_KEY] for you."
    with pytest.raises(ValueError, match="unknown PII kind"):
        redact_file(src, tmp_path / "x.jsonl", ["ssn"])
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"messages": [}', "invalid JSON"),
        ('{"messages": []}', "messages"),  # a record that does not validate: field named
        ('{"hello": "world"}', "not a known record"),
    ],
)
def test_redact_file_bad_line_leaves_no_output(tmp_path, line, message):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps(PAIR) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message) as info:
        redact_file(src, dst)
    assert info.value.line == 2
    assert not dst.exists()
    assert list(tmp_path.iterdir()) == [src]  # no temporary file left either


def _cli(cwd, *args):
    return subprocess.run(
        [sys.executable, "-m", "tuneloop.cli", "data", "redact", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_redacts_and_prints_counts(tmp_path):
    _write(tmp_path / "in.jsonl", [CONVERSATION, PAIR, EVAL])
    proc = _cli(tmp_path, "in.jsonl", "-o", "out.jsonl", "--kinds", "email,ip_address")
    assert proc.returncode == 0, proc.stderr
    assert "3 records" in proc.stdout
    counts = {
        cells[0]: int(cells[1])
        for line in proc.stdout.splitlines()
        if len(cells := line.strip("│┃ ").replace("│", " ").split()) == 2 and cells[1].isdigit()
    }
    assert counts == {"email": 5, "ip_address": 4}
    text = (tmp_path / "out.jsonl").read_text()
    assert "jane@example.com" not in text.split('"metadata"')[0]
    assert "+44 20 7946 0958" in text  # phone not selected


def test_cli_malformed_input_exits_1_without_output(tmp_path):
    (tmp_path / "in.jsonl").write_text(json.dumps(PAIR) + "\n{not json\n", encoding="utf-8")
    proc = _cli(tmp_path, "in.jsonl", "-o", "out.jsonl")
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "in.jsonl:2" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_cli_unknown_kind_and_missing_file_exit_1(tmp_path):
    _write(tmp_path / "in.jsonl", [PAIR])
    proc = _cli(tmp_path, "in.jsonl", "-o", "out.jsonl", "--kinds", "email,ssn")
    assert proc.returncode == 1 and "ssn" in proc.stderr
    proc = _cli(tmp_path, "missing.jsonl", "-o", "out.jsonl")
    assert proc.returncode == 1 and "missing.jsonl" in proc.stderr and "no such file" in proc.stderr
    assert not (tmp_path / "out.jsonl").exists()
