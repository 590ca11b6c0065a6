"""Where GRPO time goes on CPU: one GRPO step split into generation, scoring and
optimisation, and rollout tokens/s against the plain engine.

One run, the default model, the shipped config ``configs/grpo/smollm2-json.yaml``
(LoRA, 4 completions per prompt, 48-token cap, json_shape + json_schema rewards, the
DAPO overlong penalty), ``--steps`` optimizer steps after one untimed warm-up step:

1. **GRPO** through ``tuneloop.train.recipes.grpo.train``. TRL times its own blocks
   (``profiling_context``) but sends the numbers only to wandb/mlflow/trackio; this
   script records them instead. Per step:
   ``generation`` = ``transformers.generate`` (the rollouts), ``scoring`` =
   ``_calculate_rewards`` (our scorers as reward functions), ``logprobs`` = the extra
   no-grad forward for old/reference log-probs inside ``_prepare_inputs``, and
   ``optimisation`` = the rest of the step (loss forward, backward, optimizer).
   Rollout tokens/s = completion tokens (TRL's ``num_tokens`` minus prompt tokens is
   not logged, so mean completion length × completions) / generation seconds.
2. **plain engine**: the same prompts, 4 sampled completions each, the same token cap
   and temperature, through ``generate_many`` on tuneloop's ``LocalEngine`` (batched,
   KV cache, no grad): tokens/s of generation without the trainer around it.

Threads: one by default, as in the other benchmarks. Run:
``.venv/bin/python benchmarks/grpo_step.py`` (a few minutes); results go to
``benchmarks/results/grpo_step.json``. A benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import _env  # benchmarks/_env.py (this folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
CONFIG = ROOT / "configs" / "grpo" / "smollm2-json.yaml"


def record_trl_profiling() -> dict[str, list[float]]:
    """Make TRL's ProfilingContext append every duration to a dict we keep."""
    from trl.extras import profiling

    durations: dict[str, list[float]] = defaultdict(list)

    def log(self, duration: float) -> None:
        durations[self.name.split(".", 1)[-1]].append(duration)

    profiling.ProfilingContext._log_metrics = log
    return durations


def run_grpo(steps: int, threads: int) -> dict[str, Any]:
    import torch

    from tuneloop.train.config import GRPOConfig, load_config
    from tuneloop.train.recipes import grpo

    torch.set_num_threads(threads)
    durations = record_trl_profiling()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(CONFIG, GRPOConfig, [f"max_steps={steps + 1}", f"output_dir={tmp}", "save_steps=1000",
                                               "name=bench"])  # fmt: skip
        started = time.perf_counter()
        run = grpo.train(cfg)
        wall = time.perf_counter() - started
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps_rows = [r for r in rows if "step_time" in r][1:]  # drop the warm-up step
    n = len(steps_rows)
    gen = durations["transformers.generate"][1:][:n]
    score = durations["_calculate_rewards"][1:][:n]
    prepare = durations["_prepare_inputs"][1:][:n]
    step_time = [r["step_time"] for r in steps_rows]
    logprobs = [max(p - g - s, 0.0) for p, g, s in zip(prepare, gen, score, strict=False)]
    optimisation = [max(t - p, 0.0) for t, p in zip(step_time, prepare, strict=False)]
    completions = cfg.batch_size * cfg.gradient_accumulation_steps
    tokens = [r["completions/mean_length"] * completions for r in steps_rows]
    med = statistics.median
    return {
        "steps_timed": n, "wall_s_including_load": round(wall, 2),
        "step_s_median": round(med(step_time), 3),
        "split_s_median": {"generation": round(med(gen), 3), "scoring": round(med(score), 4),
                           "logprobs": round(med(logprobs), 3), "optimisation": round(med(optimisation), 3)},
        "split_share": {k: round(v / med(step_time), 3) for k, v in
                        {"generation": med(gen), "scoring": med(score), "logprobs": med(logprobs),
                         "optimisation": med(optimisation)}.items()},
        "rollout_tokens_per_s": round(sum(tokens) / sum(gen), 2),
        "completions_per_step": completions, "mean_completion_tokens": round(statistics.mean(
            r["completions/mean_length"] for r in steps_rows), 1),
        "reward_mean_by_step": [r.get("reward") for r in steps_rows],
    }  # fmt: skip


def run_engine(threads: int, repeats: int) -> dict[str, Any]:
    import torch

    from tuneloop.runtime.backends.local import LocalEngine
    from tuneloop.runtime.types import GenerationConfig, generate_many
    from tuneloop.train.config import GRPOConfig, load_config

    torch.set_num_threads(threads)
    cfg = load_config(CONFIG, GRPOConfig)
    rows = [
        json.loads(line)
        for line in (ROOT / "data/grpo/json_prompts.jsonl").read_text().splitlines()
    ]
    engine = LocalEngine.from_ref(cfg.model)
    per_step = cfg.batch_size // cfg.num_generations
    rates = []
    for i in range(repeats + 1):
        prompts = rows[i * per_step : (i + 1) * per_step]
        convs = [p["input"] for p in prompts for _ in range(cfg.num_generations)]
        config = GenerationConfig(
            max_new_tokens=cfg.max_completion_length, temperature=cfg.temperature, seed=i
        )
        started = time.perf_counter()
        outs = generate_many(engine, convs, config)
        wall = time.perf_counter() - started
        if i:  # the first call warms up
            rates.append(sum(o.completion_tokens for o in outs) / wall)
    return {
        "tokens_per_s_median": round(statistics.median(rates), 2),
        "calls": repeats,
        "batch": per_step * cfg.num_generations,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "grpo_step.json")
    args = parser.parse_args(argv)
    grpo = run_grpo(args.steps, args.threads)
    engine = run_engine(args.threads, args.steps)
    result = {
        "benchmark": "grpo_step",
        "environment": _env.environment(args.threads, ("trl", "peft")),
        "config": str(CONFIG.relative_to(ROOT)),
        "grpo": grpo,
        "engine": engine,
        "rollout_vs_engine": round(grpo["rollout_tokens_per_s"] / engine["tokens_per_s_median"], 3),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
