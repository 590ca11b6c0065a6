"""SFT (LoRA) training throughput: tuneloop's recipe against plain ``trl.SFTTrainer``.

Both variants train the same model, on the same conversations in the same order, with
the same LoRA hyper-parameters (r=16, alpha=32, dropout 0.05, all-linear), batch size,
maximum length and number of steps:

- **tuneloop**: :func:`tuneloop.train.recipes.sft.train` as ``tuneloop train sft`` runs it
  (malloc mmap threshold pinned first, as the CLI does): conversations rendered once with
  assistant-only labels, ``batching: padding_free``, fp32, gradient checkpointing off,
  its own callbacks and record tracking.
- **baseline**: ``trl.SFTTrainer`` with TRL's defaults for data handling: a conversational
  ``messages`` dataset that TRL renders with the chat template and tokenizes itself,
  padding to the longest sequence in the batch, no packing, loss on every token. Only
  the settings in ``BASELINE_OVERRIDES`` differ from TRL's defaults; each says why.
  Tool calls are given to TRL already in the Hermes text form that tuneloop renders
  (``tuneloop.models.prepare_messages``), because SmolLM2's template cannot render
  ``tool_calls`` itself; both variants therefore see the same text.

Each run is a separate subprocess (clean peak RSS: the child's own ``VmHWM``, split at
the start of training into set-up and training peaks), the variants
alternate A/B/A/B for ``--repeats`` rounds so drifting machine load hits both alike, and
the first ``--warmup`` steps of each run are not timed.

Threads: one per run by default (``--threads 1``, the matmul peak too). On a shared
machine, OpenMP threads that outnumber the free cores spin at barriers: one LoRA
forward+backward of this model on 900 tokens took 5.9 s with one thread and 18-26 s
with two while another training job ran. ``--threads 0`` uses torch's default (all
cores), for an idle machine.

What is counted, the same way for both (a wrapper around the trainer's collator):

- *tokens*: non-padding input tokens (``attention_mask`` sum, or every token of a
  padding-free row);
- *label tokens*: positions whose shifted label is not -100 (what the loss sees). The
  baseline trains on every token, tuneloop on assistant tokens only: a different,
  intended objective, so label tokens/s are reported but the ratio uses input tokens;
- *padded tokens*: every position the model computed (padding included).

FLOP/s: the usual estimate of 6·N FLOPs per token (2·N forward, 4·N backward), N = the
weights of every linear layer (LoRA included; the tied LM head counted once as the head
matmul; attention-score FLOPs ignored), times non-padding tokens per second. For LoRA
this overstates the useful work: frozen weights need no weight gradient, so the
backward costs ~2·N, not 4·N, and ``lora_aware_flops_per_token`` (4·N_base + 6·N_lora)
is reported beside it. Gradient-checkpointing recomputation and padding are not useful
work and are not counted. The peak is *measured*: best time of ``torch.matmul`` on two
2048×2048 fp32 matrices (2·2048³ FLOPs), before and after the runs, in this process.

Run: ``.venv/bin/python benchmarks/train_throughput.py`` (about 10-15 minutes on 2 shared
CPU cores); results go to ``benchmarks/results/train_throughput.json``. A benchmark, not
a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
REFERENCE_DATA = "data/sft/*.jsonl"
VARIANTS = ("tuneloop", "baseline")

BASELINE_OVERRIDES = {
    "bf16": (False, "TRL's default bf16=True fails on a machine without a GPU ('Your setup doesn't "
                    "support bf16/gpu. You need to assign use_cpu...'); use_cpu=True would instead "
                    "train in bf16 autocast, while fp32 is the precision compared (tuneloop's CPU default)"),
    "max_length": ("--max-length", "TRL defaults 1024; both variants truncate at the same length"),
    "per_device_train_batch_size": ("--batch-size", "transformers defaults 8; same batch for both"),
    "max_steps": ("--warmup + --steps", "the run length being measured"),
    "output_dir": ("a temporary folder", "where the trainer writes; no checkpoint is written"),
    "peft_config": ("LoRA r=16, alpha=32, dropout 0.05, all-linear", "the same adapters as tuneloop's"),
}  # fmt: skip
"""Every TRL/transformers setting the baseline changes from its default, and why."""
BASELINE_KEPT = ("gradient_checkpointing=True, padding_free=False, packing=False, "
                 "assistant_only_loss=False / completion_only_loss=None (loss on all tokens of a "
                 "conversational dataset), learning_rate=2e-5 (throughput-neutral), logging_steps=10, "
                 "save_steps=500, seed=42, dataloader_num_workers=0")  # fmt: skip
"""TRL defaults the baseline keeps that matter for speed or for what is trained."""


# ------------------------------------------------------------------- data


def synthetic_conversations(path: Path, n: int = 200, seed: int = 0) -> Path:
    """``n`` conversations of mixed length (1-3 turns, 5-120 words per answer) as JSONL."""
    rng = random.Random(seed)
    words = ("the a model data train token loss batch layer weight answer question river "
             "mountain city history music number reason example simple careful").split()  # fmt: skip
    lines = []
    for i in range(n):
        messages = []
        if i % 3 == 0:
            messages.append({"role": "system", "content": "You are a concise, helpful assistant."})
        for turn in range(rng.choice([1, 1, 2, 3])):
            question = " ".join(rng.choices(words, k=rng.randint(5, 30)))
            answer = " ".join(rng.choices(words, k=rng.choice([5, 15, 40, 120])))
            messages += [{"role": "user", "content": f"Q{i}.{turn}: {question}?"},
                         {"role": "assistant", "content": answer.capitalize() + "."}]  # fmt: skip
        lines.append(json.dumps({"messages": messages}))
    path.write_text("\n".join(lines) + "\n")
    return path


def data_files(work: Path) -> tuple[list[str], str]:
    """The reference SFT files when present, else a synthetic set; and which it is."""
    files = sorted(glob.glob(str(ROOT / REFERENCE_DATA)))
    if files:
        return files, f"reference ({REFERENCE_DATA})"
    return [str(synthetic_conversations(work / "synthetic.jsonl"))], "synthetic (200 conversations)"


# ------------------------------------------------------------ measurement (child)


class Probe:
    """Counts tokens per collated batch and times each optimizer step (one process)."""

    def __init__(self):
        self.batches: list[dict[str, int]] = []
        self.step_wall: list[float] = []
        self.step_cpu: list[float] = []
        self.setup_rss_peak_kib: int | None = None
        self.train_rss_peak_kib: int | None = None

    def collator(self, inner):
        def collate(examples):
            batch = inner(examples)
            self.batches.append(_count(batch))
            return batch

        return collate

    def callback(self):
        from transformers import TrainerCallback

        probe = self

        class StepTimer(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                probe.setup_rss_peak_kib = _status_kib("VmHWM")
                _reset_peak_rss()

            def on_step_end(self, args, state, control, **kwargs):
                probe.step_wall.append(time.perf_counter())
                probe.step_cpu.append(time.process_time())

            def on_train_end(self, args, state, control, **kwargs):
                probe.train_rss_peak_kib = _status_kib("VmHWM")

        return StepTimer()


def _count(batch) -> dict[str, int]:
    ids, labels = batch["input_ids"], batch["labels"]
    mask = batch.get("attention_mask")
    real = int(mask.sum()) if mask is not None else ids.numel()
    return {"tokens": real, "padded_tokens": ids.numel(),
            "label_tokens": int((labels[..., 1:] != -100).sum()),
            "sequences": len(ids) if mask is not None else int((batch["position_ids"] == 0).sum())}  # fmt: skip


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _mib(kib: int | None) -> float | None:
    return kib / 1024 if kib else None


def _reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)
    except OSError:
        pass


def linear_params(model) -> tuple[int, int]:
    """(base, lora) weights of every linear layer: the N of the 6·N FLOPs estimate."""
    import torch

    base = lora = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            if "lora_" in name:
                lora += module.weight.numel()
            else:
                base += module.weight.numel()
    return base, lora


def run_tuneloop(spec: dict, probe: Probe) -> dict:
    """The real recipe, with the probe added to its trainer (nothing else changed)."""
    from tuneloop.cli.train import pin_malloc_threshold
    from tuneloop.train.config import SFTConfig
    from tuneloop.train.recipes import sft

    pin_malloc_threshold()  # what `tuneloop train sft` does before training

    holder: dict[str, Any] = {}
    real_track_records = sft.track_records

    def instrumented(trainer_cls):
        class Probed(real_track_records(trainer_cls)):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.add_callback(probe.callback())
                self.data_collator = probe.collator(self.data_collator)
                holder["model"] = self.model

        return Probed

    sft.track_records = instrumented
    config = SFTConfig(name="bench", model=spec["model"], method="lora",
                       output_dir=tempfile.mkdtemp(prefix="tuneloop-", dir=spec["work"]),
                       lora_r=16, lora_alpha=32, lora_dropout=0.05, lora_target_modules="all-linear",
                       train_files=spec["files"], validation_fraction=0.0, max_length=spec["max_length"],
                       batch_size=spec["batch_size"], max_steps=spec["warmup"] + spec["steps"],
                       save_steps=10**9, eval_steps=10**9, seed=spec["seed"])  # fmt: skip
    sft.train(config)
    return {"linear_params": linear_params(holder["model"])}


def baseline_dataset(spec: dict, tokenizer):
    """The conversations as a ``messages`` dataset, in the order tuneloop trains them."""
    from datasets import Dataset

    from tuneloop.data import read_records, to_chat_messages, tools_as_dicts
    from tuneloop.models import prepare_messages
    from tuneloop.train.datasets import RenderedSplit, split_rows

    rows = []
    for path in spec["files"]:
        for _, record in read_records(path, "conversation"):
            messages, _ = prepare_messages(tokenizer, to_chat_messages(record.messages),
                                           tools_as_dicts(record.tools))  # fmt: skip
            rows.append({"messages": messages})
    # tuneloop shuffles rows once (split_rows, fraction 0) before the sampler's own
    # seeded shuffle; the same call here gives both variants the same batches.
    rows = split_rows(RenderedSplit(rows), 0.0, spec["seed"])[0].rows
    return Dataset.from_list(rows)


def run_baseline(spec: dict, probe: Probe) -> dict:
    """Plain TRL: its defaults, except ``BASELINE_OVERRIDES``."""
    import trl

    from tuneloop.models import load_tokenizer, resolve_model
    from tuneloop.train.config import SFTConfig
    from tuneloop.train.modeling import lora_config

    resolved = resolve_model(spec["model"])
    tokenizer = load_tokenizer(resolved)
    peft_config = lora_config(SFTConfig(name="bench", train_files=["-"], lora_r=16, lora_alpha=32,
                                        lora_dropout=0.05, lora_target_modules="all-linear"))  # fmt: skip
    args = trl.SFTConfig(output_dir=tempfile.mkdtemp(prefix="baseline-", dir=spec["work"]), bf16=False,
                         max_length=spec["max_length"], per_device_train_batch_size=spec["batch_size"],
                         max_steps=spec["warmup"] + spec["steps"])  # fmt: skip
    trainer = trl.SFTTrainer(model=str(resolved.path), args=args, processing_class=tokenizer,
                             train_dataset=baseline_dataset(spec, tokenizer), peft_config=peft_config,
                             callbacks=[probe.callback()])  # fmt: skip
    trainer.data_collator = probe.collator(trainer.data_collator)
    trainer.train()
    return {"linear_params": linear_params(trainer.model),
            "gradient_checkpointing": bool(getattr(trainer.model, "is_gradient_checkpointing", None))}


def child(variant: str, spec_path: Path, out_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    probe = Probe()
    facts = (run_tuneloop if variant == "tuneloop" else run_baseline)(spec, probe)
    w, n = spec["warmup"], spec["steps"]
    if len(probe.step_wall) < w + n or len(probe.batches) < w + n:
        raise RuntimeError(f"{variant}: {len(probe.step_wall)} steps, {len(probe.batches)} batches")
    timed = probe.batches[w : w + n]
    wall = probe.step_wall[w + n - 1] - probe.step_wall[w - 1] if w else None
    cpu = probe.step_cpu[w + n - 1] - probe.step_cpu[w - 1] if w else None
    step_times = [b - a for a, b in zip(probe.step_wall[w - 1 : w + n - 1], probe.step_wall[w : w + n], strict=True)]
    out_path.write_text(json.dumps({
        "variant": variant, "timed_wall_s": wall, "timed_cpu_s": cpu, "step_s": step_times,
        **{k: sum(b[k] for b in timed) for k in ("tokens", "padded_tokens", "label_tokens", "sequences")},
        "first_batches": probe.batches[: w + 2],
        "setup_peak_rss_mib": _mib(probe.setup_rss_peak_kib),
        "train_peak_rss_mib": _mib(probe.train_rss_peak_kib),
        "process_peak_rss_mib": _mib(max(probe.setup_rss_peak_kib or 0, _status_kib("VmHWM") or 0)),
        "base_linear_params": facts["linear_params"][0], "lora_linear_params": facts["linear_params"][1],
        **{k: v for k, v in facts.items() if k != "linear_params"},
    }))  # fmt: skip


# ------------------------------------------------------------- orchestration (parent)


def launch(variant: str, spec_path: Path, work: Path, index: int, threads: int) -> dict:
    """One run in a fresh interpreter; returns its numbers plus its own peak RSS."""
    out, log_path = work / f"run{index}-{variant}.json", work / f"run{index}-{variant}.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, __file__, "--child", variant, "--spec", str(spec_path),
                                 "--out", str(out)], stdout=log, stderr=subprocess.STDOUT, env=env)  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log_path.read_text()[-4000:]
        raise RuntimeError(f"{variant} run failed (exit {proc.returncode}); log tail:\n{tail}")
    result = json.loads(out.read_text())
    result["process_wall_s"] = round(time.perf_counter() - start, 1)
    # Cross-check only: ru_maxrss survives execve, so it is at least the RSS this
    # (parent) process had when it forked the child; the child's own VmHWM is the figure.
    result["ru_maxrss_mib"] = usage.ru_maxrss / 1024  # KiB on Linux
    if result["process_peak_rss_mib"] is None:  # no /proc (not Linux)
        result["process_peak_rss_mib"] = result["ru_maxrss_mib"]
    wall = result["timed_wall_s"]
    result["tokens_per_s"] = result["tokens"] / wall
    result["label_tokens_per_s"] = result["label_tokens"] / wall
    result["padded_tokens_per_s"] = result["padded_tokens"] / wall
    result["tokens_per_cpu_s"] = result["tokens"] / result["timed_cpu_s"]
    return result


def matmul_peak(n: int = 2048, repeats: int = 10) -> dict[str, float]:
    """Best fp32 matmul FLOP/s with this process's torch threads, from ``repeats`` timings."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)  # warm-up (thread pool, caches)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t)
    return {"best_s": min(times), "median_s": statistics.median(times),
            "flops_per_s": 2 * n**3 / min(times)}  # fmt: skip


