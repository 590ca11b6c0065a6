"""LocalEngine on the tiny random model: batching, stopping, streaming, seeding."""

from __future__ import annotations

import pytest

from tuneloop.models.chat_template import encode_prompt
from tuneloop.runtime.backends.local import LocalEngine
from tuneloop.runtime.types import ChatModel, GenerationConfig, generate_many

CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "What is the capital of France? Answer briefly and correctly."}],
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Compute 1234 * 5678 with the calculator tool."},
    ],
]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return LocalEngine.from_ref(str(tiny_model_dir))


def test_is_a_chat_model(engine):
    assert isinstance(engine, ChatModel)


def test_batched_greedy_equals_one_at_a_time(engine):
    """Left padding must not change greedy outputs: batch of 3 == 3 single calls."""
    config = GenerationConfig(max_new_tokens=12)
    batched = engine.generate_batch(CONVERSATIONS, config)
    single = [engine.generate(c, config) for c in CONVERSATIONS]
    assert [b.text for b in batched] == [s.text for s in single]
    assert [b.completion_tokens for b in batched] == [s.completion_tokens for s in single]
    assert generate_many(engine, CONVERSATIONS, config)[1].text == single[1].text


def test_counts_and_length_finish(engine):
    config = GenerationConfig(max_new_tokens=7)
    out = engine.generate(CONVERSATIONS[0], config)
    assert out.prompt_tokens == len(encode_prompt(engine.tokenizer, CONVERSATIONS[0]))
    assert out.completion_tokens <= 7
    if out.finish_reason == "length":
        assert out.completion_tokens == 7
    assert out.latency_s > 0 and out.model == engine.name


def test_eos_token_ends_generation(tiny_model_dir):
    """Make <|im_end|> overwhelmingly likely: generation stops after one token."""
    import torch

    engine = LocalEngine.from_ref(str(tiny_model_dir))
    eos = engine.tokenizer.convert_tokens_to_ids("<|im_end|>")
    with torch.no_grad():
        bias = torch.zeros(engine.model.config.vocab_size)
        bias[eos] = 1e4
        engine.model.lm_head.register_forward_hook(lambda m, i, o: o + bias)
    out = engine.generate(CONVERSATIONS[0], GenerationConfig(max_new_tokens=10))
    assert out.text == "" and out.finish_reason == "stop" and out.completion_tokens == 1


def test_stop_string_cuts_text(engine):
    base = engine.generate(CONVERSATIONS[1], GenerationConfig(max_new_tokens=20)).text
    assert len(base) > 4, "tiny model produced too little text for this test"
    stop = base[2:4]
    out = engine.generate(CONVERSATIONS[1], GenerationConfig(max_new_tokens=20, stop=[stop]))
    assert stop not in out.text
    assert base.startswith(out.text)
    assert out.finish_reason == "stop"


def test_stream_reassembles_to_generate(engine):
    config = GenerationConfig(max_new_tokens=15)
    chunks = list(engine.stream(CONVERSATIONS[2], config))
    final = chunks[-1]
    assert final.output is not None and final.finish_reason == final.output.finish_reason
    streamed = "".join(c.text for c in chunks)
    full = engine.generate(CONVERSATIONS[2], config)
    assert streamed == final.output.text == full.text
    assert final.output.completion_tokens == full.completion_tokens


def test_stream_honours_stop_strings(engine):
    base = engine.generate(CONVERSATIONS[1], GenerationConfig(max_new_tokens=20)).text
    stop = base[3:5]
    chunks = list(engine.stream(CONVERSATIONS[1], GenerationConfig(max_new_tokens=20, stop=[stop])))
    streamed = "".join(c.text for c in chunks)
    assert stop not in streamed and base.startswith(streamed)


def test_sampling_is_reproducible_with_a_seed(engine):
    config = GenerationConfig(max_new_tokens=15, temperature=1.0, seed=123)
    a = engine.generate(CONVERSATIONS[0], config).text
    b = engine.generate(CONVERSATIONS[0], config).text
    others = {
        engine.generate(CONVERSATIONS[0], config.model_copy(update={"seed": s})).text
        for s in range(5)
    }
    assert a == b
    assert len(others | {a}) > 1  # seeds matter: sampling is really on
