"""Data-validation benchmarks, side by side with a baseline in the same run.

Part 1 (``--parts validate``) is validation throughput: ``tuneloop data validate``'s
library call (schema + rendering with the default model's chat template + exact and
near-duplicate detection + the other per-record checks) on 100k synthetic
conversations, records/s and peak memory, next to the baseline an unchecked pipeline
pays anyway: ``tokenizer.apply_chat_template(..., tokenize=True)`` on the same records
(no loss mask, no checks). Results: ``benchmarks/results/data_validate.json``.

Part 2 (``--parts dedup``) is near-duplicate detection:

- MinHash LSH (:func:`tuneloop.data.dedup.near_duplicate_pairs`) on 100k synthetic
  documents: wall and CPU time (CPU time is the steadier figure on a shared machine)
  and peak memory;
- the naive exact baseline (:func:`tuneloop.data.dedup.naive_near_duplicate_pairs`,
  every pair's Jaccard, O(n²)) and LSH on the first 5k of them: both times, and the
  recall and precision of LSH against the exact answer;
- the naive time at 100k is *not* measured (hours); it is extrapolated from the
  5k time by (100k/5k)² = 400 and labelled as an estimate.

The corpus: words drawn from a Zipf-like distribution over a 50k vocabulary, 60-250
words per document; 5% of documents are lightly edited copies (0.3-3% of the words,
at least one, replaced, inserted or deleted) of an earlier document and 1% exact copies with case
and punctuation changed. Every copy's source comes before it, so the 5k prefix holds
its own planted pairs. At 100k the recall of LSH on the planted pairs whose exact
Jaccard reaches the threshold is reported too (exact Jaccard of those pairs only).

Peak memory is the growth of the process's resident set while one step runs (Linux:
``/proc/self/clear_refs`` resets the high-water mark, ``VmHWM`` reads it), so it
includes numpy and datasketch. Run: ``.venv/bin/python benchmarks/data_validate.py``
(about 2-4 minutes on 2 CPU cores); results go to ``benchmarks/results/data_dedup.json``.
It is a benchmark, not a test: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from tuneloop.data.dedup import (
    exact_duplicate_groups,
    naive_near_duplicate_pairs,
    near_duplicate_pairs,
)

RESULTS = Path(__file__).parent / "results"


# ------------------------------------------------------------------ measurement


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


@dataclass
class Measured:
    result: Any
    wall_s: float
    cpu_s: float
    """CPU seconds of this process: less disturbed than wall time by other load."""
    peak_rss_growth_mib: float | None
    """Peak resident-set growth while it ran (None where the peak cannot be reset)."""

    def row(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 2),
            "cpu_s": round(self.cpu_s, 2),
            "peak_rss_growth_mib": self.peak_rss_growth_mib,
        }


def measure(fn: Callable[[], Any]) -> Measured:
    """Run ``fn`` once and measure it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kib("VmRSS")
    except OSError:
        before = None
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _status_kib("VmHWM") if before is not None else None
    mib = round((peak - before) / 1024, 1) if peak is not None and before is not None else None
    return Measured(result, wall, cpu, mib)


# ----------------------------------------------------------------------- corpus


def make_corpus(n: int, seed: int = 0) -> tuple[list[tuple[str, str]], list[tuple[int, int]]]:
    """``n`` synthetic documents as (key, text), and the planted (source, copy) pairs."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    vocab = np.array([f"tok{i}" for i in range(50_000)])
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05  # Zipf-like
    weights /= weights.sum()
    lengths = nrng.integers(60, 251, size=n)
    words = vocab[nrng.choice(len(vocab), size=int(lengths.sum()), p=weights)]
    texts: list[str] = []
    planted: list[tuple[int, int]] = []
    offset = 0
    for i, length in enumerate(lengths.tolist()):
        fresh = words[offset : offset + length].tolist()
        offset += length
        roll = rng.random()
        if i > 10 and roll < 0.05:
            src = rng.randrange(i)
            texts.append(_light_edit(rng, texts[src], vocab))
            planted.append((src, i))
        elif i > 10 and roll < 0.06:
            src = rng.randrange(i)
            texts.append(texts[src].upper().replace(" ", ", ", 3) + ".")
        else:
            texts.append(" ".join(fresh))
    return [(f"doc{i}", t) for i, t in enumerate(texts)], planted


def _light_edit(rng: random.Random, text: str, vocab: np.ndarray) -> str:
    words = text.split()
    for _ in range(max(1, round(len(words) * rng.uniform(0.003, 0.03)))):
        op, pos = rng.random(), rng.randrange(len(words))
        if op < 0.6:
            words[pos] = str(vocab[rng.randrange(len(vocab))])
        elif op < 0.8:
            words.insert(pos, str(vocab[rng.randrange(len(vocab))]))
        elif len(words) > 10:
            del words[pos]
    return " ".join(words)


def _exact_jaccard(a: str, b: str) -> float | None:
    """Exact Jaccard of two texts' shingles (None when they are exact duplicates)."""
    pairs = naive_near_duplicate_pairs([("a", a), ("b", b)], threshold=0.0)
    return pairs[0][2] if pairs else None


