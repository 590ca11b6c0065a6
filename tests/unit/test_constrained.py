"""Constrained JSON decoding (llguidance) on the tiny random model.

The tiny model emits byte-level gibberish when left alone, so every valid JSON
document it produces under a schema is the grammar's doing, not the model's.
"""

from __future__ import annotations

import json
from typing import Annotated

import jsonschema
import pytest
import torch
from llguidance import LLMatcher

from tests.helpers.openai_stub import OpenAIStub
from tuneloop.runtime.backends import FakeModel, LocalEngine, OpenAIChatModel
from tuneloop.runtime.constrained import (
    GrammarError,
    JsonSchemaLogitsProcessor,
    compile_json_schema,
)
from tuneloop.runtime.types import GenerationConfig

PROMPTS = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "What is the capital of France? Answer in JSON."}],
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Compute 1234 * 5678 with the calculator tool."},
    ],
    [{"role": "user", "content": "Hello there! How can I help you today?"}],
]

# Strings, arrays and numbers carry upper bounds: a random model rarely chooses to
# close a string or stop adding digits on its own (it wrote a 300-digit "number"),
# and the test is about validity, not about the token budget.
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer"},
        "color": {"enum": ["red", "green", "blue"]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 8}, "maxItems": 3},
    },
    "required": ["name", "age", "color", "tags"],
    "additionalProperties": False,
}
SCHEMAS = {
    "object": PERSON,
    "nested": {
        "type": "object",
        "properties": {
            "city": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 15},
                    "location": {
                        "type": "object",
                        "properties": {
                            "lat": {"type": "integer", "minimum": -90, "maximum": 90},
                            "lon": {"type": "integer", "minimum": -180, "maximum": 180},
                        },
                        "required": ["lat", "lon"],
                        "additionalProperties": False,
                    },
                },
                "required": ["name", "location"],
                "additionalProperties": False,
            }
        },
        "required": ["city"],
        "additionalProperties": False,
    },
    "min_items": {
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "items": {"type": "string", "maxLength": 6},
                "minItems": 2,
                "maxItems": 4,
            }
        },
        "required": ["steps"],
        "additionalProperties": False,
    },
    "integer_bounds": {
        "type": "object",
        "properties": {
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
            "delta": {"type": "integer", "exclusiveMinimum": -10, "exclusiveMaximum": 0},
        },
        "required": ["rating", "year", "delta"],
        "additionalProperties": False,
    },
    "boolean": {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "flags": {"type": "array", "items": {"type": "boolean"}, "maxItems": 5},
        },
        "required": ["ok", "flags"],
        "additionalProperties": False,
    },
    "any_of": {
        "type": "object",
        "properties": {
            "answer": {
                "anyOf": [
                    {"type": "integer", "minimum": 0, "maximum": 99},
                    {"type": "string", "maxLength": 10},
                    {"type": "null"},
                ]
            }
        },
        "required": ["answer"],
        "additionalProperties": False,
    },
    "top_level_array": {
        "type": "array",
        "items": {"enum": ["yes", "no", 1, 2.5, None]},
        "minItems": 1,
        "maxItems": 6,
    },
}


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return LocalEngine.from_ref(str(tiny_model_dir))


def _assert_valid(outputs, schema):
    for out in outputs:
        assert out.finish_reason == "stop", f"cut off by max_new_tokens: {out.text!r}"
        try:
            value = json.loads(out.text)
        except json.JSONDecodeError as exc:
            pytest.fail(f"not JSON ({exc}): {out.text!r}")
        jsonschema.validate(value, schema)


def test_backends_declare_json_schema_support(engine):
    assert engine.supports_json_schema is True
    assert OpenAIChatModel.supports_json_schema is True
    assert FakeModel("x").supports_json_schema is False


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_batched_greedy_output_is_valid(engine, name):
    schema = SCHEMAS[name]
    outputs = engine.generate_batch(
        PROMPTS, GenerationConfig(max_new_tokens=200, json_schema=schema)
    )
    _assert_valid(outputs, schema)
    processor = engine.last_json_processor
    assert processor.calls > 0 and processor.time_s > 0
    assert not any(m.is_error() for m in processor.matchers)


