"""FakeModel: the scripted ChatModel that runtime, eval and serve tests build on."""

from __future__ import annotations

import pytest

from tuneloop.runtime.backends import FakeModel, FakeModelExhausted
from tuneloop.runtime.types import ChatModel, GenerationConfig, GenerationOutput, generate_many

USER = [{"role": "user", "content": "What is the capital of France?"}]


def test_is_a_chat_model():
    assert isinstance(FakeModel(["x"]), ChatModel)


def test_scripted_outputs_come_in_order():
    model = FakeModel(["one", "two", "three"], name="scripted")
    texts = [model.generate(USER).text for _ in range(3)]
    assert texts == ["one", "two", "three"]
    assert model.name == "scripted"
    assert model.remaining == 0


def test_exhaustion_raises_a_clear_error():
    model = FakeModel(["only"])
    model.generate(USER)
    with pytest.raises(FakeModelExhausted, match="called 2 times but has only 1"):
        model.generate(USER)


def test_repeat_last_answers_forever():
    model = FakeModel(["a", "b"], repeat_last=True)
    assert [model.generate(USER).text for _ in range(4)] == ["a", "b", "b", "b"]


def test_empty_script_with_repeat_last_still_raises():
    with pytest.raises(FakeModelExhausted):
        FakeModel([], repeat_last=True).generate(USER)


def test_a_bare_string_is_one_output_not_characters():
    assert FakeModel("hello").generate(USER).text == "hello"


def test_callables_receive_messages_and_config():
    seen = {}

    def echo(messages, config):
        seen["config"] = config
        return messages[-1]["content"].upper()

    model = FakeModel([echo])
    out = model.generate([{"role": "user", "content": "shout this"}], GenerationConfig(seed=7))
    assert out.text == "SHOUT THIS"
    assert seen["config"].seed == 7


def test_callable_gets_a_default_config_when_none_is_given():
    model = FakeModel([lambda messages, config: str(config.max_new_tokens)])
    assert model.generate(USER).text == "256"


def test_generation_output_items_are_returned_as_scripted():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    scripted = GenerationOutput(text="", finish_reason="tool_calls", tool_calls=[call])
    out = FakeModel([scripted], name="m").generate(USER)
    assert out.finish_reason == "tool_calls"
    assert out.tool_calls == [call]
    assert out.model == "m"  # filled in when the script left it empty
    assert out is not scripted


def test_stop_cuts_at_the_first_stop_string():
    """Stops "###" at index 11 and "\\n" at 5: the earliest wins, stop text excluded."""
    model = FakeModel(["Paris\nis it ### more"])
    out = model.generate(USER, GenerationConfig(stop=["###", "\n"]))
    assert out.text == "Paris"
    assert out.finish_reason == "stop"


def test_max_new_tokens_counts_words():
    """'one two three four five' is 5 words; a limit of 3 keeps 'one two three'."""
    model = FakeModel(["one two  three four five", "one two"])
    cut = model.generate(USER, GenerationConfig(max_new_tokens=3))
    assert (cut.text, cut.finish_reason, cut.completion_tokens) == ("one two  three", "length", 3)
    whole = model.generate(USER, GenerationConfig(max_new_tokens=3))
    assert (whole.text, whole.finish_reason) == ("one two", "stop")


def test_length_limit_applies_before_a_later_stop_string():
    model = FakeModel(["a b c d STOP e"])
    out = model.generate(USER, GenerationConfig(max_new_tokens=2, stop=["STOP"]))
    assert (out.text, out.finish_reason) == ("a b", "length")


def test_token_counts_approximate_words():
    """Prompt: 'You are terse.' (3) + 'What is the capital of France?' (6) = 9 words."""
    messages = [{"role": "system", "content": "You are terse."}, *USER]
    out = FakeModel(["It is Paris."]).generate(messages)
    assert (out.prompt_tokens, out.completion_tokens) == (9, 3)
    assert out.model == "fake"


def test_content_parts_and_none_content_are_counted():
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "two words"}]},
        {"role": "assistant", "content": None, "tool_calls": []},
    ]
    assert FakeModel(["x"]).generate(messages).prompt_tokens == 2


def test_stream_reassembles_and_ends_with_the_output():
    text = "Paris is the capital\nof France."
    chunks = list(FakeModel([text]).stream(USER))
    assert len(chunks) > 2
    assert all(c.output is None and c.finish_reason is None for c in chunks[:-1])
    assert "".join(c.text for c in chunks) == text
    last = chunks[-1]
    assert last.finish_reason == "stop"
    assert last.output.text == text
    assert last.output.time_to_first_token_s is not None


def test_stream_honours_limits():
    chunks = list(FakeModel(["a b c d"]).stream(USER, GenerationConfig(max_new_tokens=2)))
    assert "".join(c.text for c in chunks) == "a b"
    assert chunks[-1].finish_reason == "length"


def test_calls_are_recorded_as_deep_copies():
    model = FakeModel(["a", "b"])
    messages = [{"role": "user", "content": "hi"}]
    config = GenerationConfig(stop=["x"])
    model.generate(messages, config)
    messages[0]["content"] = "changed"
    config.stop.append("y")
    model.generate(messages)
    assert model.calls[0] == ([{"role": "user", "content": "hi"}], GenerationConfig(stop=["x"]))
    assert model.calls[1][0][0]["content"] == "changed"
    assert model.calls[1][1] == GenerationConfig()


def test_generate_batch_and_generate_many():
    model = FakeModel(["a", "b", "c"])
    assert [o.text for o in model.generate_batch([USER, USER])] == ["a", "b"]
    assert [o.text for o in generate_many(model, [USER])] == ["c"]
    assert len(model.calls) == 3


def test_a_callable_returning_junk_is_a_type_error():
    with pytest.raises(TypeError, match="str or GenerationOutput"):
        FakeModel([lambda m, c: 42]).generate(USER)
