"""Converted datasets render with the real default model's chat template and train the
answer: SmolLM2's template has no tool support, so tool specs and calls go through the
Hermes text protocol, and the ``<tool_call>`` JSON must be among the trained tokens."""

from __future__ import annotations

import json

import pytest

from tuneloop.data.formats import convert_file
from tuneloop.data.io import read_records
from tuneloop.data.records import to_chat_messages, tools_as_dicts
from tuneloop.models.chat_template import IGNORE_INDEX, render_for_training

pytestmark = pytest.mark.integration

STOCK_SPEC = {
    "name": "get_stock_price",
    "description": "Latest price of a stock.",
    "parameters": {
        "type": "object",
        "properties": {"symbol": {"type": "string"}},
        "required": ["symbol"],
    },
}
CALL_JSON = '{"name": "get_stock_price", "arguments": {"symbol": "ASML"}}'

ROWS = {
    "alpaca": {
        "instruction": "Give a synonym for the word.",
        "input": "rapid",
        "output": "Quick.",
    },
    "sharegpt": {
        "conversations": [
            {"from": "system", "value": "You are a friendly tutor."},
            {"from": "human", "value": "What is 7 times 8?"},
            {"from": "gpt", "value": "7 times 8 is 56."},
        ]
    },
    "hermes": {
        "conversations": [
            {"from": "system", "value": f"You can call functions. <tools>\n{json.dumps(STOCK_SPEC)}\n</tools>"},
            {"from": "human", "value": "What does ASML trade at?"},
            {"from": "gpt", "value": f"<tool_call>\n{CALL_JSON}\n</tool_call>"},
            {"from": "tool", "value": '<tool_response>\n{"name": "get_stock_price", "content": 712.4}\n</tool_response>'},
            {"from": "gpt", "value": "ASML trades at 712.40 EUR."},
        ]
    },
    "xlam": {
        "query": "Price of ASML?",
        "tools": json.dumps([{"name": "get_stock_price", "description": "Latest price of a stock.",
                              "parameters": {"symbol": {"type": "str", "description": "Ticker."}}}]),
        "answers": json.dumps([{"name": "get_stock_price", "arguments": {"symbol": "ASML"}}]),
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_model_dir)


@pytest.mark.parametrize("fmt", sorted(ROWS))
def test_converted_rows_render_and_train_the_answer(tmp_path, tokenizer, fmt):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps(ROWS[fmt]) + "\n")
    assert convert_file(src, out).format == fmt  # auto-detected
    ((_, record),) = list(read_records(out))
    rendered = render_for_training(
        tokenizer, to_chat_messages(record.messages), tools_as_dicts(record.tools)
    )
    trained = [t for t in rendered.labels if t != IGNORE_INDEX]
    assert len(trained) >= 1
    trained_text = tokenizer.decode(trained)
    assert "<|im_end|>" in trained_text  # the model learns to stop
    if fmt in ("hermes", "xlam"):
        system_turn = rendered.text.split("<|im_start|>user")[0]
        assert "get_stock_price" in system_turn  # the specs went into the system message
        assert f"<tool_call>\n{CALL_JSON}\n</tool_call>" in trained_text
