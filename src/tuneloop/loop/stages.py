"""The loop's stages. Each reads the loop config and earlier stages' folders, writes its
own folder, and returns a summary (what ``stage.json`` and the report show).

A stage calls the same library functions as the CLI verb of its name (``tuneloop
eval``, ``mine``, ``data mix``, ``train sft|dpo``, ``merge``, ``export``, ``gate``), so
what the loop does can be repeated by hand, one command at a time.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tuneloop.loop.config import LoopConfig


@dataclass(frozen=True)
class Stage:
    """One step of the loop: its folder number and name, the stages whose outputs it
    reads, and the config keys (and files named by them) that decide its outputs."""

    number: int
    name: str
    needs: tuple[str, ...]
    keys: tuple[str, ...]
    run: Callable[[LoopConfig, Path, Path], dict[str, Any]]

    @property
    def folder(self) -> str:
        return f"{self.number:02d}-{self.name}"


def stage_dir(loop_dir: Path, name: str) -> Path:
    """The folder of stage ``name`` in ``loop_dir``."""
    return loop_dir / next(s.folder for s in STAGES if s.name == name)


def _eval_cache():
    from tuneloop.eval.cache import OutputCache
    from tuneloop.models.home import tuneloop_home

    return OutputCache(tuneloop_home() / "eval-cache.db")


def _scorecard(cfg: LoopConfig):
    from tuneloop.eval.tasks import load_scorecard

    return load_scorecard(cfg.scorecard).with_limit(cfg.eval_limit)


def _summary(results: dict[str, Any]) -> dict[str, Any]:
    return {f"{task}/{metric}": value["mean"] for task, entry in results["tasks"].items()
            for metric, value in entry.get("metrics", {}).items()}  # fmt: skip


# --- 1. baseline ---------------------------------------------------------------------


def baseline(cfg: LoopConfig, loop_dir: Path, out: Path) -> dict[str, Any]:
    """The scorecard of the current model (``tuneloop eval``)."""
    from tuneloop.eval.runner import run_scorecard
    from tuneloop.runtime.backends.local import LocalEngine

    cache = _eval_cache()
    try:
        results = run_scorecard(
            _scorecard(cfg), LocalEngine.from_ref(cfg.model), out_dir=out, cache=cache
        )
    finally:
        cache.close()
    return {"metrics": _summary(results), "cache": results["cache"]}


# --- 2. assistant --------------------------------------------------------------------


def _prompts(cfg: LoopConfig) -> list:
    from tuneloop.data.io import read_records
    from tuneloop.train.datasets import expand_files

    samples = []
    for path in expand_files(cfg.assistant.prompts, "assistant.prompts"):
        samples += [rec for _, rec in read_records(path, "eval")]
    return samples[: cfg.assistant.limit] if cfg.assistant.limit else samples


def assistant(cfg: LoopConfig, loop_dir: Path, out: Path) -> dict[str, Any]:
    """The runtime over the prompt set, every run stored as a trace in ``traces.db``."""
    from tuneloop.data.records import to_chat_messages
    from tuneloop.runtime.assistant import Assistant, AssistantConfig
    from tuneloop.runtime.backends.local import LocalEngine
    from tuneloop.runtime.builtin_tools import builtin_registry
    from tuneloop.runtime.structured import RepairBudget
    from tuneloop.tracing import TraceSink

    a = cfg.assistant
    engine = LocalEngine.from_ref(cfg.model)
    sink = TraceSink(out / "traces.db")
    config = AssistantConfig(constrain_first=a.constrain_first, repair=RepairBudget(max_repairs=a.max_repairs),
                             max_steps=3, generation={"max_new_tokens": a.max_new_tokens})  # fmt: skip
    counts = {"runs": 0, "ok": 0, "failed": 0, "repaired": 0, "tool_calls": 0}
    rows = []
    for sample in _prompts(cfg):
        registry = builtin_registry(a.tools) if a.tools else None
        runner = Assistant(engine, registry, config, output_schema=sample.schema_, sink=sink)
        result = runner.run(to_chat_messages(sample.input))
        repairs = sum(e.kind == "repair" for e in result.events)
        calls = sum(e.kind == "tool_call" for e in result.events)
        counts["runs"] += 1
        counts["ok" if result.ok else "failed"] += 1
        counts["repaired"] += int(repairs > 0 and result.ok)
        counts["tool_calls"] += calls
        rows.append({"id": sample.id, "run_id": result.run_id, "ok": result.ok, "repairs": repairs,
                     "error": str(result.error) if result.error else None})  # fmt: skip
        print(
            f"assistant {counts['runs']}: {sample.id} ok={result.ok} repairs={repairs}", flush=True
        )
    sink.close()
    (out / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return counts


# --- 3. data -------------------------------------------------------------------------


def data(cfg: LoopConfig, loop_dir: Path, out: Path) -> dict[str, Any]:
    """Mine the traces (``tuneloop mine``), mix with reference SFT data (``tuneloop data
    mix``), merge mined and reference pairs; every output validated, blocking."""
    from tuneloop.data.io import read_records, write_jsonl
    from tuneloop.data.mix import build_mix
    from tuneloop.data.mix_config import MixConfig
    from tuneloop.data.validate import ValidateConfig, validate_files
    from tuneloop.models.resolve import load_tokenizer, resolve_model
    from tuneloop.tracing.mine import MineConfig, MinedTrace, mine
    from tuneloop.tracing.store import TraceStore
    from tuneloop.train.datasets import expand_files

    d = cfg.data
    eval_sets = [str(p) for p in expand_files(d.eval_sets, "data.eval_sets")]
    store = TraceStore(stage_dir(loop_dir, "assistant") / "traces.db")
    traces = [MinedTrace(trace_id=s.trace_id, events=store.run_events(s.trace_id),
                         feedback=store.feedback_for(s.trace_id)) for s in store.list_traces()]  # fmt: skip
    report = mine(traces, out / "mined", MineConfig(eval_sets=eval_sets))
    sources = [dict(s) for s in d.sft_sources]
    mined_sft = out / "mined" / "sft.jsonl"
    if report.counts.get("sft"):
        # Every mined record, once: the training checks block repeated records, so
        # mined data gains weight through ``count`` rather than upsampling.
        sources.append({"path": str(mined_sft), "name": "mined", "count": report.counts["sft"],
                        "synthetic": True})  # fmt: skip
    mix = MixConfig(name="sft", output_dir=out / "sft", seed=cfg.seed, sources=sources, eval_sets=d.eval_sets,
                    validation_fraction=d.validation_fraction, model=cfg.model)  # fmt: skip
    manifest = build_mix(mix, tokenizer=load_tokenizer(resolve_model(cfg.model)))
    pairs = [rec for _, rec in read_records(out / "mined" / "preferences.jsonl", "preference")]
    for path in expand_files(d.preference_files, "data.preference_files"):
        pairs += [rec for _, rec in read_records(path, "preference")]
    write_jsonl(out / "preferences.jsonl", pairs)
    checked = validate_files([out / "sft" / "train.jsonl", out / "preferences.jsonl"],
                             ValidateConfig(eval_sets=eval_sets))  # fmt: skip
    (out / "validation.json").write_text(json.dumps(checked.to_dict(), indent=2, default=str))
    if not checked.ok:
        raise ValueError(f"data validation failed (blocking): see {out / 'validation.json'}")
    return {"mined": report.counts, "mined_reasons": report.reasons, "sft_mix": manifest["totals"],
            "preference_pairs": len(pairs), "mined_pairs": report.counts.get("preferences", 0)}  # fmt: skip


# --- 4/5. training -------------------------------------------------------------------


def _recipe_config(block, cls, overrides: dict[str, Any]):
    """The recipe's YAML config with the loop block's ``set`` keys, then the loop's own."""
    from tuneloop.train.config import load_config

    merged = {**block.set, **overrides}
    return load_config(block.config, cls, [f"{k}={json.dumps(v)}" for k, v in merged.items()])