def environment(default_threads: int) -> dict[str, Any]:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), "")  # fmt: skip
    versions = {}
    for pkg in ("tuneloop", "torch", "transformers", "trl", "peft", "accelerate", "datasets",
                "bitsandbytes"):  # bitsandbytes: imported by peft when present (import cost)
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
            "cpu_count": os.cpu_count(), "torch_default_threads": default_threads,
            "torch_threads_used": torch.get_num_threads(),
            "simd": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags.split()],
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "versions": versions}  # fmt: skip


def summarize(runs: list[dict], peak: float) -> dict[str, Any]:
    """Medians per variant, the tuneloop/baseline ratio, and achieved FLOP/s."""
    out: dict[str, Any] = {}
    for v in VARIANTS:
        mine = [r for r in runs if r["variant"] == v]
        med = {k: statistics.median(r[k] for r in mine) for k in (
            "tokens_per_s", "label_tokens_per_s", "padded_tokens_per_s", "tokens_per_cpu_s",
            "process_peak_rss_mib", "timed_wall_s")}  # fmt: skip
        if all(r["train_peak_rss_mib"] for r in mine):
            med["train_peak_rss_mib"] = statistics.median(r["train_peak_rss_mib"] for r in mine)
        n_base, n_lora = mine[0]["base_linear_params"], mine[0]["lora_linear_params"]
        flops_6n = 6 * (n_base + n_lora)
        flops_lora = 4 * n_base + 6 * n_lora
        med.update({"flops_per_token_6n": flops_6n, "lora_aware_flops_per_token": flops_lora,
                    "achieved_flops_per_s_6n": flops_6n * med["tokens_per_s"],
                    "percent_of_peak_6n": 100 * flops_6n * med["tokens_per_s"] / peak,
                    "achieved_flops_per_s_lora_aware": flops_lora * med["tokens_per_s"],
                    "percent_of_peak_lora_aware": 100 * flops_lora * med["tokens_per_s"] / peak,
                    "padding_fraction": 1 - sum(r["tokens"] for r in mine) / sum(r["padded_tokens"] for r in mine),
                    "n_base_linear": n_base, "n_lora_linear": n_lora})  # fmt: skip
        out[v] = med
    pairs = [(a, b) for a, b in zip(runs[0::2], runs[1::2], strict=True)]
    out["ratio_tokens_per_s"] = out["tuneloop"]["tokens_per_s"] / out["baseline"]["tokens_per_s"]
    out["ratio_per_round"] = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in pairs]
    out["ratio_tokens_per_cpu_s"] = out["tuneloop"]["tokens_per_cpu_s"] / out["baseline"]["tokens_per_cpu_s"]
    out["ratio_label_tokens_per_s"] = (out["tuneloop"]["label_tokens_per_s"]
                                       / out["baseline"]["label_tokens_per_s"])  # fmt: skip
    out["ratio_peak_rss"] = out["tuneloop"]["process_peak_rss_mib"] / out["baseline"]["process_peak_rss_mib"]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="model reference (resolve_model)")
    parser.add_argument("--steps", type=int, default=12, help="timed optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before them (>= 1)")
    parser.add_argument("--repeats", type=int, default=2, help="A/B rounds (each: one run of each)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch/OpenMP threads per run and for the matmul peak; 0 = torch's "
                             "default (all cores: use on an idle machine only)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS / "train_throughput.json")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import torch

    default_threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        return child(args.child, args.spec, args.out)
    if args.warmup < 1:
        parser.error("--warmup must be at least 1 (the timed window starts at a step's end)")

    from tuneloop.models import resolve_model

    resolved = resolve_model(args.model)  # pulls an embedded model once, outside the timings
    with tempfile.TemporaryDirectory(prefix="train-throughput-") as tmp:
        work = Path(tmp)
        files, data_kind = data_files(work)
        spec = {"model": str(resolved.path), "files": files, "work": str(work), "steps": args.steps,
                "warmup": args.warmup, "batch_size": args.batch_size, "max_length": args.max_length,
                "seed": args.seed}  # fmt: skip
        spec_path = work / "spec.json"
        spec_path.write_text(json.dumps(spec))
        load_before = os.getloadavg()
        peak_before = matmul_peak()
        runs = []
        for rnd in range(args.repeats):
            for variant in VARIANTS:
                print(f"round {rnd + 1}/{args.repeats}: {variant} ...", flush=True)
                run = launch(variant, spec_path, work, len(runs), args.threads)
                run["round"] = rnd
                runs.append(run)
                print(f"  {run['tokens_per_s']:.0f} tokens/s, {run['label_tokens_per_s']:.0f} label "
                      f"tokens/s, peak RSS {run['process_peak_rss_mib']:.0f} MiB", flush=True)  # fmt: skip
        peak_after = matmul_peak()
    peak = max(peak_before["flops_per_s"], peak_after["flops_per_s"])
    result = {
        "benchmark": "train_throughput",
        "environment": {**environment(default_threads), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "settings": {"model": args.model, "model_path": str(resolved.path), "data": data_kind,
                     "data_files": [os.path.relpath(f, ROOT) for f in files], "steps": args.steps,
                     "warmup": args.warmup, "repeats": args.repeats, "batch_size": args.batch_size,
                     "max_length": args.max_length, "seed": args.seed, "threads": args.threads,
                     "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
                     "tuneloop": ("recipes.sft.train after cli.train.pin_malloc_threshold (as `tuneloop train "
                                  "sft`): padding_free, fp32, gradient checkpointing off"),
                     "baseline_overrides": {k: {"value": str(v), "why": why}
                                            for k, (v, why) in BASELINE_OVERRIDES.items()},
                     "baseline_defaults_kept": BASELINE_KEPT},
        "matmul_peak": {"n": 2048, "dtype": "float32", "before": peak_before, "after": peak_after,
                        "flops_per_s": peak},
        "flops_method": _FLOPS_NOTE,
        "runs": runs,
        "summary": summarize(runs, peak),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    s = result["summary"]
    print(json.dumps({k: s[k] for k in s if k.startswith("ratio")}, indent=2))
    for v in VARIANTS:
        print(v, json.dumps({k: round(x, 3) if isinstance(x, float) else x for k, x in s[v].items()}))
    print(f"matmul peak {peak / 1e9:.1f} GFLOP/s; results in {args.out}")


_FLOPS_NOTE = ("6*N FLOPs per non-padding token (2N forward + 4N backward), N = weights of all "
               "linear layers incl. LoRA and the (tied) LM head; attention scores ignored. For LoRA "
               "the frozen weights get no weight gradient, so ~4*N_base + 6*N_lora is the useful "
               "work (lora_aware); gradient-checkpointing recomputation and padding are not counted. "
               "Peak: best torch.matmul time of two 2048x2048 fp32 matrices, with the same "
               "thread count as the runs.")  # fmt: skip


if __name__ == "__main__":
    main()
