"""``tuneloop train <recipe> CONFIG``: sft, dpo (+ the DPO family), reward and grpo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tuneloop.cli._common import fail, out, user_errors
from tuneloop.train.modeling import pin_malloc_threshold

train_app = typer.Typer(help="Fine-tune a model: SFT (full/LoRA/QLoRA) and preference tuning.",
                        no_args_is_help=True)  # fmt: skip

RESUME_LATEST = "@latest"
"""What a bare ``--resume`` means: the run folder named by the config."""

SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a config key: key=value (repeatable).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the resolved config, data summary, trainable parameters and memory plan; train nothing.")]
ResumeOpt = Annotated[str | None, typer.Option("--resume", help="Continue from the latest checkpoint of RUN_DIR (default: the config's run folder).")]
LauncherOpt = Annotated[str, typer.Option("--launcher", help="'none' (this process) or 'accelerate' (data-parallel processes).")]
ProcsOpt = Annotated[int, typer.Option("--num-processes", min=1, help="Processes for --launcher accelerate (CPU: gloo).")]


def bare_resume_argv(argv: list[str]) -> list[str]:
    """Let ``--resume`` stand alone: a bare flag means the config's own run folder."""
    fixed = list(argv)
    if not fixed or fixed[0] != "train":
        return fixed  # other verbs' --resume is a plain flag (tuneloop loop --resume)
    for i, arg in enumerate(fixed):
        if arg == "--resume" and (i + 1 == len(fixed) or fixed[i + 1].startswith("-")):
            fixed.insert(i + 1, RESUME_LATEST)
    return fixed


def _errors():
    from tuneloop.train.config import ConfigError
    from tuneloop.train.datasets import DataValidationError
    from tuneloop.train.runs import RunDirError

    return (ConfigError, DataValidationError, RunDirError, *user_errors())


def _launch_accelerate(recipe: str, config: Path, overrides: list[str], resume: str | None, n: int) -> None:
    """Re-run this command under ``accelerate launch`` with ``n`` processes (gloo on CPU)."""
    import torch

    # --multi_gpu is accelerate's torchrun launcher; it also starts N CPU processes
    # (its --cpu mode would start only one). The recipe joins a gloo group on CPU.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(n),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
    cmd += ["-m", "tuneloop.cli", "train", recipe, str(config)]
    for item in overrides:
        cmd += ["--set", item]
    if resume:
        cmd += ["--resume", resume]
    env = {**os.environ, "ACCELERATE_USE_CPU": "false" if torch.cuda.is_available() else "true",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))}
    raise typer.Exit(subprocess.call(cmd, env=env))


def _print_dry_run(config, prepared: dict, facts: dict) -> None:
    from tuneloop.train.config import config_to_yaml

    out.rule("resolved config")
    out.print(config_to_yaml(config), highlight=False, markup=False)
    out.rule("data")
    table = Table("split", "records", "tokens", "trainable tokens", "mean tokens", "truncated")
    for split in ("train", "validation"):
        s = prepared[split].summary()
        table.add_row(split, *(str(s[k]) for k in ("records", "tokens", "trainable_tokens", "mean_tokens", "truncated")))
    out.print(table)
    out.rule("model")
    out.print(json.dumps(facts, indent=2), highlight=False)
    out.rule("memory plan")
    out.print(json.dumps(prepared.get("plan"), indent=2), highlight=False)


