"""Layer B throughput: an lm-eval generation task through tuneloop's batched engine
against lm-eval's own ``hf`` backend, and the cached re-run of the same task.

One run, the same local task (``data/eval/lm_eval/tuneloop_arithmetic.yaml``, 48
hand-written items, greedy, the YAML's ``max_gen_toks`` and stop strings, chat
template applied), the same model folder, the same torch threads:

1. **tuneloop**: ``run_lm_eval(TuneloopLM(LocalEngine), ...)``: lm-eval builds the
   requests and scores them, generation goes through ``generate_many`` on the local
   engine (left-padded batches of ``--batch-size``).
2. **lm-eval hf**: ``run_lm_eval(HFLM(pretrained=<folder>, batch_size=...), ...)``,
   once at ``--batch-size`` (the fair comparison) and once at lm-eval's default batch
   size 1 (what ``lm_eval --model hf`` does unless told otherwise).
   Both wall times cover the whole ``simple_evaluate`` call (task building, prompts,
   generation, filters, metrics); model loading is excluded. samples/s = items / wall.
   The two backends render prompts with the same chat template, so their accuracy
   and the share of identical outputs are reported as a check that they ran the same
   thing.
3. **cached re-run**: the task twice through ``evaluate(CachedModel(engine,
   OutputCache(tmp)))``: the second run answers every generation from the cache.
   Reported: second/first wall time for the whole Layer B run, and for the
   generation step alone (``generate_many`` on the same conversations), plus the
   one-off weight fingerprint a fresh process pays before its first cache lookup.

Order: an untimed warm-up of each backend on two items, then tuneloop and hf
alternated ``--repeats`` times (median reported). Threads: one by default
(``torch.set_num_threads``), as in the other benchmarks.

Run: ``.venv/bin/python benchmarks/eval_throughput.py`` (about 5 minutes on one
thread); results go to ``benchmarks/results/eval_throughput.json``. A benchmark, not
a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _env  # benchmarks/_env.py (this folder is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
TASKS = ROOT / "data" / "eval" / "lm_eval"
TASK = "tuneloop_arithmetic"


def environment(threads: int) -> dict[str, Any]:
    return _env.environment(threads, ("lm_eval", "datasets"))


def timed(lm: Any, limit: int | None) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one whole lm-eval run of the task, and lm-eval's output."""
    from tuneloop.eval.lmeval import run_lm_eval

    start = time.perf_counter()
    output = run_lm_eval(lm, [TASK], include_path=TASKS, limit=limit)
    return time.perf_counter() - start, output


def outputs(output: dict[str, Any]) -> dict[int, str]:
    return {row["doc_id"]: row["resps"][0][0] for row in output["samples"][TASK]}


def accuracy(output: dict[str, Any]) -> float:
    return output["results"][TASK]["exact_match,last-number"]


def compare(engine: Any, folder: str, args: argparse.Namespace) -> dict[str, Any]:
    from lm_eval.models.huggingface import HFLM

    from tuneloop.eval.lmeval import TuneloopLM

    ours = TuneloopLM(engine, batch_size=args.batch_size)
    start = time.perf_counter()
    hf = HFLM(pretrained=folder, device="cpu", dtype="float32", batch_size=args.batch_size)
    hf_load_s = time.perf_counter() - start
    timed(ours, 2), timed(hf, 2)  # warm-up, untimed
    walls: dict[str, list[float]] = {"tuneloop": [], "hf": []}
    last: dict[str, dict[str, Any]] = {}
    for _ in range(args.repeats):
        for name, lm in (("tuneloop", ours), ("hf", hf)):
            wall, last[name] = timed(lm, args.limit)
            walls[name].append(wall)
            print(f"  {name:9s} {wall:7.2f} s", file=sys.stderr)
    n = last["tuneloop"]["n-samples"][TASK]["effective"]
    hf_bs1 = None
    if args.hf_bs1:
        hf1 = HFLM(pretrained=folder, device="cpu", dtype="float32", batch_size=1)
        wall, last["hf_bs1"] = timed(hf1, args.limit)
        hf_bs1 = {"wall_s": round(wall, 3), "samples_per_s": round(n / wall, 3),
                  "accuracy_last_number": accuracy(last["hf_bs1"])}  # fmt: skip
        print(f"  hf bs=1   {wall:7.2f} s", file=sys.stderr)
    ours_s, hf_s = statistics.median(walls["tuneloop"]), statistics.median(walls["hf"])
    a, b = outputs(last["tuneloop"]), outputs(last["hf"])
    return {
        "items": n,
        "tuneloop": {"wall_s": [round(w, 3) for w in walls["tuneloop"]],
                     "samples_per_s": round(n / ours_s, 3),
                     "accuracy_last_number": accuracy(last["tuneloop"])},
        "hf": {"wall_s": [round(w, 3) for w in walls["hf"]], "samples_per_s": round(n / hf_s, 3),
               "accuracy_last_number": accuracy(last["hf"]), "load_s": round(hf_load_s, 3)},
        "hf_batch_size_1": hf_bs1,
        "speedup_vs_hf_same_batch": round(hf_s / ours_s, 3),
        "speedup_vs_hf_batch_size_1": round(hf_bs1["wall_s"] / ours_s, 3) if hf_bs1 else None,
        "identical_outputs": round(sum(a[k] == b.get(k) for k in a) / len(a), 3),
    }  # fmt: skip


