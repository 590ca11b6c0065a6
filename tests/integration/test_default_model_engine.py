"""LocalEngine and the chat template on the real default model."""

from __future__ import annotations

import pytest

from tuneloop.runtime.backends.local import LocalEngine
from tuneloop.runtime.types import GenerationConfig

pytestmark = pytest.mark.integration

QUESTIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Name a primary color."}],
    [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "What is 2+2?"}],
]


@pytest.fixture(scope="module")
def engine(default_model_dir):
    return LocalEngine.from_ref("smollm2-135m-instruct")


def test_greedy_paris(engine):
    out = engine.generate(QUESTIONS[0], GenerationConfig(max_new_tokens=32))
    assert "Paris" in out.text
    assert out.finish_reason == "stop"  # stopped at <|im_end|>, not the token limit
    assert "<|im_end|>" not in out.text


def test_batch_matches_single(engine):
    config = GenerationConfig(max_new_tokens=16)
    batched = [o.text for o in engine.generate_batch(QUESTIONS, config)]
    single = [engine.generate(q, config).text for q in QUESTIONS]
    assert batched == single


def test_stream_matches_generate(engine):
    config = GenerationConfig(max_new_tokens=24)
    chunks = list(engine.stream(QUESTIONS[0], config))
    assert len(chunks) > 2  # really streamed, not one blob
    assert "".join(c.text for c in chunks) == engine.generate(QUESTIONS[0], config).text
