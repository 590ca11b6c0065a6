"""Format readers: each sample converts to the canonical record exactly, detection picks
the right reader, and every malformed row is a DataError naming file, line and field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuneloop.data.formats import READERS, convert_file, detect_format, iter_converted, read_rows
from tuneloop.data.io import DataError, Row, parse_record, read_records

META = {"tags": []}  # what an empty Metadata serialises to

WEATHER_SPEC = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
            "required": ["city"],
        },
    },
}


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def convert_one(tmp_path: Path, fmt: str, row: dict) -> dict:
    """Convert one row through the file API and return the written JSON object."""
    src, out = write_jsonl(tmp_path / "in.jsonl", [row]), tmp_path / "out.jsonl"
    result = convert_file(src, out, fmt)
    assert (result.count, result.format) == (1, fmt)
    (line,) = out.read_text().splitlines()
    return json.loads(line)


# ------------------------------------------------------------------------ samples

MESSAGES_ROW = {
    "id": "support-17",
    "messages": [
        {"role": "system", "content": "You are a concise support agent."},
        {"role": "user", "content": [{"type": "text", "text": "Is it raining in Bergen?"}]},
        {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Bergen"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"rain_mm": 3.5}'},
        {"role": "assistant", "content": "Yes, 3.5 mm so far today."},
    ],
    "tools": [WEATHER_SPEC],
}
MESSAGES_EXPECTED = {
    "id": "support-17",
    "messages": [
        {"role": "system", "content": "You are a concise support agent."},
        {"role": "user", "content": "Is it raining in Bergen?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Bergen"}},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"rain_mm": 3.5}'},
        {"role": "assistant", "content": "Yes, 3.5 mm so far today."},
    ],
    "tools": [WEATHER_SPEC],
    "metadata": META,
}

ALPACA_ROW = {
    "instruction": "Rewrite the sentence in the passive voice.",
    "input": "The committee approved the budget.",
    "output": "The budget was approved by the committee.",
    "text": "Below is an instruction ... (pre-rendered copy, dropped)",
}
ALPACA_EXPECTED = {
    "messages": [
        {
            "role": "user",
            "content": "Rewrite the sentence in the passive voice.\n\n"
            "The committee approved the budget.",
        },
        {"role": "assistant", "content": "The budget was approved by the committee."},
    ],
    "metadata": META,
}

SHAREGPT_ROW = {
    "id": 42,
    "system": "You help with unit conversions.",
    "conversations": [
        {"from": "human", "value": "How many grams in 3 ounces?"},
        {"from": "gpt", "value": "About 85 grams (1 oz = 28.35 g)."},
        {"from": "human", "value": "And in 2 pounds?"},
        {"from": "gpt", "value": "About 907 grams.", "weight": 0},
    ],
}
SHAREGPT_EXPECTED = {
    "id": "42",
    "messages": [
        {"role": "system", "content": "You help with unit conversions."},
        {"role": "user", "content": "How many grams in 3 ounces?"},
        {"role": "assistant", "content": "About 85 grams (1 oz = 28.35 g)."},
        {"role": "user", "content": "And in 2 pounds?"},
        {"role": "assistant", "content": "About 907 grams.", "weight": 0.0},
    ],
    "metadata": META,
}

# LLaMA-Factory's ShareGPT variant: function_call / observation turns and a tools string.
SHAREGPT_TOOLS_ROW = {
    "conversations": [
        {"from": "human", "value": "Weather in Lyon?"},
        {
            "from": "function_call",
            "value": '{"name": "get_weather", "arguments": {"city": "Lyon"}}',
        },
        {"from": "observation", "value": '{"temp_c": 18}'},
        {"from": "gpt", "value": "18 °C in Lyon."},
    ],
    "tools": json.dumps([WEATHER_SPEC["function"]]),
}
SHAREGPT_TOOLS_EXPECTED = {
    "messages": [
        {"role": "user", "content": "Weather in Lyon?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Lyon"}},
                }
            ],
        },
        {"role": "tool", "content": '{"temp_c": 18}'},
        {"role": "assistant", "content": "18 °C in Lyon."},
    ],
    "tools": [WEATHER_SPEC],
    "metadata": META,
}

HERMES_SYSTEM = (
    "You are a function calling AI model. You are provided with function signatures within "
    "<tools> </tools> XML tags. Here are the available tools: <tools> "
    + json.dumps([WEATHER_SPEC])
    + " </tools> Call them only when needed."
)
HERMES_ROW = {
    "id": "hermes-3",
    "category": "weather",
    "conversations": [
        {"from": "system", "value": HERMES_SYSTEM},
        {"from": "human", "value": "Do I need an umbrella in Bergen?"},
        {
            "from": "gpt",
            "value": "Let me check.\n<tool_call>\n"
            "{'arguments': {'city': 'Bergen'}, 'name': 'get_weather'}\n</tool_call>",
        },
        {
            "from": "tool",
            "value": '<tool_response>\n{"name": "get_weather", "content": {"rain_mm": 3.5}}\n'
            "</tool_response>",
        },
        {"from": "gpt", "value": "Yes: 3.5 mm of rain so far."},
    ],
}
HERMES_EXPECTED = {
    "id": "hermes-3",
    "messages": [
        {
            "role": "system",
            "content": "You are a function calling AI model. You are provided with function "
            "signatures within <tools> </tools> XML tags. Here are the available tools: "
            "Call them only when needed.",
        },
        {"role": "user", "content": "Do I need an umbrella in Bergen?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Bergen"}},
                }
            ],
        },
        {
            "role": "tool",
            "content": '{"name": "get_weather", "content": {"rain_mm": 3.5}}',
            "name": "get_weather",
        },
        {"role": "assistant", "content": "Yes: 3.5 mm of rain so far."},
    ],
    "tools": [WEATHER_SPEC],
    "metadata": META,
}

XLAM_ROW = {
    "id": 7,
    "query": "Convert 100 USD to EUR and list 2 banks in Lisbon.",
    "tools": json.dumps(
        [
            {
                "name": "convert_currency",
                "description": "Convert an amount between currencies.",
                "parameters": {
                    "amount": {"type": "float", "description": "Amount to convert."},
                    "to": {"type": "str", "description": "Target currency.", "default": "EUR"},
                    "source": {"type": "str, optional", "description": "Source currency."},
                },
            },
            {
                "name": "find_banks",
                "description": "Banks in a city.",
                "parameters": {
                    "city": {"type": "str", "description": "City name."},
                    "limit": {"type": "int", "description": "How many.", "default": 5},
                    "services": {"type": "List[str]", "description": "Required services."},
                },
            },
        ]
    ),
    "answers": json.dumps(
        [
            {"name": "convert_currency", "arguments": {"amount": 100, "to": "EUR"}},
            {"name": "find_banks", "arguments": {"city": "Lisbon", "limit": 2}},
        ]
    ),
}
XLAM_EXPECTED = {
    "id": "7",
    "messages": [
        {"role": "user", "content": "Convert 100 USD to EUR and list 2 banks in Lisbon."},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {
                        "name": "convert_currency",
                        "arguments": {"amount": 100, "to": "EUR"},
                    },
                },
                {
                    "type": "function",
                    "function": {"name": "find_banks", "arguments": {"city": "Lisbon", "limit": 2}},
                },
            ],
        },
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "convert_currency",
                "description": "Convert an amount between currencies.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "amount": {"type": "number", "description": "Amount to convert."},
                        "to": {
                            "type": "string",
                            "description": "Target currency.",
                            "default": "EUR",
                        },
                        "source": {"type": "string", "description": "Source currency."},
                    },
                    "required": ["amount"],
                },
            },
        },
        {
            "type": "function",
            "function": {
                "name": "find_banks",
                "description": "Banks in a city.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string", "description": "City name."},
                        "limit": {"type": "integer", "description": "How many.", "default": 5},
                        "services": {"type": "array", "description": "Required services."},
                    },
                    "required": ["city", "services"],
                },
            },
        },
    ],
    "metadata": META,
}

PREFERENCE_ROW = {
    "system": "Answer in one sentence.",
    "prompt": "Why is the sky blue?",
    "chosen": "Air scatters short blue wavelengths of sunlight more than red ones.",
    "rejected": "Because it reflects the ocean.",
}
PREFERENCE_EXPECTED = {
    "prompt": [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": "Why is the sky blue?"},
    ],
    "chosen": [
        {
            "role": "assistant",
            "content": "Air scatters short blue wavelengths of sunlight more than red ones.",
        }
    ],
    "rejected": [{"role": "assistant", "content": "Because it reflects the ocean."}],
    "metadata": META,
}

KTO_ROW = {
    "prompt": [{"role": "user", "content": "Name a prime between 10 and 15."}],
    "completion": "13",
    "label": True,
    "metadata": {"source": "arith-v1"},
}
KTO_EXPECTED = {
    "prompt": [{"role": "user", "content": "Name a prime between 10 and 15."}],
    "completion": [{"role": "assistant", "content": "13"}],
    "label": True,
    "metadata": {"source": "arith-v1", "tags": []},
}

SAMPLES = {
    "messages": (MESSAGES_ROW, MESSAGES_EXPECTED),
    "alpaca": (ALPACA_ROW, ALPACA_EXPECTED),
    "sharegpt": (SHAREGPT_ROW, SHAREGPT_EXPECTED),
    "hermes": (HERMES_ROW, HERMES_EXPECTED),
    "xlam": (XLAM_ROW, XLAM_EXPECTED),
    "preference": (PREFERENCE_ROW, PREFERENCE_EXPECTED),
    "kto": (KTO_ROW, KTO_EXPECTED),
}


# ------------------------------------------------------------------ conversions


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_each_format_converts_exactly(tmp_path, fmt):
    row, expected = SAMPLES[fmt]
    assert convert_one(tmp_path, fmt, row) == expected


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_output_reads_back_as_canonical_records(tmp_path, fmt):
    row, expected = SAMPLES[fmt]
    out = tmp_path / "out.jsonl"
    convert_file(write_jsonl(tmp_path / "in.jsonl", [row, row]), out)
    records = [rec.to_json_dict() for _, rec in read_records(out)]
    assert records == [expected, expected]


def test_every_registered_format_has_a_sample():
    assert set(READERS) == set(SAMPLES)


def test_sharegpt_function_call_and_observation(tmp_path):
    assert convert_one(tmp_path, "sharegpt", SHAREGPT_TOOLS_ROW) == SHAREGPT_TOOLS_EXPECTED


def test_messages_under_conversations_key(tmp_path):
    row = {
        "conversations": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
        ]
    }
    assert detect_format(row) == "messages"
    assert convert_one(tmp_path, "messages", row)["messages"] == row["conversations"]


def test_messages_keeps_unparsable_arguments_for_the_validators(tmp_path):
    row = {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]}  # fmt: skip
    call = convert_one(tmp_path, "messages", row)["messages"][1]["tool_calls"][0]
    assert call["function"]["arguments"] == "{not json"


def test_alpaca_without_input_and_with_system(tmp_path):
    row = {"instruction": "Say hi.", "input": "", "output": "Hi!", "system": "Be brief."}
    assert convert_one(tmp_path, "alpaca", row)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hi!"},
    ]


def test_hermes_tools_one_json_per_line_and_several_calls(tmp_path):
    spec_b = {
        "name": "get_time",
        "description": "Local time.",
        "parameters": {"type": "object", "properties": {}},
    }
    system = f"<tools>\n{json.dumps(WEATHER_SPEC)}\n{json.dumps(spec_b)}\n</tools>"
    gpt = (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
    )
    row = {"conversations": [
        {"from": "system", "value": system}, {"from": "human", "value": "Weather and time in Oslo?"},
        {"from": "gpt", "value": gpt},
        {"from": "tool", "value": "<tool_response>\n{\"temp_c\": 2}\n</tool_response>\n"
                                  "<tool_response>\n14:05\n</tool_response>"},
        {"from": "gpt", "value": "2 °C, and it is 14:05."},
    ]}  # fmt: skip
    got = convert_one(tmp_path, "hermes", row)
    assert [t["function"]["name"] for t in got["tools"]] == ["get_weather", "get_time"]
    assert got["messages"][0]["role"] == "user"  # nothing left of the system turn
    assert got["messages"][1] == {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}},
        {"type": "function", "function": {"name": "get_time", "arguments": {}}},
    ]}  # fmt: skip
    assert got["messages"][2:4] == [
        {"role": "tool", "content": '{"temp_c": 2}'},
        {"role": "tool", "content": "14:05"},
    ]


def test_xlam_lists_instead_of_strings_and_schema_parameters_kept(tmp_path):
    row = {"query": "Weather in Rome?", "tools": [WEATHER_SPEC["function"]],
           "answers": [{"name": "get_weather", "arguments": {"city": "Rome"}}]}  # fmt: skip
    got = convert_one(tmp_path, "xlam", row)
    assert got["tools"] == [WEATHER_SPEC]
    assert got["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"city": "Rome"}


def test_preference_messages_prompt_repeated_in_chosen_is_stripped(tmp_path):
    prompt = [{"role": "user", "content": "2+2?"}]
    row = {"prompt": prompt, "chosen": [*prompt, {"role": "assistant", "content": "4"}],
           "rejected": [*prompt, {"role": "assistant", "content": "5"}]}  # fmt: skip
    got = convert_one(tmp_path, "preference", row)
    assert (got["prompt"], got["chosen"], got["rejected"]) == (
        prompt, [{"role": "assistant", "content": "4"}], [{"role": "assistant", "content": "5"}])  # fmt: skip


def test_preference_implicit_prompt_is_the_shared_prefix(tmp_path):
    user = {"role": "user", "content": "Capital of Peru?"}
    row = {"chosen": [user, {"role": "assistant", "content": "Lima."}],
           "rejected": [user, {"role": "assistant", "content": "Cusco."}]}  # fmt: skip
    got = convert_one(tmp_path, "preference", row)
    assert got["prompt"] == [user] and got["chosen"] == [{"role": "assistant", "content": "Lima."}]


# -------------------------------------------------------------------- detection


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_detect_format(fmt):
    assert detect_format(SAMPLES[fmt][0]) == fmt


def test_detect_sharegpt_with_tools_turns_is_sharegpt_not_hermes():
    assert detect_format(SHAREGPT_TOOLS_ROW) == "sharegpt"


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_auto_convert_uses_the_detected_format(tmp_path, fmt):
    row, expected = SAMPLES[fmt]
    result = convert_file(write_jsonl(tmp_path / "in.jsonl", [row]), tmp_path / "out.jsonl")
    assert result.format == fmt and result.count == 1


def test_undetectable_row_names_its_keys(tmp_path):
    path = write_jsonl(tmp_path / "odd.jsonl", ["", {"question": "q", "answer": "a"}])
    with pytest.raises(DataError) as exc:
        list(iter_converted(path))
    assert (exc.value.file, exc.value.line) == (str(path), 2)
    assert "answer, question" in exc.value.message


# ------------------------------------------------------------- malformed rows

ok = {"instruction": "a", "output": "b"}
conv = [{"from": "human", "value": "hi"}]
MALFORMED = [
    # (format, row, field, words in the message)
    ("alpaca", {"output": "b"}, "instruction", "missing"),
    ("alpaca", {"instruction": ["a"], "output": "b"}, "instruction", "expected a string, got a list"),
    ("alpaca", {"instruction": "a", "input": 3, "output": "b"}, "input", "expected a string"),
    ("alpaca", {**ok, "id": [1]}, "id", "expected a string or an integer"),
    ("alpaca", {**ok, "metadata": "x"}, "metadata", "expected an object"),
    ("messages", {"messages": "hi"}, "messages", "expected a list of messages"),
    ("messages", {"messages": []}, "messages", "is empty"),
    ("messages", {"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role", "unknown role"),
    ("messages", {"messages": [{"content": "x"}]}, "messages.0.role", "missing"),
    ("messages", {"messages": [{"role": "user"}]}, "messages.0.content", "missing"),
    ("messages", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
     "messages.0.content.0", "only text parts"),
    ("messages", {"messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}]},
     "messages.0.tool_calls.0.function.name", "missing"),
    ("messages", {"messages": [{"role": "user", "content": "x", "weight": "1"}]}, "messages.0.weight",
     "expected a number"),
    ("messages", {"messages": [{"role": "user", "content": "x"}], "tools": [{"function": {"description": "d"}}]},
     "tools.0.function.name", "missing"),
    ("messages", {"messages": [{"role": "user", "content": "x"}], "tools": "[oops"}, "tools", "not valid JSON"),
    ("sharegpt", {"conversations": [{"from": "bot", "value": "x"}]}, "conversations.0.from", "unknown role 'bot'"),
    ("sharegpt", {"conversations": [{"from": "human"}]}, "conversations.0.value", "missing"),
    ("sharegpt", {"conversations": ["hi"]}, "conversations.0", "expected an object"),
    ("sharegpt", {"conversations": {"from": "human"}}, "conversations", "expected a list"),
    ("sharegpt", {"conversations": [*conv, {"from": "system", "value": "late"}]}, "conversations.1.from",
     "must come first"),
    ("sharegpt", {"conversations": [*conv, {"from": "function_call", "value": "{'name': "}]},
     "conversations.1.value", "not valid JSON"),
    ("sharegpt", {"system": "s1", "conversations": [{"from": "system", "value": "s2"}]},
     "conversations.0.from", "must come first"),
    ("hermes", {"conversations": [*conv, {"from": "gpt", "value": "<tool_call>{\"name\": \"f\"</tool_call>"}]},
     "conversations.1.value.tool_call.0", "not valid JSON"),
    ("hermes", {"conversations": [*conv, {"from": "gpt", "value": "<tool_call>{\"name\": \"f\"}"}]},
     "conversations.1.value", "unclosed <tool_call>"),
    ("hermes", {"conversations": [*conv, {"from": "gpt", "value": "<tool_call>[1, 2]</tool_call>"}]},
     "conversations.1.value.tool_call.0", "must be an object"),
    ("hermes", {"conversations": [*conv, {"from": "gpt", "value": '<tool_call>{"name": "f", "arguments": 3}</tool_call>'}]},
     "conversations.1.value.tool_call.0.arguments", "must be a JSON object"),
    ("hermes", {"conversations": [{"from": "system", "value": "<tools>\n{\"name\": \"f\"}\n{oops\n</tools>"}, *conv]},
     "conversations.0.value", "<tools> block line 2"),
    ("hermes", {"conversations": [{"from": "system", "value": "<tools>[{\"description\": \"d\"}]</tools>"}, *conv]},
     "conversations.0.value.tools.0.name", "missing"),
    ("xlam", {"tools": "[]", "answers": "[]"}, "query", "missing"),
    ("xlam", {"query": "q", "answers": "[]"}, "tools", "missing"),
    ("xlam", {"query": "q", "tools": "[]", "answers": "[]"}, "answers", "is empty"),
    ("xlam", {"query": "q", "tools": "[]", "answers": "[{\"name\": "}, "answers", "not valid JSON"),
    ("xlam", {"query": "q", "tools": "[]", "answers": [{"name": "f", "arguments": "{bad"}]},
     "answers.0.arguments", "not valid JSON"),
    ("xlam", {"query": "q", "tools": [{"name": "f", "parameters": {"x": "int"}}], "answers": [{"name": "f"}]},
     "tools.0.parameters.x", "expected an object with type"),
    ("xlam", {"query": "q", "tools": "{}", "answers": 5}, "tools.0.name", "missing"),
    ("preference", {"prompt": "p", "chosen": "c"}, "rejected", "missing"),
    ("preference", {"prompt": "p", "chosen": 1, "rejected": "r"}, "chosen", "a string or a list of messages"),
    ("preference", {"prompt": "p", "chosen": [{"role": "user", "content": "c"}], "rejected": "r"}, "chosen",
     "no assistant message"),
    ("preference", {"chosen": "c", "rejected": "r"}, "prompt", "share no leading messages"),
    ("preference", {"system": "s", "prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
                    "chosen": "c", "rejected": "r"}, "system", "given twice"),
    ("kto", {"prompt": "p", "completion": "c", "label": "yes"}, "label", "expected a boolean"),
    ("kto", {"prompt": "p", "completion": "c", "label": 1}, "label", "expected a boolean"),
    ("kto", {"completion": "c", "label": True}, "prompt", "missing"),
]  # fmt: skip


@pytest.mark.parametrize(("fmt", "row", "field", "words"), MALFORMED,
                         ids=[f"{m[0]}-{m[2]}-{i}" for i, m in enumerate(MALFORMED)])  # fmt: skip
def test_malformed_row_names_file_line_and_field(tmp_path, fmt, row, field, words):
    good = SAMPLES[fmt][0]
    path = write_jsonl(tmp_path / "bad.jsonl", [good, row])
    with pytest.raises(DataError) as exc:
        list(iter_converted(path, fmt))
    err = exc.value
    assert (err.file, err.line, err.field) == (str(path), 2, field), str(err)
    assert words in err.message
    assert str(err).startswith(f"{path}:2: {field}: ")


def test_bad_third_line_writes_no_output(tmp_path):
    src = write_jsonl(
        tmp_path / "in.jsonl", [ALPACA_ROW, ALPACA_ROW, {"instruction": "x"}, ALPACA_ROW]
    )
    out = tmp_path / "out" / "train.jsonl"
    with pytest.raises(DataError, match=r"in\.jsonl:3: output: missing"):
        convert_file(src, out, "alpaca")
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no temporary file left either


def test_failed_conversion_keeps_a_previous_output(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    with pytest.raises(DataError):
        convert_file(write_jsonl(tmp_path / "in.jsonl", [ALPACA_ROW, "{not json"]), out)
    assert out.read_text() == "previous\n"


def test_unknown_format_and_empty_file(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [ALPACA_ROW])
    with pytest.raises(DataError, match="unknown format 'dolly'"):
        convert_file(src, tmp_path / "o.jsonl", "dolly")
    empty = write_jsonl(tmp_path / "empty.jsonl", [""])
    for fmt in ("auto", "alpaca"):
        with pytest.raises(DataError, match="no rows"):
            convert_file(empty, tmp_path / "o.jsonl", fmt)
    assert not (tmp_path / "o.jsonl").exists()


def test_missing_input_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        convert_file(tmp_path / "nope.jsonl", tmp_path / "o.jsonl")


# ------------------------------------------------------------------ .json lists


def test_json_list_input(tmp_path):
    src = tmp_path / "alpaca.json"
    src.write_text(json.dumps([ALPACA_ROW, {**ALPACA_ROW, "input": ""}], indent=2))
    out = tmp_path / "out.jsonl"
    assert convert_file(src, out).count == 2
    second = json.loads(out.read_text().splitlines()[1])
    assert second["messages"][0] == {"role": "user", "content": ALPACA_ROW["instruction"]}


def test_json_list_error_reports_the_list_index(tmp_path):
    src = tmp_path / "alpaca.json"
    src.write_text(json.dumps([ALPACA_ROW, ALPACA_ROW, {"instruction": "x"}]))
    with pytest.raises(DataError) as exc:
        convert_file(src, tmp_path / "out.jsonl")
    assert (exc.value.line, exc.value.field) == (2, "output")
    src.write_text(json.dumps([ALPACA_ROW, "not an object"]))
    with pytest.raises(DataError, match=r"alpaca\.json:1: expected a JSON object"):
        list(read_rows(src))
    src.write_text('[{"instruction": "x",\n "output": }]')
    with pytest.raises(DataError, match=r"invalid JSON: .*line 2"):
        list(read_rows(src))


def test_json_suffix_holding_json_lines_is_read_as_jsonl(tmp_path):
    src = write_jsonl(tmp_path / "rows.json", [ALPACA_ROW, ALPACA_ROW])
    assert [r.line for r in read_rows(src)] == [1, 2]


# ------------------------------------------------------------------------- fuzz

TAGS = ["<tools>", "</tools>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>",
        '{"name": "f", "arguments": {"x": 1}}', "{'name': 'f'}", "[", "{", "}", "\n", "1e999", "NaN",
        "str, optional", "List[int]", "{1, 2}", "1j", "(1, 2)", "b'x'"]  # fmt: skip
KEYS = ["messages", "conversations", "tools", "instruction", "input", "output", "system", "query",
        "answers", "prompt", "chosen", "rejected", "completion", "label", "id", "metadata", "role",
        "content", "from", "value", "tool_calls", "function", "name", "arguments", "parameters",
        "type", "description", "default", "weight", "tool_call_id", "text", "function_call"]  # fmt: skip

texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(KEYS + ["human", "gpt", "system", "tool", "function_call", "observation"]),
    st.lists(st.sampled_from(TAGS + KEYS), max_size=6).map("".join),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), texts
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=5),
        inner.map(lambda v: json.dumps(v)),
    ),
    max_leaves=25,
)
rows = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_samples_mutated():
    """Real samples with one key replaced by an arbitrary value: reaches deep code paths."""
    return (
        st.sampled_from(sorted(SAMPLES))
        .flatmap(
            lambda fmt: st.tuples(
                st.just(SAMPLES[fmt][0]), st.sampled_from(sorted(SAMPLES[fmt][0])), json_values
            )
        )
        .map(lambda t: {**t[0], t[1]: t[2]})
    )


@FUZZ
@given(
    row=st.one_of(
        rows,
        _valid_samples_mutated(),
        st.dictionaries(st.text(max_size=5), json_values, max_size=4),
    )
)
def test_fuzz_readers_convert_or_raise_data_error(row):
    for name, reader in READERS.items():
        try:
            record = reader(Row("fuzz.jsonl", 1, row))
        except DataError as exc:
            assert (exc.file, exc.line) == ("fuzz.jsonl", 1), name
            continue
        # A converted record is a valid canonical record and plain JSON.
        line = json.dumps(record.to_json_dict(), allow_nan=False)
        parse_record(Row("out.jsonl", 1, json.loads(line)))
    try:
        assert detect_format(row) in READERS
    except DataError:
        pass


@FUZZ
@given(lines=st.lists(st.one_of(st.binary(max_size=40), rows.map(lambda r: json.dumps(r).encode())), max_size=4),
       suffix=st.sampled_from([".jsonl", ".json"]))  # fmt: skip
def test_fuzz_arbitrary_bytes_lines(lines, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in{suffix}"
        path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines))
        for fmt in ["auto", *READERS]:
            try:
                list(iter_converted(path, fmt))
            except DataError:
                pass
            try:
                convert_file(path, Path(tmp) / "out.jsonl", fmt)
            except DataError:
                assert not (Path(tmp) / "out.jsonl").exists()
            (Path(tmp) / "out.jsonl").unlink(missing_ok=True)


def test_deeply_nested_tool_call_text_is_a_data_error():
    row = {
        "conversations": [
            *conv,
            {"from": "gpt", "value": "<tool_call>" + "[" * 100_000 + "</tool_call>"},
        ]
    }
    with pytest.raises(DataError, match="tool_call.0"):
        READERS["hermes"](Row("deep.jsonl", 1, row))


# -------------------------------------------------------------------------- CLI


def tuneloop(*args: str) -> subprocess.CompletedProcess:
    # Wide columns: rich would otherwise wrap a long tmp path across lines.
    return subprocess.run([sys.executable, "-m", "tuneloop.cli", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "1000"})  # fmt: skip


def test_cli_convert(tmp_path):
    src, out = (
        write_jsonl(tmp_path / "hermes.jsonl", [HERMES_ROW, HERMES_ROW]),
        tmp_path / "canon.jsonl",
    )
    result = tuneloop("data", "convert", str(src), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert f"converted 2 rows (format hermes) -> {out}" in result.stdout
    assert [json.loads(line) for line in out.read_text().splitlines()] == [HERMES_EXPECTED] * 2


def test_cli_convert_malformed_input_exits_1_without_output(tmp_path):
    src = write_jsonl(
        tmp_path / "alpaca.jsonl", [ALPACA_ROW, ALPACA_ROW, {"instruction": "x", "output": 5}]
    )
    out = tmp_path / "canon.jsonl"
    result = tuneloop("data", "convert", str(src), "--from", "alpaca", "--output", str(out))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {src}:3: output: expected a string, got a number"
    assert "Traceback" not in result.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["alpaca.jsonl"]


# ------------------------------------------------------------------------- docs

DOC = Path(__file__).resolve().parents[2] / "docs" / "formats.md"


def _doc_examples() -> list[tuple[str, str]]:
    """(first cell, example JSON) of each table row whose last cell is a JSON example."""
    rows = []
    for line in DOC.read_text().splitlines():
        last = line.rstrip().removesuffix("|").rsplit("| ", 1)[-1].strip()
        if line.startswith("| `") and last.startswith("`{"):
            rows.append((line.split("|")[1].strip().strip("`"), last.strip("`")))
    return rows


def test_docs_examples_convert(tmp_path):
    examples = dict(_doc_examples())
    assert set(READERS) <= set(examples) and {"Conversation", "EvalSample"} <= set(examples)
    for name, example in examples.items():
        row = Row("formats.md", 1, json.loads(example))
        if name in READERS:
            assert detect_format(row) == name
            READERS[name](row)
        else:
            assert type(parse_record(row)).__name__ == name
