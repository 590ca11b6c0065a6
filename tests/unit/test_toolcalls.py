"""Tool-call parsing and output-schema handling."""

from __future__ import annotations

import json

import pytest

from tuneloop.runtime.structured import OutputSchema, SchemaFileError
from tuneloop.runtime.toolcalls import parse_output, parse_structured_calls, strip_fence


def test_hermes_blocks_and_surrounding_text():
    text = ('Let me check.\n<tool_call>\n{"name": "clock", "arguments": {"timezone": "UTC"}}\n</tool_call>\n'
            '<tool_call>{"name": "calculator", "arguments": "{\\"expression\\": \\"1+1\\"}"}</tool_call>')  # fmt: skip
    parsed = parse_output(text)
    assert [(c.name, c.arguments) for c in parsed.calls] == [
        ("clock", {"timezone": "UTC"}), ("calculator", {"expression": "1+1"})
    ]  # fmt: skip
    assert parsed.content == "Let me check." and parsed.errors == [] and parsed.fabricated is None
    assert len({c.id for c in parsed.calls}) == 2


def test_unclosed_block_at_end_still_parses_when_json_complete():
    parsed = parse_output('<tool_call>\n{"name": "clock", "arguments": {}}')
    assert [c.name for c in parsed.calls] == ["clock"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('{"name": "clock", "arguments": {', "not valid JSON"),
        ('["clock"]', "must be a JSON object"),
        ('{"arguments": {}}', 'needs a "name"'),
        ('{"name": "clock", "arguments": "{bad"}', "arguments of 'clock' are not valid JSON"),
        ("", "empty <tool_call>"),
    ],
)
def test_broken_blocks_are_errors_not_text(body, fragment):
    parsed = parse_output(f"<tool_call>{body}</tool_call>")
    assert parsed.calls == [] and len(parsed.errors) == 1
    assert fragment in parsed.errors[0].error
    assert parsed.content == "" and parsed.has_calls


def test_openai_style_json_text():
    text = json.dumps({"tool_calls": [{"id": "a", "type": "function",
                                       "function": {"name": "clock", "arguments": "{}"}}]})  # fmt: skip
    parsed = parse_output(text)
    assert [(c.id, c.name, c.arguments) for c in parsed.calls] == [("a", "clock", {})]
    bare = parse_output('```json\n{"name": "clock", "arguments": {"timezone": "UTC"}}\n```')
    assert bare.calls[0].arguments == {"timezone": "UTC"}


def test_bare_json_is_an_answer_when_no_tools_offered():
    text = '{"name": "clock", "arguments": {}}'
    parsed = parse_output(text, tools_offered=False)
    assert parsed.calls == [] and parsed.content == text


def test_fabricated_response_is_cut():
    parsed = parse_output('Sure. <TOOL_RESPONSE>{"temp": 20}</tool_response> It is 20.')
    assert parsed.content == "Sure." and parsed.fabricated.startswith("<TOOL_RESPONSE>")


def test_structured_calls():
    parsed = parse_structured_calls(
        [{"id": "x", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]
    )
    assert parsed.calls[0].id == "x" and parsed.calls[0].arguments == {"a": 1}


def test_strip_fence():
    assert strip_fence('```json\n{"a": 1}\n```') == '{"a": 1}'
    assert strip_fence(' {"a": 1} ') == '{"a": 1}'


def test_output_schema_errors_name_file_and_line(tmp_path):
    bad_json = tmp_path / "s.json"
    bad_json.write_text('{\n  "type": "object",\n  "properties": {,}\n}')
    with pytest.raises(SchemaFileError, match=r"s\.json:3: not valid JSON"):
        OutputSchema.load(bad_json)
    bad_schema = tmp_path / "t.json"
    bad_schema.write_text('{"type": "object", "properties": {"a": {"type": "nonsense"}}}')
    with pytest.raises(SchemaFileError, match=r"t\.json: invalid JSON Schema at properties/a/type"):
        OutputSchema.load(bad_schema)
    with pytest.raises(SchemaFileError, match="cannot read"):
        OutputSchema.load(tmp_path / "missing.json")


def test_output_schema_validation_messages():
    schema = OutputSchema({"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
                           "required": ["tags"]})  # fmt: skip
    assert schema.validate('{"tags": ["a"]}') == ({"tags": ["a"]}, [])
    _, errors = schema.validate('{"tags": ["a", 2]}')
    assert errors == ["$.tags[1]: 2 is not of type 'string'"]
    _, errors = schema.validate('{"tags": []} trailing')
    assert errors[0].startswith("not valid JSON: Extra data")
