"""Layer A validators: each scorer by hand, then against every shipped reference sample.

The reference tests prove the scorers and ``data/eval/`` agree: for every sample a
"perfect" completion built from its own target passes and a clearly wrong one fails.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from tuneloop.data.io import read_records
from tuneloop.data.records import EvalSample
from tuneloop.eval.scoring import Completion, get_scorer
from tuneloop.eval.validators import (
    ABSTENTION,
    extract_last_number,
    is_abstention,
    normalize_answer,
    values_match,
)

EVAL = Path(__file__).resolve().parents[2] / "data" / "eval"
NAMES = [
    "json_schema",
    "tool_call",
    "grounding",
    "refusal",
    "exact_match",
    "normalized_match",
    "numeric_match",
    "regex_match",
]
REFUSE = "I'm sorry, but I can't help with that."
COMPLY = "Sure! Here is a short, helpful answer to your question."


def load(name: str) -> list[EvalSample]:
    return [record for _, record in read_records(EVAL / f"{name}.jsonl", "eval")]


def sample(target=None, **fields) -> EvalSample:
    metadata = fields.pop("metadata", {})
    messages = [{"role": "user", "content": "q"}]
    return EvalSample(id="s1", input=messages, target=target, metadata=metadata, **fields)


def score(name: str, s: EvalSample, text: str = "", **completion):
    return get_scorer(name)(s, Completion(text=text, **completion))


# --- helpers -----------------------------------------------------------------------


def test_normalize_answer_squad_style_with_numbers():
    """Case, punctuation, articles and spacing go; "£3.20" and "3.2" share ``3.2``."""
    assert normalize_answer("  The  Fee is £3.20! ") == "fee is 3.2"
    assert normalize_answer("7,006,652 people") == "7006652 people"
    assert normalize_answer("00 gauge") == "00 gauge"  # leading zeros are kept
    assert normalize_answer("I don\u2019t know") == normalize_answer("I don't know")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("The population is 7,006,652.", Fraction(7006652)),
        ("first 3, then -2.5", Fraction(-5, 2)),
        ("about 3/4 of it", Fraction(3, 4)),
        ("tiny: 1e-6", Fraction(1, 10**6)),
        ("on 2026-01-03", Fraction(3)),  # the date's "-" is not a sign
        ("no digits here", None),
    ],
)
def test_extract_last_number(text, value):
    assert extract_last_number(text) == value


def test_values_match_numbers_as_numbers_and_folded_strings():
    assert values_match({"n": 7, "s": "Ewan  Fraser"}, {"n": 7.0, "s": "ewan fraser", "x": 1})
    assert not values_match({"n": 7}, {"n": "7"})
    assert not values_match({"b": False}, {"b": 0})  # booleans are not numbers
    assert not values_match({"d": None}, {})
    assert values_match(["a", 1], ["A", 1.0]) and not values_match(["a"], ["a", "b"])


# --- failed runs and bad samples ---------------------------------------------------

VALID_FOR = {
    "json_schema": sample(None, schema={"type": "object"}),
    "tool_call": sample({"no_call": True}),
    "grounding": sample("Paris"),
    "refusal": sample("comply"),
    "exact_match": sample("Paris"),
    "normalized_match": sample("Paris"),
    "numeric_match": sample("42"),
    "regex_match": sample("Par"),
}


@pytest.mark.parametrize("name", NAMES)
def test_failed_run_scores_zero_with_the_error(name):
    result = score(name, VALID_FOR[name], "", error="backend timed out")
    assert result.value == 0.0 and result.passed is False
    assert "backend timed out" in result.explanation


BAD = [
    ("json_schema", sample("x"), "schema"),
    ("json_schema", sample("x", schema={"type": "object"}), "target"),
    ("json_schema", sample(None, schema={"type": "nonsense"}), "schema"),
    ("tool_call", sample(None), "target"),
    ("tool_call", sample({"arguments": {}}), "target"),
    ("grounding", sample(None), "target"),
    ("grounding", sample([ABSTENTION, "Paris"]), "target"),
    ("refusal", sample("maybe"), "target"),
    ("exact_match", sample({"a": 1}), "target"),
    ("normalized_match", sample([]), "target"),
    ("numeric_match", sample("about forty"), "target"),
    ("regex_match", sample(None), "metadata.pattern"),
    ("regex_match", sample("(unclosed"), "metadata.pattern"),
    ("regex_match", sample("a", metadata={"regex_mode": "match"}), "metadata.regex_mode"),
]


@pytest.mark.parametrize(("name", "bad", "field"), BAD)
def test_bad_sample_names_the_sample_and_field(name, bad, field):
    with pytest.raises(ValueError, match=rf"'s1'.*{field}"):
        score(name, bad, "anything")


def test_every_validator_is_registered():
    for name in NAMES:
        assert get_scorer(name).scorer_name == name


# --- json_schema -------------------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def test_json_schema_valid_fenced_and_target_fields():
    s = sample({"name": "Ada Lovelace", "age": 36}, schema=PERSON)
    ok = score("json_schema", s, '```json\n{"name": "ada  lovelace", "age": 36.0}\n```')
    assert ok.passed and ok.metadata["valid"]
    wrong = score("json_schema", s, '{"name": "Ada Lovelace", "age": 37}')
    assert not wrong.passed and wrong.metadata["mismatched"] == ["age"]


def test_json_schema_invalid_or_unparsable_fails():
    s = sample(None, schema=PERSON)
    assert score("json_schema", s, '{"name": "Ada", "age": 36}').passed
    missing = score("json_schema", s, '{"name": "Ada"}')
    assert not missing.passed and "age" in missing.explanation
    assert not score("json_schema", s, 'Here you go: {"name": "Ada", "age": 36}').passed


# --- tool_call ---------------------------------------------------------------------

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CALC = {
    "type": "function",
    "function": {
        "name": "calculator",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
        },
    },
}
WEATHER_TARGET = {"name": "get_weather", "arguments": {"city": "Porto", "unit": "celsius"}}


def test_tool_call_exact_and_normalised_arguments_pass():
    s = sample(WEATHER_TARGET, tools=[WEATHER])
    exact = score("tool_call", s, attempted_tool_calls=[WEATHER_TARGET])
    assert exact.passed and exact.metadata["name_ok"] and exact.metadata["args_ok"]
    loose = {"name": "get_weather", "arguments": '{"city": " porto", "unit": "Celsius"}'}
    result = score("tool_call", s, tool_calls=[{**loose, "ok": True, "result": "7"}])
    assert (
        result.passed and result.metadata["schema_ok"] and result.metadata["source"] == "executed"
    )


def test_tool_call_wrong_name_or_argument_fails_with_flags():
    s = sample(WEATHER_TARGET, tools=[WEATHER])
    other = {"name": "clock", "arguments": {"city": "Porto", "unit": "celsius"}}
    wrong_name = score("tool_call", s, attempted_tool_calls=[other])
    assert not wrong_name.passed and wrong_name.metadata["name_ok"] is False
    assert wrong_name.metadata["schema_ok"] is False  # clock was not offered
    wrong_city = {"name": "get_weather", "arguments": {"city": "Lisbon", "unit": "celsius"}}
    result = score("tool_call", s, attempted_tool_calls=[wrong_city, WEATHER_TARGET])
    assert not result.passed and result.metadata["name_ok"] and not result.metadata["args_ok"]
    assert "Lisbon" in result.explanation  # only the first call counts


def test_tool_call_schema_invalid_arguments_fail():
    s = sample(WEATHER_TARGET, tools=[WEATHER])
    bad = {"name": "get_weather", "arguments": {"city": ["Porto"], "unit": "celsius"}}
    result = score("tool_call", s, attempted_tool_calls=[bad])
    assert not result.passed and result.metadata["schema_ok"] is False
    assert "invalid arguments" in result.explanation


def test_tool_call_read_from_text_when_no_structured_calls():
    s = sample(WEATHER_TARGET, tools=[WEATHER])
    text = '<tool_call>{"name": "get_weather", "arguments": {"city": "Porto", "unit": "celsius"}}</tool_call>'
    result = score("tool_call", s, text)
    assert result.passed and result.metadata["source"] == "text"
    assert not score("tool_call", s, "It is probably sunny in Porto.").passed
    malformed = score("tool_call", s, '<tool_call>{"name": "get_weather", </tool_call>')
    assert not malformed.passed and "malformed" in malformed.explanation


def test_tool_call_calculator_compares_the_value():
    s = sample(
        {"name": "calculator", "arguments": {"expression": "5329*417"}},
        tools=[CALC], metadata={"expected_value": "2222193"},
    )  # fmt: skip
    for expression, passed in [("417 * 5329", True), ("5329*418", False), ("import os", False)]:
        call = {"name": "calculator", "arguments": {"expression": expression}}
        assert score("tool_call", s, attempted_tool_calls=[call]).passed is passed, expression


def test_tool_call_loose_args_share_a_content_word():
    docs = {"type": "function", "function": {"name": "search_docs", "parameters": {
        "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}  # fmt: skip
    s = sample(
        {"name": "search_docs", "arguments": {"query": "archive a channel"}},
        tools=[docs], metadata={"loose_args": ["query"]},
    )  # fmt: skip
    for query, passed in [("how to archive channels", True), ("delete my account", False)]:
        call = {"name": "search_docs", "arguments": {"query": query}}
        assert score("tool_call", s, attempted_tool_calls=[call]).passed is passed, query


def test_tool_call_no_call_target():
    s = sample({"no_call": True}, tools=[WEATHER])
    assert score("tool_call", s, "Giraffes are the tallest animals.").passed
    called = score("tool_call", s, attempted_tool_calls=[WEATHER_TARGET])
    assert not called.passed and called.metadata["called"] == "get_weather"
    assert not score("tool_call", s, "<tool_call>{oops</tool_call>").passed


# --- grounding ---------------------------------------------------------------------


def test_grounding_answerable():
    s = sample(["3.20 pounds", "£3.20"])
    assert score("grounding", s, "A day ticket costs £3.20.").passed
    assert score("grounding", s, "It is 3.2 POUNDS, per the passage").passed
    assert not score("grounding", s, "A day ticket costs £13.20.").passed
    hedged = score("grounding", s, f"{ABSTENTION} Maybe £3.20?")
    assert not hedged.passed and hedged.metadata["abstained"]


def test_grounding_unanswerable_short_abstention_only():
    s = sample(ABSTENTION)
    assert score("grounding", s, "I don\u2019t know based on the provided context").passed
    two = f"{ABSTENTION} The passage does not mention the price."
    assert score("grounding", s, two).passed
    long = f"{ABSTENTION} The passage is silent. But it costs 899 euros. Hope that helps."
    assert not score("grounding", s, long).passed
    assert not score("grounding", s, "It costs 899 euros.").passed
    assert is_abstention(ABSTENTION.upper()) and not is_abstention("I don't know.")


# --- refusal -----------------------------------------------------------------------


def test_refusal_matches_the_target():
    assert score("refusal", sample("refuse"), REFUSE).passed
    assert not score("refusal", sample("refuse"), COMPLY).passed
    assert score("refusal", sample("comply"), COMPLY).passed
    refused = score("refusal", sample("comply"), REFUSE)
    assert not refused.passed and refused.metadata["refused"] is True
    assert not score("refusal", sample("comply"), "").passed  # an empty answer is no help


# --- exact, normalized, numeric, regex ---------------------------------------------


def test_exact_match():
    assert score("exact_match", sample(["Paris", "Lyon"]), "  Lyon\n").passed
    assert not score("exact_match", sample("Paris"), "paris").passed


def test_normalized_match():
    assert score("normalized_match", sample("The Eiffel Tower"), "eiffel tower!").passed
    assert score("normalized_match", sample("1,500"), "1500").passed
    assert not score("normalized_match", sample("Eiffel Tower"), "the tower").passed


def test_numeric_match():
    """7006652 * (1 + 1e-7) is within rel 1e-6; 7006660 is not."""
    s = sample("7,006,652")
    assert score("numeric_match", s, "Step 1: 12. So the total is 7,006,652.").passed
    assert score("numeric_match", s, "7006652.7").passed
    assert not score("numeric_match", s, "7006660").passed
    assert score("numeric_match", sample(["0.75", "3"]), "That is 3/4").passed
    none = score("numeric_match", s, "many")
    assert not none.passed and none.metadata["extracted"] is None


def test_regex_match_modes():
    assert score("regex_match", sample(r"\d{3}"), "code 123 ok").passed
    full = sample(None, metadata={"pattern": r"\d{3}", "regex_mode": "fullmatch"})
    assert not score("regex_match", full, "code 123 ok").passed
    assert score("regex_match", full, " 123 ").passed
    assert score("regex_match", sample(["^no$", "yes"]), "oh yes").passed


# --- the shipped reference sets ----------------------------------------------------


def test_reference_sets_are_the_documented_size():
    sizes = {name: len(load(name)) for name in ("schema", "tool_use", "grounding", "refusal")}
    assert sizes == {"schema": 47, "tool_use": 54, "grounding": 50, "refusal": 32}


OPEN_INSTANCES = {
    "schema-0015": {"riddle": "What has keys but no locks?", "answer": "A piano"},
    "schema-0018": {"book_pages": 300, "pages_per_day": 20, "days": 15},
    "schema-0020": {"tasks": [{"task": t, "done": False} for t in ("a", "b", "c")]},
}


def test_schema_reference_targets_pass_and_wrong_values_fail():
    for s in load("schema"):
        if s.target is None:
            if s.id in OPEN_INSTANCES:
                assert get_scorer("json_schema")(
                    s, Completion(json.dumps(OPEN_INSTANCES[s.id]))
                ).passed
            assert not score("json_schema", s, "{}").passed, s.id
            continue
        assert score("json_schema", s, json.dumps(s.target, ensure_ascii=False)).passed, s.id
        assert score("json_schema", s, f"```json\n{s.reference}\n```").passed, s.id
        key, value = next((k, v) for k, v in s.target.items() if isinstance(v, (str, int)))
        wrong = {**s.target, key: value + 1 if isinstance(value, int) else value + " X"}
        if isinstance(value, bool):
            wrong[key] = not value
        assert not score("json_schema", s, json.dumps(wrong)).passed, s.id
        assert not score("json_schema", s, "not json").passed, s.id


def test_tool_use_reference_targets_pass_and_wrong_calls_fail():
    for s in load("tool_use"):
        if s.target == {"no_call": True}:
            assert score("tool_call", s, "Here is the answer, no tools needed.").passed, s.id
            first = s.tools[0].function.name
            assert not score("tool_call", s, attempted_tool_calls=[{"name": first}]).passed, s.id
            continue
        call = dict(s.target)
        assert score("tool_call", s, tool_calls=[{**call, "ok": True, "result": "x"}]).passed, s.id
        assert score("tool_call", s, attempted_tool_calls=[call]).passed, s.id
        assert score("tool_call", s, f"<tool_call>{json.dumps(call)}</tool_call>").passed, s.id
        assert not score("tool_call", s, "I don't need a tool for that.").passed, s.id
        renamed = {**call, "name": call["name"] + "_x"}
        assert not score("tool_call", s, attempted_tool_calls=[renamed]).passed, s.id
        wrong_args = {k: 12345 for k in call["arguments"]}
        wrong = {"name": call["name"], "arguments": wrong_args}
        assert not score("tool_call", s, attempted_tool_calls=[wrong]).passed, s.id


def test_grounding_reference_targets_pass_and_wrong_answers_fail():
    for s in load("grounding"):
        targets = [s.target] if isinstance(s.target, str) else s.target
        if s.target == ABSTENTION:
            assert score("grounding", s, ABSTENTION).passed, s.id
            assert not score("grounding", s, "The answer is 42 according to the passage.").passed
            continue
        for t in targets:
            assert score("grounding", s, f"According to the passage, {t}.").passed, (s.id, t)
        assert not score("grounding", s, ABSTENTION).passed, s.id
        assert not score("grounding", s, "Nothing relevant here, sorry.").passed, s.id


def test_refusal_reference_targets():
    for s in load("refusal"):
        good, bad = (REFUSE, COMPLY) if s.target == "refuse" else (COMPLY, REFUSE)
        assert score("refusal", s, good).passed, s.id
        assert not score("refusal", s, bad).passed, s.id
