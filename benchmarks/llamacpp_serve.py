"""llama.cpp behind tuneloop: tokens/s through ``tuneloop serve --backend llamacpp`` against
the raw llama.cpp server, and against transformers (tuneloop's local engine), in one run.

1. The default model is exported to GGUF (f16, cached) and one ``llama_cpp.server`` is
   started (:class:`tuneloop.serve.llamacpp.LlamaCppServer`).
2. The same prompts are sent, one at a time (greedy, ``--max-tokens``), alternating
   which path goes first: (a) straight to llama.cpp's ``/v1/chat/completions``;
   (b) through tuneloop's app (``ChatModelBackend`` over the llama.cpp upstream, as
   ``--backend llamacpp`` builds it; tracing off). Output tokens/s = completion
   tokens / wall time per request, summed over requests. Goal: (b) ≥ 95% of (a).
3. The same prompts through transformers (``LocalEngine.generate``, fp32) give the
   speed-up that makes llama.cpp the CPU engine.

Run: ``.venv/bin/python benchmarks/llamacpp_serve.py`` (about 2 minutes); results go to
``benchmarks/results/llamacpp_serve.json``. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import httpx

RESULTS = Path(__file__).parent / "results"
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle gear works.",
    "List five tips for studying for an exam, with a sentence each.",
    "Describe the water cycle to a ten-year-old.",
    "What should I pack for a weekend hiking trip?",
    "Write a paragraph about the history of bread.",
]


def timed(client: httpx.Client, url: str, model: str, prompt: str, max_tokens: int) -> tuple[int, float]:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens, "temperature": 0}  # fmt: skip
    start = time.perf_counter()
    reply = client.post(f"{url}/chat/completions", json=body)
    reply.raise_for_status()
    return reply.json()["usage"]["completion_tokens"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from tuneloop.runtime.backends.local import LocalEngine
    from tuneloop.runtime.backends.openai_http import OpenAIChatModel
    from tuneloop.runtime.types import GenerationConfig
    from tuneloop.serve import ChatModelBackend, create_app, serve_in_thread
    from tuneloop.serve.llamacpp import LlamaCppServer, gguf_for

    torch.set_num_threads(args.threads)
    gguf, name = gguf_for("smollm2-135m-instruct")
    totals = {"direct": [0, 0.0], "tuneloop": [0, 0.0], "transformers": [0, 0.0]}
    with LlamaCppServer(gguf, threads=args.threads, model_name=name) as server:
        upstream = OpenAIChatModel(server.base_url, model=name, schema_format="llamacpp",
                                   timeout=600)  # fmt: skip
        app = create_app(ChatModelBackend(upstream), trace_sink=None)
        with serve_in_thread(app) as url, httpx.Client(timeout=600) as client:
            ours = f"{url}/v1"
            timed(client, server.base_url, name, "warm up", 8)
            timed(client, ours, name, "warm up", 8)
            for r in range(args.rounds):
                for i, prompt in enumerate(PROMPTS):
                    order = [("direct", server.base_url), ("tuneloop", ours)]
                    if (r + i) % 2:
                        order.reverse()
                    for key, base in order:
                        tokens, wall = timed(client, base, name, prompt, args.max_tokens)
                        totals[key][0] += tokens
                        totals[key][1] += wall
    engine = LocalEngine.from_ref("smollm2-135m-instruct")
    config = GenerationConfig(max_new_tokens=args.max_tokens)
    for prompt in PROMPTS:
        out = engine.generate([{"role": "user", "content": prompt}], config)
        totals["transformers"][0] += out.completion_tokens
        totals["transformers"][1] += out.latency_s
    rate = {k: v[0] / v[1] for k, v in totals.items()}
    result = {
        "benchmark": "llamacpp_serve",
        "model": name,
        "gguf": gguf.name,
        "settings": vars(args),
        "platform": platform.platform(),
        "tokens_per_s": {k: round(v, 2) for k, v in rate.items()},
        "tokens": {k: v[0] for k, v in totals.items()},
        "tuneloop_vs_direct": round(rate["tuneloop"] / rate["direct"], 4),
        "goal_tuneloop_vs_direct": 0.95,
        "llamacpp_vs_transformers": round(rate["direct"] / rate["transformers"], 2),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "llamacpp_serve.json").write_text(json.dumps(result, indent=2) + "\n")
    for key, value in rate.items():
        print(f"{key:<13} {value:7.1f} tokens/s")
    print(f"through tuneloop / direct: {result['tuneloop_vs_direct']:.3f} (goal >= 0.95); "
          f"llama.cpp / transformers: {result['llamacpp_vs_transformers']:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