# ---------------------------------------------------------------------- part 2


def dedup_benchmark(n_docs: int, n_naive: int, threshold: float) -> dict[str, Any]:
    """Near-duplicate detection: MinHash LSH at ``n_docs``, LSH vs naive at ``n_naive``."""
    import datasketch  # noqa: F401  # imported before measuring, so its import is not counted

    log = functools.partial(print, file=sys.stderr, flush=True)
    log(f"[dedup] generating {n_docs} documents ...")
    items, planted = make_corpus(n_docs)

    # Small runs first: memory freed by a large run would be reused by a later small one,
    # hiding its growth. Timing of the LSH subset run is the best of 3, its memory the first.
    subset = items[:n_naive]
    log(f"[dedup] MinHash LSH on {n_naive} (3 runs) ...")
    runs = [measure(lambda: near_duplicate_pairs(subset, threshold=threshold)) for _ in range(3)]
    small = min(runs, key=lambda m: m.wall_s)
    small.peak_rss_growth_mib = runs[0].peak_rss_growth_mib
    log(f"[dedup] naive O(n^2) on {n_naive} (slow, once) ...")
    naive = measure(lambda: naive_near_duplicate_pairs(subset, threshold))

    log("[dedup] exact duplicate groups ...")
    exact = measure(lambda: exact_duplicate_groups(items))
    log(f"[dedup] MinHash LSH on {n_docs} ...")
    full = measure(lambda: near_duplicate_pairs(items, threshold=threshold))
    found = {(a, b) for a, b, _ in full.result}
    truth = {
        (items[a][0], items[b][0])
        for a, b in planted  # sources come first
        if (_exact_jaccard(items[a][1], items[b][1]) or 0) >= threshold
    }
    exact_of = {(a, b): s for a, b, s in naive.result}
    lsh_of = {(a, b): s for a, b, s in small.result}
    hits = set(exact_of) & set(lsh_of)
    scale = (n_docs / n_naive) ** 2
    return {
        "corpus": {
            "documents": n_docs,
            "words": sum(len(t.split()) for _, t in items),
            "planted_near_duplicates": len(planted),
            "planted_pairs_at_or_above_threshold": len(truth),
            "exact_duplicate_groups": len(exact.result),
            "description": "Zipf-like words over a 50k vocabulary, 60-250 words per document; 5% lightly "
            "edited copies (0.3-3% of words, at least one, changed), 1% case/punctuation copies",
        },
        "settings": {"threshold": threshold, "num_perm": 128, "shingle": "word 5-grams", "seed": 1},
        "exact_duplicate_groups": exact.row(),
        "minhash_lsh_full": {
            "documents": n_docs,
            **full.row(),
            "docs_per_second": round(n_docs / full.wall_s),
            "pairs_found": len(found),
            "recall_on_planted_pairs": round(len(truth & found) / len(truth), 4) if truth else None,
        },
        "subset": {
            "documents": n_naive,
            "naive": {
                **naive.row(),
                "pairs_compared": n_naive * (n_naive - 1) // 2,
                "pairs_found": len(exact_of),
            },
            "minhash_lsh": {**small.row(), "pairs_found": len(lsh_of)},
            "speedup_wall": round(naive.wall_s / small.wall_s, 1),
            "speedup_cpu": round(naive.cpu_s / small.cpu_s, 1),
            "lsh_recall_vs_naive": round(len(hits) / len(exact_of), 4) if exact_of else None,
            "lsh_precision_vs_naive": round(len(hits) / len(lsh_of), 4) if lsh_of else None,
            "mean_abs_estimate_error": round(
                float(np.mean([abs(lsh_of[p] - exact_of[p]) for p in hits])), 4
            )
            if hits
            else None,
        },
        "extrapolated": {
            "note": "ESTIMATE, not measured: the naive baseline is O(n^2), so its time at "
            f"{n_docs} documents is its measured {n_naive}-document time x ({n_docs}/{n_naive})^2 "
            f"= x{scale:.0f}. LSH at {n_docs} is measured.",
            "naive_cpu_s_at_full_size": round(naive.cpu_s * scale),
            "naive_cpu_hours_at_full_size": round(naive.cpu_s * scale / 3600, 1),
            "speedup_cpu_at_full_size": round(naive.cpu_s * scale / full.cpu_s),
        },
    }


