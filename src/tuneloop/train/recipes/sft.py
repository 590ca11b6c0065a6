"""Supervised fine-tuning (full, LoRA, QLoRA) on TRL's SFTTrainer.

Reads top to bottom: resolve the model, check and render the data, plan, create
the run folder, build the trainer, train (or resume), save, plot.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any

from tuneloop.models.resolve import load_tokenizer, resolve_model
from tuneloop.train.callbacks import AnomalyMonitor, MetricsCallback
from tuneloop.train.config import SFTConfig, config_to_yaml
from tuneloop.train.datasets import check_data, expand_files, render_files, split_rows, to_dataset
from tuneloop.train.modeling import (
    common_trainer_kwargs,
    final_eval,
    load_for_training,
    training_dtype,
)
from tuneloop.train.runs import (
    build_manifest,
    latest_checkpoint,
    new_run_dir,
    run_status,
    write_json,
)
from tuneloop.train.tracking import RecordTrackingCollator, track_records

log = logging.getLogger("tuneloop.train")


def prepare(config: SFTConfig) -> dict[str, Any]:
    """Everything up to the model: checked, rendered data and the memory plan. No side effects."""
    resolved = resolve_model(config.model)
    tokenizer = load_tokenizer(resolved)
    train_files = expand_files(config.train_files, "train_files")
    val_files = expand_files(config.validation_files, "validation_files")
    eval_sets = expand_files(config.eval_sets, "eval_sets")
    check_data(train_files + val_files, tokenizer, config.max_length, eval_sets)
    train = render_files(train_files, tokenizer, config.max_length)
    if val_files:
        validation = render_files(val_files, tokenizer, config.max_length)
    else:
        train, validation = split_rows(train, config.validation_fraction, config.seed)
    return {"resolved": resolved, "tokenizer": tokenizer, "train": train, "validation": validation,
            "files": train_files + val_files + eval_sets, "plan": memory_plan(config, resolved)}  # fmt: skip


def memory_plan(config: SFTConfig, resolved) -> dict[str, Any] | None:
    """The planner's estimate for this run (None when the architecture is not plannable)."""
    from tuneloop.models.info import load_config
    from tuneloop.models.plan import ModelShape, plan_memory

    try:
        shape = ModelShape.from_hf_config(load_config(resolved))
        dtype = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}[
            str(training_dtype(config.dtype)).removeprefix("torch.")]  # fmt: skip
        plan = plan_memory(shape, method=config.method, seq_len=config.max_length,
                           batch=config.batch_size, dtype="nf4" if config.method == "qlora" else dtype,
                           lora_rank=config.lora_r,
                           gradient_checkpointing=config.gradient_checkpointing)  # fmt: skip
        return plan.to_dict()
    except (ValueError, KeyError, AttributeError) as exc:
        log.warning("no memory plan: %s", exc)
        return None


def trl_args(config: SFTConfig, run_dir: Path, has_eval: bool):
    """TRL's SFTConfig from ours, with CPU-safe settings made explicit."""
    import torch
    import trl

    eval_kwargs: dict[str, Any] = {}
    if has_eval:
        eval_kwargs = {"eval_strategy": "steps", "eval_steps": config.eval_every, "eval_on_start": True,
                       "load_best_model_at_end": True, "metric_for_best_model": "eval_loss",
                       "greater_is_better": False}  # fmt: skip
    return trl.SFTConfig(
        **common_trainer_kwargs(config, run_dir),
        full_determinism=config.deterministic,
        max_length=None,  # already truncated when rendered; padding-free needs None
        padding_free=config.batching == "padding_free",
        packing=config.batching == "packing",
        include_num_input_tokens_seen="non_padding",
        use_cpu=not torch.cuda.is_available(),
        **eval_kwargs,
    )  # fmt: skip


def train(config: SFTConfig, resume: Path | None = None, prepared: dict | None = None) -> Path:
    """Run SFT; returns the run folder. ``resume`` continues a run from its latest checkpoint."""
    import torch
    import trl
    from accelerate import PartialState
    from transformers import EarlyStoppingCallback

    # One process, or one of N under `accelerate launch`. On CPU the state must be
    # created with cpu=True, or torchrun-launched processes stay single (no gloo group).
    state = PartialState(cpu=not torch.cuda.is_available())
    main = state.is_main_process
    prepared = prepared or prepare(config)
    tokenizer, train_split, val_split = prepared["tokenizer"], prepared["train"], prepared["validation"]
    run_dir = Path(resume) if resume else Path(config.output_dir) / config.name
    if main and not resume:
        new_run_dir(config.output_dir, config.name)
    state.wait_for_everyone()
    with run_status(run_dir, enabled=main):
        model, facts = load_for_training(config, prepared["resolved"])
        if main:
            (run_dir / "config.yaml").write_text(config_to_yaml(config))
            write_json(run_dir / "manifest.json", build_manifest(config, prepared["files"], {
                "recipe": "sft", "model_facts": facts, "memory_plan": prepared["plan"],
                "processes": state.num_processes,
                "data": {"train": train_split.summary(), "validation": val_split.summary()},
            }))  # fmt: skip
        args = trl_args(config, run_dir, has_eval=bool(val_split.rows))
        queue: deque = deque()
        step_records: deque = deque(maxlen=4096)
        train_ds = to_dataset(train_split)
        if config.batching == "packing":
            train_ds = train_ds.remove_columns("record")  # packed rows mix records
        monitor = AnomalyMonitor(config.loss_spike_factor, config.grad_norm_threshold,
                                 config.stop_on_anomaly, step_records)  # fmt: skip
        callbacks = [MetricsCallback(run_dir / "metrics.jsonl"), monitor]
        if config.early_stopping_patience and val_split.rows:
            callbacks.append(EarlyStoppingCallback(config.early_stopping_patience))
        trainer = track_records(trl.SFTTrainer)(
            model=model, args=args, processing_class=tokenizer, train_dataset=train_ds,
            eval_dataset=to_dataset(val_split).remove_columns("record") if val_split.rows else None,
            callbacks=callbacks, record_queue=queue, step_records=step_records,
        )  # fmt: skip
        # TRL builds its own (padding-free aware) collator; wrap it to see record ids.
        trainer.data_collator = RecordTrackingCollator(trainer.data_collator, queue)
        checkpoint = latest_checkpoint(run_dir) if resume else None
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        final = run_dir / "final"
        trainer.save_model(str(final))
        eval_metrics = final_eval(trainer) if val_split.rows else None
        if main:
            tokenizer.save_pretrained(final)
            write_json(run_dir / "results.json", {
                "train": result.metrics, "eval": eval_metrics,
                "best_checkpoint": trainer.state.best_model_checkpoint,
                "anomalies": monitor.events, "resumed_from": str(checkpoint) if checkpoint else None,
            })  # fmt: skip
            from tuneloop.train.plots import plot_metrics

            plot_metrics(run_dir / "metrics.jsonl", run_dir / "plots")
    return run_dir
