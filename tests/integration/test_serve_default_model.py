"""The server over the real default model: the openai client, streaming, and a load test."""

from __future__ import annotations

import asyncio
import collections
import random
import time

import httpx
import openai
import psutil
import pytest

from tuneloop.serve import LocalBackend, ServeOptions, create_app, load_local_model, serve_in_thread

pytestmark = pytest.mark.integration

PARIS = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def server(default_model_dir):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy 2-core machine: two OpenMP threads spin at barriers
    model, tok, name = load_local_model("smollm2-135m-instruct")
    backend = LocalBackend(model, tok, name, max_batch=16, max_queue=16)
    app = create_app(backend, options=ServeOptions(request_timeout_s=120))
    try:
        with serve_in_thread(app) as url:
            yield url, name
    finally:
        torch.set_num_threads(threads)


def test_openai_client_completion_and_stream(server):
    url, name = server
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    r = client.chat.completions.create(model=name, messages=PARIS, max_tokens=32)
    assert "Paris" in r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    chunks = list(
        client.chat.completions.create(model=name, messages=PARIS, max_tokens=32, stream=True)
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == r.choices[0].message.content


def test_load_2000_requests_at_32_concurrent(server):
    """Every request gets 200 or 429 (none lost, none hung), and memory stays bounded."""
    url, name = server
    total, concurrency = 2000, 32
    statuses: collections.Counter = collections.Counter()
    rss: list[int] = []
    proc = psutil.Process()

    async def worker(ids, client):
        for i in ids:
            body = {"model": name, "max_tokens": random.Random(i).randint(1, 4),
                    "messages": [{"role": "user", "content": f"Say a number near {i}."}]}  # fmt: skip
            r = await client.post("/v1/chat/completions", json=body)
            statuses[r.status_code] += 1
            if r.status_code == 200:
                assert r.json()["choices"][0]["message"]["content"] is not None
            elif r.status_code == 429:
                assert r.headers["retry-after"] == "1"
            if i % 100 == 0:
                rss.append(proc.memory_info().rss)

    async def main():
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
            await asyncio.gather(
                *(worker(range(k, total, concurrency), client) for k in range(concurrency))
            )

    start = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - start
    assert sum(statuses.values()) == total
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[200] >= total // 10
    growth_mb = (max(rss[len(rss) // 2 :]) - rss[len(rss) // 4]) / 2**20
    print(
        f"\nload: {dict(statuses)} in {wall:.0f} s, RSS growth over the 2nd half {growth_mb:.0f} MB"
    )
    assert growth_mb < 200
    health = httpx.get(url + "/health").json()
    assert health["active"] == 0 and health["waiting"] == 0