@train_app.command("sft")
def sft(
    config: Annotated[Path, typer.Argument(help="SFT config YAML.")],
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    resume: ResumeOpt = None,
    launcher: LauncherOpt = "none",
    num_processes: ProcsOpt = 1,
) -> None:
    """Supervised fine-tuning (full, LoRA, QLoRA) on Conversation JSONL."""
    from tuneloop.train.config import SFTConfig, load_config

    overrides = set_ or []
    pin_malloc_threshold()
    if launcher == "accelerate" and "LOCAL_RANK" not in os.environ:
        _launch_accelerate("sft", config, overrides, resume, num_processes)
    try:
        cfg = load_config(config, SFTConfig, overrides)
        from tuneloop.train.recipes import sft as recipe

        prepared = recipe.prepare(cfg)
        if dry_run:
            from tuneloop.train.modeling import load_for_training

            _, facts = load_for_training(cfg, prepared["resolved"])
            _print_dry_run(cfg, prepared, facts)
            return
        run_dir = _resume_dir(cfg, resume)
        run_dir = recipe.train(cfg, resume=run_dir, prepared=prepared)
    except _errors() as exc:
        fail(str(exc))
    out.print(f"run folder: {run_dir}")


def _print_dpo_dry_run(config, prepared: dict, facts: dict) -> None:
    from tuneloop.train.config import config_to_yaml

    out.rule("resolved config")
    out.print(config_to_yaml(config), highlight=False, markup=False)
    out.rule("data")
    train, validation = prepared["train"].summary(), prepared["validation"].summary()
    table = Table("", "train", "validation")
    for key, value in train.items():
        table.add_row(key.replace("_", " "), str(value), str(validation.get(key, "")))
    out.print(table)
    out.rule("model")
    out.print(json.dumps(facts, indent=2), highlight=False)
    out.rule("memory plan")
    plan = prepared.get("plan") or {}
    out.print(json.dumps({k: v for k, v in plan.items() if k != "notes"} or None, indent=2), highlight=False)
    for note in plan.get("notes", []):
        out.print(f"note: {note}", highlight=False, markup=False)


@train_app.command("dpo")
def dpo(
    config: Annotated[Path, typer.Argument(help="Preference-tuning config YAML (loss_type: dpo, ipo, apo_zero, apo_down, kto, orpo, simpo).")],
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    resume: ResumeOpt = None,
    launcher: LauncherOpt = "none",
    num_processes: ProcsOpt = 1,
) -> None:
    """Preference tuning (DPO family, KTO, ORPO, SimPO) on PreferencePair / LabeledExample JSONL."""
    from tuneloop.train.config import DPOConfig, load_config

    overrides = set_ or []
    pin_malloc_threshold()
    if launcher == "accelerate" and "LOCAL_RANK" not in os.environ:
        _launch_accelerate("dpo", config, overrides, resume, num_processes)
    try:
        cfg = load_config(config, DPOConfig, overrides)
        from tuneloop.train.recipes import dpo as recipe

        prepared = recipe.prepare(cfg)
        if dry_run:
            _, _, facts = recipe.load_policy(cfg, prepared["resolved"], prepared["adapter"])
            _print_dpo_dry_run(cfg, prepared, facts)
            return
        run_dir = _resume_dir(cfg, resume)
        run_dir = recipe.train(cfg, resume=run_dir, prepared=prepared)
    except _errors() as exc:
        fail(str(exc))
    out.print(f"run folder: {run_dir}")


@train_app.command("reward")
def reward(
    config: Annotated[Path, typer.Argument(help="Reward-model config YAML.")],
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    resume: ResumeOpt = None,
) -> None:
    """A Bradley-Terry reward model (LoRA or full) on PreferencePair JSONL; reports held-out accuracy."""
    from tuneloop.train.config import RewardConfig, load_config

    pin_malloc_threshold()
    try:
        cfg = load_config(config, RewardConfig, set_ or [])
        from tuneloop.train.recipes import reward as recipe

        prepared = recipe.prepare(cfg)
        if dry_run:
            _, facts = recipe.load_reward_model(cfg, prepared["resolved"], prepared["tokenizer"])
            _print_dpo_dry_run(cfg, prepared, facts)
            return
        run_dir = recipe.train(cfg, resume=_resume_dir(cfg, resume), prepared=prepared)
    except _errors() as exc:
        fail(str(exc))
    held_out = json.loads((run_dir / "results.json").read_text())["held_out"]
    out.print(f"run folder: {run_dir}")
    if held_out["pairs"]:
        out.print(f"held-out accuracy: {held_out['accuracy']:.3f} on {held_out['pairs']} pairs "
                  f"(mean margin {held_out['margin']['mean']:.3f})")  # fmt: skip
    else:
        out.print("held-out accuracy: no held-out pairs (set validation_fraction or validation_files)")


