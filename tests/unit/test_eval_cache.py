"""The generation cache: hits, misses, uncacheable calls, fingerprints, persistence."""

from __future__ import annotations

import logging
import sqlite3
import threading

import pytest

from tuneloop.eval.cache import CachedModel, OutputCache, cache_key, model_fingerprint
from tuneloop.runtime.backends.fake import FakeModel
from tuneloop.runtime.backends.local import LocalEngine
from tuneloop.runtime.backends.openai_http import OpenAIChatModel
from tuneloop.runtime.types import ChatModel, GenerationConfig, generate_many

HI = [{"role": "user", "content": "Hi"}]
BYE = [{"role": "user", "content": "Bye"}]
TOOL = {"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}


def _echo(messages, config):
    return "echo: " + messages[-1]["content"]


def _fake(outputs=_echo, **kwargs) -> FakeModel:
    model = FakeModel(outputs, repeat_last=True, **kwargs)
    model.fingerprint = "fake-v1"  # FakeModel has none: without it nothing is cached
    return model


@pytest.fixture
def cache(tmp_path):
    with OutputCache(tmp_path / "outputs.db") as c:
        yield c


def test_same_prompt_and_config_hit(cache):
    fake = _fake()
    model = CachedModel(fake, cache)
    assert isinstance(model, ChatModel)
    first = model.generate(HI)
    second = model.generate(HI, GenerationConfig())  # None means the default config
    assert len(fake.calls) == 1
    assert second == first  # latency included: the output as first measured
    assert (model.hits, model.misses, model.uncacheable) == (1, 1, 0)
    assert cache.stats()["entries"] == 1


@pytest.mark.parametrize(
    "config",
    [
        GenerationConfig(max_new_tokens=7),
        GenerationConfig(seed=1),
        GenerationConfig(stop=["\n"]),
        GenerationConfig(top_p=0.5),
        GenerationConfig(tools=[TOOL]),
        GenerationConfig(tools=[TOOL], tool_choice="required"),
        GenerationConfig(json_schema={"type": "object"}),
        GenerationConfig(temperature=0.7, seed=1),
    ],
)
def test_any_config_change_misses(cache, config):
    fake = _fake()
    model = CachedModel(fake, cache)
    model.generate(HI)
    model.generate(HI, config)
    model.generate(HI, config)
    assert len(fake.calls) == 2
    assert (model.hits, model.misses) == (1, 2)


def test_other_prompt_or_fingerprint_misses(cache):
    fake = _fake()
    CachedModel(fake, cache).generate(HI)
    CachedModel(fake, cache).generate(BYE)
    CachedModel(fake, cache, fingerprint="fake-v2").generate(HI)
    assert len(fake.calls) == 3
    assert cache.stats() == {"entries": 3, "models": 2, "path": str(cache.path)}


def test_unseeded_sampling_is_never_cached(cache):
    fake = _fake()
    model = CachedModel(fake, cache)
    config = GenerationConfig(temperature=0.8)
    for _ in range(3):
        model.generate(HI, config)
    generate_many(model, [HI, HI], config)
    assert len(fake.calls) == 5
    assert (model.hits, model.misses, model.uncacheable) == (0, 0, 5)
    assert cache.stats()["entries"] == 0


def test_model_without_fingerprint_passes_through(cache):
    fake = FakeModel(_echo, repeat_last=True)
    assert model_fingerprint(fake) is None
    assert model_fingerprint(fake, strict=False) is not None
    model = CachedModel(fake, cache)
    model.generate(HI)
    model.generate(HI)
    assert len(fake.calls) == 2
    assert (model.hits, model.misses, model.uncacheable) == (0, 0, 2)


def test_stream_passes_through(cache):
    fake = _fake()
    model = CachedModel(fake, cache)
    model.generate(HI)
    chunks = list(model.stream(HI))
    assert chunks[-1].output.text == "echo: Hi"
    assert len(fake.calls) == 2
    assert model.uncacheable == 1


def test_batch_generates_only_misses_in_order(cache):
    fake = _fake()
    model = CachedModel(fake, cache)
    model.generate_batch([BYE, [{"role": "user", "content": "b"}]])
    assert len(fake.calls) == 2
    convs = [[{"role": "user", "content": x}] for x in ["a", "b", "c", "Bye", "a"]]
    outputs = generate_many(model, convs, None)
    assert [o.text for o in outputs] == ["echo: a", "echo: b", "echo: c", "echo: Bye", "echo: a"]
    # Only "a" and "c" were generated, "a" once although asked twice, in order.
    assert [c[0][-1]["content"] for c in fake.calls[2:]] == ["a", "c"]
    assert (model.hits, model.misses) == (3, 4)
    outputs[0].text = "changed"  # the duplicate is a copy, not the same object
    assert outputs[4].text == "echo: a"


def test_persists_across_instances(tmp_path):
    path = tmp_path / "cache" / "outputs.db"
    fake = _fake()
    with OutputCache(path) as first:
        original = CachedModel(fake, first).generate(HI)
    with OutputCache(path) as second:
        model = CachedModel(fake, second)
        assert model.generate(HI) == original
        assert model.hits == 1
    assert len(fake.calls) == 1
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_corrupted_row_is_a_miss(cache, caplog):
    fake = _fake()
    model = CachedModel(fake, cache)
    model.generate(HI)
    cache._conn.execute("UPDATE outputs SET output = '{\"text\": '")
    with caplog.at_level(logging.WARNING, logger="tuneloop.eval"):
        again = model.generate(HI)
    assert again.text == "echo: Hi"
    assert "unreadable cached output" in caplog.text
    assert len(fake.calls) == 2
    assert model.generate(HI) == again  # the bad row was replaced
    assert len(fake.calls) == 2


def test_threads_share_one_cached_model(cache):
    fake = _fake()
    model = CachedModel(fake, cache)
    prompts = [[{"role": "user", "content": f"q{i % 5}"}] for i in range(40)]
    errors: list[BaseException] = []

    def work(chunk):
        try:
            for p in chunk:
                assert model.generate(p).text == "echo: " + p[0]["content"]
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(prompts[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert model.hits + model.misses == 40
    assert model.misses == len(fake.calls) >= 5  # a race may generate a key twice
    assert cache.stats()["entries"] == 5


def test_cache_key_canonical_json():
    config = GenerationConfig()
    a = [{"role": "user", "content": "Hi", "name": "x"}]
    b = [{"name": "x", "content": "Hi", "role": "user"}]
    assert cache_key("f", a, config) == cache_key("f", b, config)
    assert cache_key("f", a, config) != cache_key("g", a, config)
    assert cache_key("f", a, config) != cache_key("f", HI, config)
    assert cache_key("f", a, config, "text") == cache_key("f", HI, config, "text")


def test_openai_fingerprint_is_url_and_name():
    a = OpenAIChatModel("http://127.0.0.1:8000", "m")
    b = OpenAIChatModel("http://127.0.0.1:8000/v1", "m")
    c = OpenAIChatModel("http://127.0.0.1:8001", "m")
    try:
        assert model_fingerprint(a) == model_fingerprint(b) != model_fingerprint(c)
    finally:
        for m in (a, b, c):
            m.close()


# ----------------------------------------------------------------------- local engine


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return LocalEngine.from_ref(str(tiny_model_dir))


def test_local_fingerprint_stable_across_loads(engine, tiny_model_dir):
    other = LocalEngine.from_ref(str(tiny_model_dir))
    fp = model_fingerprint(engine)
    assert fp is not None and len(fp) == 64
    assert model_fingerprint(other) == fp
    assert model_fingerprint(engine) == fp  # cached on the object


def test_local_fingerprint_sees_in_place_change(tiny_model_dir):
    import torch

    engine = LocalEngine.from_ref(str(tiny_model_dir))
    before = model_fingerprint(engine)
    weight = next(engine.model.parameters())
    saved = weight.detach().clone()
    with torch.no_grad():
        weight[0, 0] += 1.0
    after = model_fingerprint(engine)
    assert after != before
    with torch.no_grad():
        weight.copy_(saved)
    assert model_fingerprint(engine) == before  # same bytes, same hash


def test_local_fingerprint_sees_template_change(tiny_model_dir):
    engine = LocalEngine.from_ref(str(tiny_model_dir))
    before = model_fingerprint(engine)
    engine.tokenizer.chat_template = engine.tokenizer.chat_template.replace("tiny", "small")
    engine.__dict__.pop("_tuneloop_fingerprint")  # the cache watches weights only
    assert model_fingerprint(engine) != before


def test_rendered_prompt_keys_local_engine(engine, cache):
    model = CachedModel(engine, cache)
    assert model.tokenizer is engine.tokenizer and model.count_text("Hi") > 0
    assert model.supports_json_schema
    config = GenerationConfig(max_new_tokens=4)
    # The template reads role and content only: "id" does not change the prompt.
    a = [{"role": "user", "content": "Hi", "id": "1"}]
    b = [{"role": "user", "content": "Hi", "id": "2"}]
    first = model.generate(a, config)
    assert model.generate(b, config) == first
    assert (model.hits, model.misses) == (1, 1)
    assert model.generate(BYE, config).text is not None
    assert model.misses == 2