# ---------------------------------------------------------------------- part 1
# (validation throughput: added by its own section; main() runs whatever parts exist)

# ------------------------------------------------------------ validation speed

_SUBJECTS = ["invoice", "garden", "compiler", "orbit", "recipe", "violin", "harbor", "glacier",
             "lantern", "meadow", "server", "poem", "bridge", "comet", "tulip", "kernel"]  # fmt: skip


def make_conversations(path: Path, n: int, seed: int = 0) -> None:
    """``n`` varied conversations (1-3 turns, some with a system prompt) as JSONL."""
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for i in range(n):
            msgs = [{"role": "system", "content": "You are a concise assistant."}] if i % 3 == 0 else []
            for t in range(1 + i % 3):
                a, b = rng.sample(_SUBJECTS, 2)
                k = rng.randint(1, 10**6)
                msgs.append({"role": "user", "content": f"Request {i}.{t}: relate the {a} to the {b} using {k}."})
                words = " ".join(rng.choice(_SUBJECTS) for _ in range(rng.randint(5, 60)))
                msgs.append({"role": "assistant", "content": f"Answer {i}.{t} ({k}): {words}."})
            fh.write(json.dumps({"messages": msgs}) + "\n")


def validate_benchmark(n: int, model: str) -> dict[str, Any]:
    import tempfile

    from tuneloop.data.io import read_records
    from tuneloop.data.records import to_chat_messages
    from tuneloop.data.validate import ValidateConfig, validate_files
    from tuneloop.models import load_tokenizer, render_for_training, resolve_model

    tokenizer = load_tokenizer(resolve_model(model))
    render = functools.partial(render_for_training, tokenizer)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "conversations.jsonl"
        make_conversations(path, n)

        def baseline() -> int:
            tokens = 0
            for _, rec in read_records(path, "conversation"):
                out = tokenizer.apply_chat_template(to_chat_messages(rec.messages), tokenize=True)
                tokens += len(out["input_ids"] if hasattr(out, "keys") else out)
            return tokens

        base = measure(baseline)
        full = measure(lambda: validate_files([path], ValidateConfig(render=render, max_len=1024)))
        schema_only = measure(lambda: validate_files([path], ValidateConfig()))
    report = full.result
    return {
        "records": n,
        "model": model,
        "tuneloop_validate": {**full.row(), "records_per_s": round(n / full.wall_s, 1),
                              "ok": report.ok, "findings": len(report.findings),
                              "rendering": report.stats.get("rendering")},  # fmt: skip
        "tuneloop_validate_without_rendering": {**schema_only.row(),
                                                "records_per_s": round(n / schema_only.wall_s, 1)},  # fmt: skip
        "baseline_apply_chat_template": {**base.row(), "records_per_s": round(n / base.wall_s, 1),
                                         "tokens": base.result},  # fmt: skip
        "validate_time_over_baseline": round(full.wall_s / base.wall_s, 2),
    }


PARTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "validate": lambda args: validate_benchmark(args.records, args.model),
    "dedup": lambda args: dedup_benchmark(args.docs, args.naive_docs, args.threshold),
}
OUTPUTS = {"validate": "data_validate.json", "dedup": "data_dedup.json"}


def _environment() -> dict[str, Any]:
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": cpus,
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "datasketch": version("datasketch"),
        "numpy": version("numpy"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated: {', '.join(PARTS)}"
    )
    parser.add_argument("--records", type=int, default=100_000, help="conversations to validate")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="tokenizer for rendering")
    parser.add_argument("--docs", type=int, default=100_000, help="documents for the LSH run")
    parser.add_argument("--naive-docs", type=int, default=5_000, help="documents for LSH vs naive")
    parser.add_argument(
        "--threshold", type=float, default=0.85, help="near-duplicate Jaccard threshold"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for part in args.parts.split(","):
        result = {
            "benchmark": f"data_validate.{part}",
            "environment": _environment(),
            **PARTS[part](args),
        }
        path = args.out / OUTPUTS.get(part, f"data_{part}.json")
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
