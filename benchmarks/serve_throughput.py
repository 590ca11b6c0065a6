"""tuneloop serve: continuous batching against the sequential baseline, and upstream overhead.

1. **Batching.** The same server code over the default model twice: ``--max-batch 16``
   (continuous batching) and ``--max-batch 1`` (one request at a time: the baseline).
   At each concurrency (1, 4, 16 by default) ``concurrency`` streaming clients send
   ``--requests-per-client`` requests each (greedy, ``max_tokens`` fixed, distinct
   prompts). Reported: output tokens/s (completion tokens of all requests / wall
   time), p50 / p99 time to first token (client side: request sent to first content
   chunk), p50 end-to-end latency. The speed-up is tokens/s on / off per concurrency.
2. **Upstream overhead.** A fast upstream (a tuneloop server over a scripted
   FakeModel, so the model costs ~nothing) is called directly and through a second
   tuneloop server in upstream mode (``--backend openai``), alternating, one request
   at a time. The added latency is the difference of the p50s (and of the p90s). All
   clients set TCP_NODELAY (``upstream_client``): without it, Nagle's algorithm and
   delayed ACKs add ~40 ms to some requests and swamp the difference.

Run: ``.venv/bin/python benchmarks/serve_throughput.py`` (about 10 minutes on 2
shared cores); results go to ``benchmarks/results/serve_throughput.json``. A
benchmark, not a test: nothing is asserted. Threads: one by default (see
``constrained_decoding.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import _env  # benchmarks/_env.py (this folder is on sys.path)
import httpx

RESULTS = Path(__file__).parent / "results"
TOPICS = ["rivers", "planets", "bread", "chess", "volcanoes", "bees", "trains", "music",
          "glaciers", "owls", "paper", "tides", "maps", "salt", "clocks", "kites"]  # fmt: skip


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))] if values else float("nan")


async def _stream_one(client: httpx.AsyncClient, model: str, prompt: str, max_tokens: int) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    start = time.perf_counter()
    ttft, tokens = None, 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if ttft is None and any(c["delta"].get("content") for c in chunk.get("choices", [])):
                ttft = time.perf_counter() - start
    return {"ttft": ttft, "e2e": time.perf_counter() - start, "tokens": tokens}


async def _load(url: str, model: str, concurrency: int, per_client: int, max_tokens: int) -> dict:
    async def client_loop(k: int, client):
        out = []
        for j in range(per_client):
            topic = TOPICS[(k * per_client + j) % len(TOPICS)]
            out.append(
                await _stream_one(client, model, f"Write two sentences about {topic}.", max_tokens)
            )
        return out

    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        await _stream_one(client, model, "Hi", 2)  # warm-up
        start = time.perf_counter()
        runs = await asyncio.gather(*(client_loop(k, client) for k in range(concurrency)))
        wall = time.perf_counter() - start
    results = [r for run in runs for r in run]
    ttfts = [r["ttft"] for r in results if r["ttft"] is not None]
    tokens = sum(r["tokens"] for r in results)
    return {"requests": len(results), "wall_s": round(wall, 2), "output_tokens": tokens,
            "output_tokens_per_s": round(tokens / wall, 2),
            "ttft_p50_s": round(_pct(ttfts, 0.5), 3), "ttft_p99_s": round(_pct(ttfts, 0.99), 3),
            "e2e_p50_s": round(_pct([r["e2e"] for r in results], 0.5), 3)}  # fmt: skip


def bench_batching(args) -> dict:
    from tuneloop.serve import (
        LocalBackend,
        ServeOptions,
        create_app,
        load_local_model,
        serve_in_thread,
    )

    model, tok, name = load_local_model(args.model)
    table: dict[str, dict] = {}
    for label, max_batch in (("batching_off", 1), ("batching_on", args.max_batch)):
        backend = LocalBackend(model, tok, name, max_batch=max_batch, max_queue=1024)
        app = create_app(backend, options=ServeOptions())
        with serve_in_thread(app) as url:
            for c in args.concurrency:
                r = asyncio.run(_load(url, name, c, args.requests_per_client, args.max_tokens))
                table.setdefault(str(c), {})[label] = r
                print(f"{label:13s} concurrency {c:2d}: {r}", file=sys.stderr, flush=True)
    for row in table.values():
        row["speedup_tokens_per_s"] = round(
            row["batching_on"]["output_tokens_per_s"] / row["batching_off"]["output_tokens_per_s"],
            2,
        )
    return table


def bench_upstream(args) -> dict:
    from tuneloop.runtime.backends.fake import FakeModel
    from tuneloop.runtime.backends.openai_http import OpenAIChatModel
    from tuneloop.serve import ChatModelBackend, create_app, serve_in_thread
    from tuneloop.serve.backends import upstream_client

    fake = FakeModel("The capital of France is Paris.", repeat_last=True)
    body = {
        "model": "fake",
        "messages": [{"role": "user", "content": "Capital of France?"}],
        "max_tokens": 16,
    }
    with serve_in_thread(create_app(ChatModelBackend(fake))) as up:
        front_app = create_app(
            ChatModelBackend(OpenAIChatModel(up, "fake", client=upstream_client()))
        )
        with serve_in_thread(front_app) as front, upstream_client(60) as client:
            times: dict[str, list[float]] = {"direct": [], "through_tuneloop": []}
            for i in range(args.upstream_requests + 20):
                for label, url in (("direct", up), ("through_tuneloop", front))[
                    :: 1 if i % 2 else -1
                ]:
                    start = time.perf_counter()
                    client.post(url + "/v1/chat/completions", json=body).raise_for_status()
                    if i >= 20:  # warm-up
                        times[label].append(time.perf_counter() - start)
    p = {k: {"p50_ms": round(_pct(v, 0.5) * 1000, 3), "p90_ms": round(_pct(v, 0.9) * 1000, 3)}
         for k, v in times.items()}  # fmt: skip
    return {"requests_each": args.upstream_requests, **p,
            "added_p50_ms": round(p["through_tuneloop"]["p50_ms"] - p["direct"]["p50_ms"], 3),
            "added_p90_ms": round(p["through_tuneloop"]["p90_ms"] - p["direct"]["p90_ms"], 3)}  # fmt: skip


def environment(threads: int) -> dict[str, Any]:
    return _env.environment(threads, ("fastapi", "uvicorn", "httpx"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--upstream-requests", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0 = torch's default")
    parser.add_argument("--parts", nargs="+", default=["batching", "upstream"])
    parser.add_argument("--out", type=Path, default=RESULTS / "serve_throughput.json")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    result: dict[str, Any] = {"benchmark": "serve_throughput", "environment": environment(args.threads),
                              "setup": {k: str(v) if isinstance(v, Path) else v
                                        for k, v in vars(args).items()}}  # fmt: skip
    start = time.perf_counter()
    if "batching" in args.parts:
        result["batching"] = bench_batching(args)
    if "upstream" in args.parts:
        result["upstream_overhead"] = bench_upstream(args)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    if args.out.exists() and set(args.parts) != {"batching", "upstream"}:
        previous = json.loads(args.out.read_text())  # keep the parts not re-run
        for key in ("batching", "upstream_overhead"):
            if key not in result and key in previous:
                result[key] = previous[key]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(
        json.dumps(
            {k: result[k] for k in ("batching", "upstream_overhead") if k in result}, indent=2
        )
    )


if __name__ == "__main__":
    main()