def test_unconstrained_output_is_not_json(engine):
    """Without the grammar the same model and prompts give text that is not JSON."""
    for out in engine.generate_batch(PROMPTS, GenerationConfig(max_new_tokens=60)):
        with pytest.raises(json.JSONDecodeError):
            json.loads(out.text)


def test_sampled_output_is_valid_and_reproducible(engine):
    config = GenerationConfig(max_new_tokens=200, temperature=1.0, seed=7, json_schema=PERSON)
    first = engine.generate_batch(PROMPTS, config)
    _assert_valid(first, PERSON)
    assert [o.text for o in engine.generate_batch(PROMPTS, config)] == [o.text for o in first]


def test_batched_equals_one_at_a_time(engine):
    """Left padding and finished rows (fed pad tokens) do not change a row's output."""
    config = GenerationConfig(max_new_tokens=200, json_schema=PERSON)
    batched = engine.generate_batch(PROMPTS, config)
    single = [engine.generate(p, config) for p in PROMPTS]
    assert [b.text for b in batched] == [s.text for s in single]


def test_stream_output_is_valid(engine):
    config = GenerationConfig(max_new_tokens=200, json_schema=PERSON)
    chunks = list(engine.stream(PROMPTS[1], config))
    final = chunks[-1].output
    assert final is not None and final.finish_reason == "stop"
    assert "".join(c.text for c in chunks) == final.text
    jsonschema.validate(json.loads(final.text), PERSON)
    assert final.text == engine.generate(PROMPTS[1], config).text


def test_length_cut_off_is_reported(engine):
    """The grammar caps nothing: a small budget ends in truncated JSON, finish "length"."""
    out = engine.generate(PROMPTS[0], GenerationConfig(max_new_tokens=5, json_schema=PERSON))
    assert out.finish_reason == "length" and out.completion_tokens == 5
    assert out.text.startswith('{"name":"')  # compact: no whitespace after "{"


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "nonsense"}, "nonsense"),
        ({"type": "string", "format": "no-such-format"}, "no-such-format"),
        ({"type": "string", "pattern": "(("}, "unclosed group"),
        ({"type": "integer", "minimum": 5, "maximum": 1}, "minimum"),
    ],
)
def test_invalid_schema_is_a_grammar_error(engine, schema, problem):
    with pytest.raises(GrammarError, match=problem):
        compile_json_schema(engine.tokenizer, schema)
    with pytest.raises(GrammarError):
        engine.generate(PROMPTS[0], GenerationConfig(json_schema=schema))
    with pytest.raises(GrammarError):
        next(engine.stream(PROMPTS[0], GenerationConfig(json_schema=schema)))
    assert isinstance(GrammarError("x"), ValueError)


def test_llguidance_tokenizer_is_cached(engine):
    first = compile_json_schema(engine.tokenizer, PERSON)
    second = compile_json_schema(engine.tokenizer, {"type": "boolean"})
    assert first.tokenizer is second.tokenizer


# ---------------------------------------------------------------- the processor alone


def _ids(engine, text: str) -> list[int]:
    return engine.tokenizer(text, add_special_tokens=False)["input_ids"]


def _allowed(scores: torch.Tensor) -> set[int]:
    return set(torch.nonzero(scores.flatten() != float("-inf")).flatten().tolist())


