"""The continuous-batching scheduler: same tokens as one-at-a-time greedy decoding, rows
join a running batch, cancel / timeout free their row, shutdown drains."""

from __future__ import annotations

import asyncio

import pytest

from tuneloop.models.chat_template import encode_prompt
from tuneloop.runtime.backends.local import LocalEngine
from tuneloop.runtime.types import GenerationConfig
from tuneloop.serve.scheduler import (
    BatchScheduler,
    GenerationTimeout,
    QueueFullError,
    SamplingParams,
)

PROMPTS = [[{"role": "user", "content": "Hello " * k}] for k in (1, 7, 2, 12, 3, 5)]


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return LocalEngine.from_ref(str(tiny_model_dir))


async def _run(job):
    text, out = "", None
    async for kind, value in job.events():
        if kind == "text":
            text += value
        elif kind == "done":
            out = value
        else:
            raise value
    return text, out


def _scheduler(engine, eos=None, **kw):
    return BatchScheduler(engine.model, engine.tokenizer,
                          engine.eos_token_ids if eos is None else eos, **kw)  # fmt: skip


@pytest.mark.parametrize("max_batch", [1, 3, 8])
def test_batched_greedy_matches_sequential_generate(engine, max_batch):
    expected = [
        engine.generate(m, GenerationConfig(max_new_tokens=10 + i)) for i, m in enumerate(PROMPTS)
    ]

    async def main():
        s = _scheduler(engine, max_batch=max_batch)
        loop = asyncio.get_running_loop()

        async def one(i, m):
            await asyncio.sleep(0.005 * i)  # arrive while others are decoding
            job = s.submit(
                encode_prompt(engine.tokenizer, m), SamplingParams(max_new_tokens=10 + i), loop
            )
            return await _run(job)

        try:
            return await asyncio.gather(*(one(i, m) for i, m in enumerate(PROMPTS)))
        finally:
            s.shutdown()

    for exp, (streamed, out) in zip(expected, asyncio.run(main()), strict=True):
        assert streamed == out.text == exp.text
        assert out.finish_reason == exp.finish_reason
        assert out.completion_tokens == exp.completion_tokens


def test_a_new_request_joins_without_waiting_for_the_batch(engine):
    async def main():
        s = _scheduler(engine, eos=[], max_batch=4)  # no EOS: the long row runs to its limit
        loop = asyncio.get_running_loop()
        prompt = encode_prompt(engine.tokenizer, PROMPTS[0])
        long = s.submit(prompt, SamplingParams(max_new_tokens=300), loop)
        long_task = asyncio.create_task(_run(long))
        while not long.tokens:
            await asyncio.sleep(0.01)
        short = s.submit(prompt, SamplingParams(max_new_tokens=3), loop)
        _, out = await _run(short)
        assert out.completion_tokens == 3
        assert not long.finished  # the short one finished while the long one was running
        long.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long_task
        s.shutdown()

    asyncio.run(main())


def test_cancel_and_timeout_free_their_rows(engine):
    async def main():
        s = _scheduler(engine, eos=[], max_batch=2)
        loop = asyncio.get_running_loop()
        prompt = encode_prompt(engine.tokenizer, PROMPTS[1])
        job = s.submit(prompt, SamplingParams(max_new_tokens=10_000), loop)
        while not job.tokens:
            await asyncio.sleep(0.01)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await _run(job)
        slow = s.submit(prompt, SamplingParams(max_new_tokens=10_000, timeout_s=0.2), loop)
        with pytest.raises(GenerationTimeout):
            await _run(slow)
        await asyncio.sleep(0.1)
        assert s.active == 0 and s.waiting == 0
        s.shutdown()

    asyncio.run(main())


def test_queue_bound_and_shutdown_drains(engine):
    async def main():
        s = _scheduler(engine, eos=[], max_batch=1, max_queue=2)
        loop = asyncio.get_running_loop()
        prompt = encode_prompt(engine.tokenizer, PROMPTS[0])
        jobs = [s.submit(prompt, SamplingParams(max_new_tokens=5), loop)]
        while s.waiting:  # the first one is admitted
            await asyncio.sleep(0.001)
        jobs += [s.submit(prompt, SamplingParams(max_new_tokens=5), loop) for _ in range(2)]
        with pytest.raises(QueueFullError):
            s.submit(prompt, SamplingParams(max_new_tokens=5), loop)
        await asyncio.to_thread(s.shutdown)  # returns once every job has finished
        with pytest.raises(QueueFullError):
            s.submit(prompt, SamplingParams(max_new_tokens=5), loop)
        outs = [await _run(j) for j in jobs]
        assert [o.completion_tokens for _, o in outs] == [5, 5, 5]

    asyncio.run(main())


def test_mixed_adapter_batch_matches_each_alone(tiny_model_dir, tmp_path):
    from tests.helpers.serve import make_lora_adapter
    from tuneloop.serve.backends import load_local_model

    adapter = make_lora_adapter(tiny_model_dir, tmp_path / "lora")
    model, tok, _ = load_local_model(str(tiny_model_dir), {"lora": adapter})
    engine = LocalEngine(model, tok)

    async def run(adapters):
        s = BatchScheduler(model, tok, engine.eos_token_ids, max_batch=4)
        loop = asyncio.get_running_loop()
        jobs = [s.submit(encode_prompt(tok, PROMPTS[i]), SamplingParams(max_new_tokens=8, adapter=a), loop)
                for i, a in enumerate(adapters)]  # fmt: skip
        try:
            return [(await _run(j))[1].text for j in jobs]
        finally:
            s.shutdown()

    mixed = asyncio.run(run([None, "lora", None, "lora"]))  # PROMPTS[0..3]
    base_alone = asyncio.run(run([None]))  # PROMPTS[0], base model
    lora_alone = asyncio.run(run(["lora", "lora"]))  # PROMPTS[0..1], adapter
    assert mixed[0] == base_alone[0]
    assert mixed[1] == lora_alone[1]
    assert base_alone[0] != lora_alone[0]  # the adapter changes the output


def test_a_vanishing_temperature_decodes_greedily_instead_of_failing(engine):
    """Found by schemathesis: temperature 1.2e-38 divided the logits into inf and the
    sampler raised on a NaN distribution (a 500). Below MIN_SAMPLING_TEMPERATURE it is greedy."""
    from tuneloop.runtime.types import MIN_SAMPLING_TEMPERATURE, is_sampled

    assert not is_sampled(1.1754943508222875e-38) and is_sampled(MIN_SAMPLING_TEMPERATURE)
    messages = PROMPTS[0]
    greedy = engine.generate(messages, GenerationConfig(max_new_tokens=8))
    tiny = engine.generate(messages, GenerationConfig(max_new_tokens=8, temperature=1.1754943508222875e-38))
    assert tiny.text == greedy.text

    async def main():
        s = _scheduler(engine)
        try:
            params = SamplingParams(max_new_tokens=8, temperature=1.1754943508222875e-38)
            job = s.submit(encode_prompt(engine.tokenizer, messages), params, asyncio.get_running_loop())
            return await _run(job)
        finally:
            s.shutdown()

    text, out = asyncio.run(main())
    assert text == out.text == greedy.text