def _resume_dir(cfg, resume: str | None) -> Path | None:
    from tuneloop.train.runs import RunDirError, latest_checkpoint

    if resume is None:
        return None
    run_dir = cfg.output_dir / cfg.name if resume == RESUME_LATEST else Path(resume)
    if not run_dir.is_dir():
        raise RunDirError(f"--resume: no run folder {run_dir}")
    if latest_checkpoint(run_dir) is None:
        raise RunDirError(f"--resume: {run_dir} has no checkpoint to resume from")
    return run_dir


@train_app.command("grpo")
def grpo(
    config: Annotated[Path, typer.Argument(help="GRPO config YAML.")],
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    resume: ResumeOpt = None,
) -> None:
    """GRPO with verifiable rewards: scorers from the registry, weighted, on EvalSample prompts."""
    from tuneloop.train.config import GRPOConfig, config_to_yaml, load_config

    pin_malloc_threshold()
    try:
        cfg = load_config(config, GRPOConfig, set_ or [])
        from tuneloop.train.recipes import grpo as recipe

        prepared = recipe.prepare(cfg)
        if dry_run:
            out.rule("resolved config")
            out.print(config_to_yaml(cfg), highlight=False, markup=False)
            out.rule("plan")
            plan = {"prompts": len(prepared["rows"]), "model": str(prepared["resolved"].path),
                    "rewards": [f.__name__ for f in prepared["funcs"]], "weights": prepared["weights"]}  # fmt: skip
            out.print(json.dumps(plan, indent=2), highlight=False)
            return
        run_dir = recipe.train(cfg, resume=_resume_dir(cfg, resume), prepared=prepared)
    except _errors() as exc:
        fail(str(exc))
    out.print(f"run folder: {run_dir}")


@train_app.command("dpo-round")
def dpo_round(
    config: Annotated[Path, typer.Argument(help="On-policy DPO rounds config YAML.")],
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue the run folder (default: the config's), skipping finished rounds.")] = None,
) -> None:
    """On-policy preference rounds: sample k answers, score, pair, DPO, merge, evaluate; R times."""
    from tuneloop.train.config import config_to_yaml, load_round_config

    pin_malloc_threshold()
    try:
        cfg = load_round_config(config, set_ or [])
        if resume and resume != RESUME_LATEST:
            cfg.output_dir, cfg.name = Path(resume).parent, Path(resume).name
        from tuneloop.train.recipes import dpo_round as recipe

        prepared = recipe.prepare(cfg)
        if dry_run:
            out.rule("resolved config")
            out.print(config_to_yaml(cfg), highlight=False, markup=False)
            out.rule("plan")
            plan = {"model": str(prepared["resolved"].path), "prompts": len(prepared["prompts"]),
                    "heldout": len(prepared["heldout"]), "rounds": cfg.rounds,
                    "samples_per_round": len(prepared["prompts"]) * cfg.samples_per_prompt,
                    "dpo_steps_per_round": cfg.dpo.max_steps,
                    "run_folder": str(cfg.output_dir / cfg.name)}  # fmt: skip
            out.print(json.dumps(plan, indent=2), highlight=False)
            return
        run_dir = recipe.train(cfg, resume=resume is not None, prepared=prepared)
    except _errors() as exc:
        fail(str(exc))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    table = Table("round", "held-out mean", "pass rate", "pairs", "skipped", "gen tok/s", "time s")
    for row in rows:
        table.add_row(*(str(row.get(k)) for k in ("round", "heldout_mean", "heldout_pass_rate", "pairs",
                                                   "skipped_prompts", "gen_tokens_per_s", "time_s")))  # fmt: skip
    out.print(table)
    out.print(f"run folder: {run_dir}")