def test_mask_matches_llguidance_and_masks_extra_model_vocab(engine):
    """Our bit unpacking allows exactly the tokens llguidance's own byte mask allows.

    The model's logits may be wider than the tokenizer (embeddings padded to a multiple
    of 64, say): those extra ids decode to nothing and must never be sampled.
    """
    grammar = compile_json_schema(engine.tokenizer, PERSON, engine.eos_token_ids)
    processor = JsonSchemaLogitsProcessor(grammar, batch_size=1)
    vocab = grammar.tokenizer.vocab_size
    prompt = torch.tensor([[1, 2, 3]])
    prefix = _ids(engine, '{"name":"ab')
    ref = LLMatcher(grammar.tokenizer, grammar.grammar)  # replays the same tokens
    scores = torch.zeros(1, vocab + 37)
    processor(prompt, scores)
    for k, token in enumerate(prefix):
        ids = torch.tensor([[1, 2, 3, *prefix[: k + 1]]])
        scores = torch.zeros(1, vocab + 37)
        processor(ids, scores)
        assert ref.consume_token(token)
        expected = {i for i, b in enumerate(ref.compute_logit_bias()) if b and i < vocab}
        assert _allowed(scores) == expected
    assert expected and all(i < vocab for i in _allowed(scores))


def test_only_eos_once_complete_and_later_tokens_ignored(engine):
    """Row 0 completes its JSON and is then fed padding; row 1 gets a token the
    grammar rejects (as after a stop-string cut). Neither raises; both allow EOS only."""
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    grammar = compile_json_schema(engine.tokenizer, schema, engine.eos_token_ids)
    processor = JsonSchemaLogitsProcessor(grammar, batch_size=2)
    done = _ids(engine, '{"ok":true}')
    bad = _ids(engine, '{"ok":x')
    width = max(len(done), len(bad))
    pad = engine.pad_token_id
    rows = [done + [pad] * (width - len(done)), bad + [pad] * (width - len(bad))]
    vocab = engine.model.config.vocab_size
    processor(torch.tensor([[5, 6], [5, 6]]), torch.zeros(2, vocab))
    for step in range(1, width + 3):
        ids = [[5, 6, *r[:step]] + [pad] * max(0, step - width) for r in rows]
        scores = torch.zeros(2, vocab)
        processor(torch.tensor(ids), scores)
    eos = set(engine.eos_token_ids)
    assert _allowed(scores[0:1]) == eos and _allowed(scores[1:2]) == eos
    assert processor.matchers[0].is_accepting() and not processor.matchers[0].is_error()
    assert processor.matchers[1].is_error()


# ---------------------------------------------------------------- OpenAI-compatible servers


def test_openai_request_carries_response_format():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    with (
        OpenAIStub('{"a": 1}') as stub,
        OpenAIChatModel(stub.url, "stub-model", timeout=5.0) as model,
    ):
        out = model.generate(PROMPTS[0], GenerationConfig(json_schema=schema))
        assert json.loads(out.text) == {"a": 1}
        assert stub.requests[-1].body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": schema, "strict": True},
        }
        list(model.stream(PROMPTS[0], GenerationConfig(json_schema=schema)))
        assert stub.requests[-1].body["response_format"]["json_schema"]["schema"] == schema
        model.generate(PROMPTS[0], GenerationConfig())
        assert "response_format" not in stub.requests[-1].body


def test_openai_request_carries_tool_choice():
    tools = [{"type": "function", "function": {"name": "clock", "description": "time",
                                                "parameters": {"type": "object"}}}]  # fmt: skip
    with (
        OpenAIStub("ok") as stub,
        OpenAIChatModel(stub.url, "stub-model", timeout=5.0) as model,
    ):
        for choice, expected in [
            ("required", "required"),
            ("clock", {"type": "function", "function": {"name": "clock"}}),
            ("none", "none"),
        ]:
            model.generate(PROMPTS[0], GenerationConfig(tools=tools, tool_choice=choice))
            assert stub.requests[-1].body["tool_choice"] == expected
        model.generate(PROMPTS[0], GenerationConfig(tools=tools))
        assert "tool_choice" not in stub.requests[-1].body


# ---------------------------------------------------------------- tool calls, digit runs

TOOLS = [
    {"type": "function", "function": {
        "name": "calculator", "description": "Evaluate arithmetic.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string", "maxLength": 20}},
                       "required": ["expression"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "clock", "description": "Time in a zone.",
        "parameters": {"type": "object", "properties": {"timezone": {"enum": ["UTC", "Europe/Paris"]}},
                       "required": ["timezone"], "additionalProperties": False}}},
]  # fmt: skip