def sft(cfg: LoopConfig, loop_dir: Path, out: Path) -> dict[str, Any]:
    """SFT (``tuneloop train sft``) on the mix."""
    from tuneloop.train.config import SFTConfig
    from tuneloop.train.modeling import pin_malloc_threshold
    from tuneloop.train.recipes import sft as recipe

    pin_malloc_threshold()  # as `tuneloop train` does: peak memory ~40% lower on CPU

    mix = stage_dir(loop_dir, "data") / "sft"
    config = _recipe_config(cfg.sft, SFTConfig, {
        "name": "run", "output_dir": str(out), "model": cfg.model, "seed": cfg.seed,
        "train_files": [str(mix / "train.jsonl")], "validation_files": [str(mix / "validation.jsonl")],
        "eval_sets": cfg.data.eval_sets,
    })  # fmt: skip
    run = recipe.train(config)
    return _run_summary(run)


def dpo(cfg: LoopConfig, loop_dir: Path, out: Path) -> dict[str, Any]:
    """DPO (``tuneloop train dpo``) on mined + reference pairs, on top of the SFT adapter."""
    from tuneloop.train.config import DPOConfig
    from tuneloop.train.modeling import pin_malloc_threshold
    from tuneloop.train.recipes import dpo as recipe

    pin_malloc_threshold()

    config = _recipe_config(cfg.dpo, DPOConfig, {
        "name": "run", "output_dir": str(out), "model": cfg.model, "seed": cfg.seed,
        "train_files": [str(stage_dir(loop_dir, "data") / "preferences.jsonl")],
        "adapter": str(stage_dir(loop_dir, "sft") / "run"), "eval_sets": cfg.data.eval_sets,
    })  # fmt: skip
    run = recipe.train(config)
    return _run_summary(run)


def _run_summary(run: Path) -> dict[str, Any]:
    results = json.loads((run / "results.json").read_text())
    train = results.get("train") or {}
    return {"run": str(run), "train_loss": train.get("train_loss"), "train_runtime_s": train.get("train_runtime"),
            "eval_loss": (results.get("eval") or {}).get("eval_loss")}  # fmt: skip