def cached_rerun(engine: Any, args: argparse.Namespace) -> dict[str, Any]:
    from tuneloop.eval.cache import CachedModel, OutputCache, model_fingerprint
    from tuneloop.eval.lmeval import evaluate
    from tuneloop.runtime.types import GenerationConfig, generate_many

    start = time.perf_counter()
    model_fingerprint(engine)  # hashed once per process, then kept on the model object
    fingerprint_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        model = CachedModel(engine, OutputCache(Path(tmp) / "layer_b.db"))
        walls = []
        for _ in range(2):
            start = time.perf_counter()
            evaluate(model, [TASK], include_path=TASKS, limit=args.limit)
            walls.append(time.perf_counter() - start)
        layer_b = {"first_s": round(walls[0], 3), "second_s": round(walls[1], 3),
                   "fraction": round(walls[1] / walls[0], 4), "hits": model.hits,
                   "misses": model.misses}  # fmt: skip

        # The generation step alone: the same chat conversations lm-eval built.
        rows = [json.loads(x) for x in (TASKS / "arithmetic.jsonl").read_text().splitlines()]
        conversations = [[{"role": "user", "content": r["question"]}] for r in rows][: args.limit]
        config = GenerationConfig(max_new_tokens=24, stop=["\n\n", "Question:"])
        model = CachedModel(engine, OutputCache(Path(tmp) / "generation.db"))
        walls = []
        for _ in range(2):
            start = time.perf_counter()
            for i in range(0, len(conversations), args.batch_size):
                generate_many(model, conversations[i : i + args.batch_size], config)
            walls.append(time.perf_counter() - start)
        generation = {"first_s": round(walls[0], 3), "second_s": round(walls[1], 4),
                      "fraction": round(walls[1] / walls[0], 4), "hits": model.hits,
                      "misses": model.misses}  # fmt: skip
    return {"layer_b_evaluate": layer_b, "generation_only": generation,
            "fingerprint_once_per_process_s": round(fingerprint_s, 3)}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="model reference")
    parser.add_argument("--limit", type=int, default=None, help="items (default: all 48)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1, help="A/B rounds (median reported)")
    parser.add_argument("--no-hf-bs1", dest="hf_bs1", action="store_false",
                        help="skip lm-eval hf at batch size 1")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0 = torch's default")
    parser.add_argument("--out", type=Path, default=RESULTS / "eval_throughput.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

    import torch

    from tuneloop.models.resolve import resolve_model
    from tuneloop.runtime.backends.local import LocalEngine

    if args.threads:
        torch.set_num_threads(args.threads)
    env = environment(args.threads)
    started = time.perf_counter()
    folder = str(resolve_model(args.model).path)
    engine = LocalEngine.from_ref(folder)
    throughput = compare(engine, folder, args)
    cache = cached_rerun(engine, args)
    env["loadavg_after"] = os.getloadavg()
    result = {
        "benchmark": "eval_throughput",
        "environment": env,
        "settings": {"model": args.model, "task": TASK, "items": throughput["items"],
                     "batch_size": args.batch_size, "repeats": args.repeats,
                     "max_gen_toks": 24, "decoding": "greedy", "apply_chat_template": True},
        "throughput": throughput,
        "cached_rerun": cache,
        "wall_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    t, c = throughput, cache
    print(f"{'backend':28s} {'samples/s':>10s} {'acc (last number)':>18s}")
    print(
        f"{'tuneloop (batched engine)':28s} {t['tuneloop']['samples_per_s']:10.2f} "
        f"{t['tuneloop']['accuracy_last_number']:18.3f}"
    )
    print(
        f"{'lm-eval hf, same batch':28s} {t['hf']['samples_per_s']:10.2f} "
        f"{t['hf']['accuracy_last_number']:18.3f}"
    )
    if t["hf_batch_size_1"]:
        print(
            f"{'lm-eval hf, batch size 1':28s} {t['hf_batch_size_1']['samples_per_s']:10.2f} "
            f"{t['hf_batch_size_1']['accuracy_last_number']:18.3f}"
        )
    print(
        f"speedup vs hf same batch {t['speedup_vs_hf_same_batch']}x, "
        f"vs hf batch 1 {t['speedup_vs_hf_batch_size_1']}x; "
        f"identical outputs {t['identical_outputs']:.0%}"
    )
    print(f"cached re-run: Layer B {c['layer_b_evaluate']['fraction']:.1%} of first, "
          f"generation only {c['generation_only']['fraction']:.2%} of first")  # fmt: skip
    print(f"results in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