@pytest.mark.parametrize("choice", ["required", "clock"])
def test_required_tool_call_is_well_formed_by_construction(engine, choice):
    from tuneloop.runtime.toolcalls import parse_output

    config = GenerationConfig(max_new_tokens=80, tools=TOOLS, tool_choice=choice)
    for out in engine.generate_batch(PROMPTS, config):
        assert out.finish_reason == "stop", out.text
        parsed = parse_output(out.text)
        assert parsed.errors == [] and len(parsed.calls) == 1, out.text
        call = parsed.calls[0]
        spec = next(t["function"] for t in TOOLS if t["function"]["name"] == call.name)
        jsonschema.validate(call.arguments, spec["parameters"])
        if choice != "required":
            assert call.name == choice
    unconstrained = engine.generate_batch(PROMPTS, GenerationConfig(max_new_tokens=40, tools=TOOLS))
    assert not any(parse_output(o.text).calls for o in unconstrained)


def test_unknown_tool_choice_is_a_grammar_error(engine):
    with pytest.raises(GrammarError, match="names no offered tool"):
        engine.generate(PROMPTS[0], GenerationConfig(tools=TOOLS, tool_choice="weather"))


def test_digit_runs_are_capped_when_the_grammar_allows_more(engine):
    schema = {"type": "object", "properties": {"x": {"type": "number"}, "n": {"type": "integer"}},
              "required": ["x", "n"], "additionalProperties": False}  # fmt: skip
    outputs = engine.generate_batch(
        PROMPTS, GenerationConfig(max_new_tokens=120, json_schema=schema)
    )
    _assert_valid(outputs, schema)
    import re

    for out in outputs:
        assert max(len(run) for run in re.findall(r"\d+", out.text)) <= 16 + 2, out.text


def test_digit_cap_never_blocks_a_grammar_that_needs_digits(engine):
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[0-9]{24}$"}},
              "required": ["code"], "additionalProperties": False}  # fmt: skip
    outputs = engine.generate_batch(
        PROMPTS, GenerationConfig(max_new_tokens=60, json_schema=schema)
    )
    _assert_valid(outputs, schema)


def test_assistant_falls_back_when_schema_cannot_be_compiled(engine):
    from tuneloop.runtime.assistant import Assistant, AssistantConfig
    from tuneloop.runtime.structured import RepairBudget

    schema = {"type": "object", "not": {"required": ["x"]}}
    assistant = Assistant(engine, config=AssistantConfig(
        repair=RepairBudget(max_repairs=0), generation={"max_new_tokens": 8}), output_schema=schema)  # fmt: skip
    result = assistant.run("Hi")
    (call,) = [e for e in result.events if e.kind == "model_call"]
    assert call.constrained is False and "Unimplemented keys" in call.grammar_error
    assert result.events[-1].kind == "run_finished"  # ran (freely), validated, failed closed
    assert not result.ok and result.events[-2].kind == "validation"


def test_assistant_required_tool_on_local_engine_runs_the_tool(engine):
    from tuneloop.runtime.assistant import Assistant, AssistantConfig
    from tuneloop.runtime.tools import ToolRegistry, tool

    @tool  # bounded: a random model rarely closes a string by itself
    def clock(timezone: Annotated[str, "IANA zone", {"maxLength": 12}]) -> str:
        """Time in a zone."""
        return f"12:00 in {timezone}"

    registry = ToolRegistry([clock])
    config = AssistantConfig(tool_choice="required", max_steps=2, generation={"max_new_tokens": 60})
    result = Assistant(engine, registry, config).run("What time is it?")
    assert result.tool_calls and result.tool_calls[0].ok
    assert result.tool_calls[0].result.startswith("12:00 in ")
    first = next(e for e in result.events if e.kind == "model_call")
    assert first.constrained