# --- 6. export -----------------------------------------------------------------------


def export(cfg: LoopConfig, loop_dir: Path, out: Path) -> dict[str, Any]:
    """Merge the last run into a full model with a parity check, and write its model card."""
    from tuneloop.train.export import write_model_card
    from tuneloop.train.merge import merge_run

    run = stage_dir(loop_dir, "dpo" if cfg.dpo else "sft") / "run"
    result = merge_run(run, out / "model")
    mix_manifest = stage_dir(loop_dir, "data") / "sft" / "manifest.json"
    write_model_card(out / "model", run_dir=run, data_card=mix_manifest)
    summary = {"model": str(out / "model"), "merge": result.to_dict()}
    if cfg.export_gguf:
        from tuneloop.models.gguf_export import export_gguf

        summary["gguf"] = str(export_gguf(out / "model", out / "model.gguf"))
    return summary


# --- 7. candidate --------------------------------------------------------------------


def candidate(cfg: LoopConfig, loop_dir: Path, out: Path) -> dict[str, Any]:
    """The candidate's scorecard, compared with the baseline's, then the gate."""
    from tuneloop.eval.gate import evaluate_gate, load_policy
    from tuneloop.eval.runner import compare, render_report, run_scorecard
    from tuneloop.runtime.backends.local import LocalEngine

    model = stage_dir(loop_dir, "export") / "model"
    cache = _eval_cache()
    try:
        results = run_scorecard(
            _scorecard(cfg), LocalEngine.from_ref(str(model)), out_dir=out, cache=cache
        )
    finally:
        cache.close()
    base = json.loads((stage_dir(loop_dir, "baseline") / "results.json").read_text())
    results["baseline"] = {**base["model"], "results": "../01-baseline/results.json"}
    results["comparison"] = compare(results, base)
    (out / "results.json").write_text(
        json.dumps(results, indent=2, ensure_ascii=False, allow_nan=False)
    )
    (out / "report.html").write_text(render_report(results))
    gate = evaluate_gate(results, base, load_policy(cfg.gate))
    (out / "gate.json").write_text(gate.model_dump_json(indent=2))
    return {
        "metrics": _summary(results),
        "gate_passed": gate.passed,
        "comparison": results["comparison"],
    }


# --- 8. report -----------------------------------------------------------------------


def report(cfg: LoopConfig, loop_dir: Path, out: Path) -> dict[str, Any]:
    """One HTML page: what was mined, data cards, curves, deltas with CIs, the verdict."""
    from tuneloop.loop.report import render_loop_report

    (out / "report.html").write_text(render_loop_report(cfg, loop_dir))
    gate = json.loads((stage_dir(loop_dir, "candidate") / "gate.json").read_text())
    return {"report": str(out / "report.html"), "gate_passed": gate["passed"]}


STAGES: tuple[Stage, ...] = (
    Stage(1, "baseline", (), ("model", "scorecard", "eval_limit"), baseline),
    Stage(2, "assistant", (), ("model", "assistant", "seed"), assistant),
    Stage(3, "data", ("assistant",), ("model", "data", "seed"), data),
    Stage(4, "sft", ("data",), ("model", "sft", "seed"), sft),
    Stage(5, "dpo", ("data", "sft"), ("model", "dpo", "seed"), dpo),
    Stage(6, "export", ("sft", "dpo"), ("export_gguf",), export),
    Stage(7, "candidate", ("baseline", "export"), ("scorecard", "eval_limit", "gate"), candidate),
    Stage(
        8,
        "report",
        ("baseline", "assistant", "data", "sft", "dpo", "export", "candidate"),
        (),
        report,
    ),
)


def active_stages(cfg: LoopConfig) -> list[Stage]:
    """The stages this config runs (dpo only when configured)."""
    return [s for s in STAGES if s.name != "dpo" or cfg.dpo is not None]


def config_files(cfg: LoopConfig, stage: Stage) -> list[Path]:
    """Files a stage's outputs depend on besides other stages: configs and data."""
    from tuneloop.train.datasets import expand_files

    files: list[Path] = []
    for key in stage.keys:
        value = getattr(cfg, key)
        if key in ("scorecard", "gate"):
            files.append(Path(value))
        elif key == "assistant":
            files += expand_files(value.prompts, "assistant.prompts")
        elif key == "data":
            patterns = (
                [s["path"] for s in value.sft_sources] + value.preference_files + value.eval_sets
            )
            files += expand_files(patterns, "data")
        elif key in ("sft", "dpo") and value is not None:
            files.append(Path(value.config))
    if "scorecard" in stage.keys:
        files += _scorecard_files(cfg.scorecard)
    return files


def _scorecard_files(path: str) -> list[Path]:
    """The data files a scorecard reads (so editing an eval set re-runs the evaluations)."""
    import glob

    card = yaml.safe_load(Path(path).read_text()) or {}
    found: list[Path] = []
    for task in card.get("tasks", []):
        for pattern in task.get("files", []) or []:
            found += [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
    return found


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
