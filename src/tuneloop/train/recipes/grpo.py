"""GRPO with verifiable rewards on TRL's GRPOTrainer: the rewards are the scorecard's scorers.

Reads top to bottom: resolve the model, read the EvalSample prompts, build one TRL
reward function per scorer (``as_reward_function``) plus the DAPO overlong penalty,
create the run folder, load the policy (LoRA by default; with ``beta > 0`` the
reference is the policy with its adapter disabled), train, save.

Dataset columns other than ``prompt`` (``id``, ``schema``, ``target``, ``tools``) reach
the reward functions as keyword lists; dict columns travel as JSON text because
``datasets`` would turn dicts with differing keys into None-filled structs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tuneloop.models.resolve import load_tokenizer, resolve_model
from tuneloop.train.callbacks import AnomalyMonitor, MetricsCallback
from tuneloop.train.config import ConfigError, GRPOConfig, config_to_yaml
from tuneloop.train.datasets import expand_files
from tuneloop.train.modeling import lora_config, training_dtype
from tuneloop.train.runs import (
    build_manifest,
    latest_checkpoint,
    new_run_dir,
    run_status,
    write_json,
)


def read_prompts(files: list[Path]) -> list[dict[str, Any]]:
    """EvalSample JSONL -> TRL rows: conversational ``prompt`` plus the grading columns."""
    from tuneloop.data.io import read_records

    rows = []
    for path in files:
        for _, rec in read_records(path, "eval"):
            rows.append({
                "prompt": [m.model_dump(exclude_none=True) for m in rec.input],
                "id": rec.id,
                "schema": json.dumps(rec.schema_) if rec.schema_ is not None else None,
                "target": rec.target if isinstance(rec.target, str) or rec.target is None else json.dumps(rec.target),
            })  # fmt: skip
    if not rows:
        raise ConfigError(f"train_files: no prompts in {', '.join(map(str, files))}")
    return rows


def reward_functions(config: GRPOConfig) -> tuple[list, list[float]]:
    """One TRL reward function per configured scorer or reward model (+ the overlong penalty), and weights."""
    import tuneloop.eval  # noqa: F401  (registers the built-in scorers)
    from tuneloop.eval.scoring import as_reward_function

    funcs, weights = [], []
    for spec in config.rewards:
        if spec.reward_model is not None:
            funcs.append(_reward_model_function(spec.reward_model))
        else:
            try:
                funcs.append(as_reward_function(spec.scorer))
            except KeyError as exc:
                raise ConfigError(f"rewards: {exc.args[0]}") from None
        weights.append(spec.weight)
    if config.overlong_buffer:
        from trl.rewards import get_soft_overlong_punishment

        penalty = get_soft_overlong_punishment(config.max_completion_length, config.overlong_buffer)
        penalty.__name__ = "overlong_penalty"
        funcs.append(penalty)
        weights.append(config.overlong_weight)
    return funcs, weights


def _reward_model_function(path: str):
    """A trained reward model as a TRL reward function (its weight goes to TRL's reward_weights)."""
    from tuneloop.train.reward_model import RewardModel

    try:
        return RewardModel.load(path).reward_function()
    except (ValueError, OSError) as exc:
        raise ConfigError(f"rewards: reward_model {path}: {exc}") from None


def trl_args(config: GRPOConfig, run_dir: Path, weights: list[float]):
    """TRL's GRPOConfig from ours, with CPU-safe settings made explicit."""
    import torch
    import trl

    dtype = training_dtype(config.dtype)
    return trl.GRPOConfig(
        output_dir=str(run_dir), max_steps=config.max_steps, num_train_epochs=config.num_epochs,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate, lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm,
        seed=config.seed, logging_steps=config.logging_steps, save_steps=config.save_steps,
        save_total_limit=config.save_total_limit, report_to=config.report_to or "none",
        num_generations=config.num_generations, max_completion_length=config.max_completion_length,
        epsilon=config.epsilon, beta=config.beta, loss_type=config.loss_type, temperature=config.temperature,
        mask_truncated_completions=config.mask_truncated_completions, reward_weights=weights,
        # TRL defaults bf16=True (an error on CPU), gradient checkpointing on (25% slower on CPU).
        bf16=dtype == torch.bfloat16, fp16=False, gradient_checkpointing=config.gradient_checkpointing,
        use_vllm=False, use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
    )  # fmt: skip


def prepare(config: GRPOConfig) -> dict[str, Any]:
    """Model reference, prompts and reward functions. No side effects."""
    files = expand_files(config.train_files, "train_files")
    resolved = resolve_model(config.model)
    funcs, weights = reward_functions(config)
    return {
        "resolved": resolved,
        "files": files,
        "rows": read_prompts(files),
        "funcs": funcs,
        "weights": weights,
    }


def train(config: GRPOConfig, resume: Path | None = None, prepared: dict | None = None) -> Path:
    """Run GRPO; return the run folder (config, manifest, metrics.jsonl, final/, results.json)."""
    from collections import deque

    import trl
    from datasets import Dataset

    from tuneloop.models.resolve import load_model

    prepared = prepared or prepare(config)
    run_dir = resume or new_run_dir(config.output_dir, config.name)
    (run_dir / "config.yaml").write_text(config_to_yaml(config))
    write_json(
        run_dir / "manifest.json", build_manifest(config, prepared["files"], {"recipe": "grpo"})
    )
    with run_status(run_dir):
        from transformers import set_seed

        set_seed(config.seed)
        tokenizer = load_tokenizer(prepared["resolved"])
        tokenizer.padding_side = "left"  # generation pads on the left
        model = load_model(
            prepared["resolved"], str(training_dtype(config.dtype)).removeprefix("torch.")
        )
        monitor = AnomalyMonitor(config.loss_spike_factor, config.grad_norm_threshold, config.stop_on_anomaly,
                                 deque())  # fmt: skip
        trainer = trl.GRPOTrainer(
            model=model, reward_funcs=prepared["funcs"], args=trl_args(config, run_dir, prepared["weights"]),
            train_dataset=Dataset.from_list(prepared["rows"]), processing_class=tokenizer,
            peft_config=lora_config(config) if config.method == "lora" else None,
            callbacks=[MetricsCallback(run_dir / "metrics.jsonl"), monitor],
        )  # fmt: skip
        checkpoint = latest_checkpoint(run_dir) if resume else None
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        trainer.save_model(str(run_dir / "final"))
        tokenizer.save_pretrained(run_dir / "final")
        errors = {
            getattr(f, "__name__", "reward"): getattr(f, "errors", 0) for f in prepared["funcs"]
        }
        write_json(run_dir / "results.json", {"train": result.metrics, "scorer_errors": errors,
                                              "anomalies": monitor.events,
                                              "resumed_from": str(checkpoint) if checkpoint else None})  # fmt: skip
        from tuneloop.train.plots import plot_metrics

        plot_metrics(run_dir / "metrics.jsonl", run_dir / "plots")
    return run_dir
