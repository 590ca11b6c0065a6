"""A Bradley-Terry reward model on TRL's RewardTrainer.

Reads top to bottom: resolve the model, check and encode the pairs, plan, create the
run folder, load a one-output sequence classifier (LoRA with the score head trained in
full, or full), train (or resume), save, then score the held-out pairs with our own
code (:class:`~tuneloop.train.reward_model.RewardModel`) for ``results.json``.

The loss is -log sigmoid(r(chosen) - r(rejected) [- margin]). Pairs are encoded once
by :func:`tuneloop.train.reward_model.encode`, the same function that scores them
later, and reach TRL as ready ``chosen_ids`` / ``rejected_ids`` (TRL then neither
re-renders nor appends an EOS). Held-out accuracy is computed by scoring held-out pairs
with the trained model, not taken from TRL's per-batch means, so it is comparable
across runs and with ``tuneloop reward score``.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any

from tuneloop.models.resolve import load_tokenizer, resolve_model
from tuneloop.train import runs
from tuneloop.train.callbacks import AnomalyMonitor, MetricsCallback
from tuneloop.train.config import ConfigError, RewardConfig, config_to_yaml
from tuneloop.train.datasets import check_data, expand_files
from tuneloop.train.modeling import common_trainer_kwargs, lora_config, training_dtype
from tuneloop.train.preference_data import read_preference_records, split_records
from tuneloop.train.reward_model import (
    META_FILE,
    PairSplit,
    RewardModel,
    encode_pairs,
    load_sequence_classifier,
    pairwise_summary,
    use_distinct_pad_token,
)
from tuneloop.train.tracking import RecordTrackingCollator, track_records

log = logging.getLogger("tuneloop.train")
UNLIMITED = 1 << 20
"""Length given to the data layer's checks, so that they never truncate."""


def prepare(config: RewardConfig) -> dict[str, Any]:
    """Everything up to the model: checked, encoded pairs and the memory plan. No side effects."""
    from tuneloop.train.recipes.sft import memory_plan

    resolved = resolve_model(config.model)
    tokenizer = load_tokenizer(resolved)
    use_distinct_pad_token(tokenizer)
    train_files = expand_files(config.train_files, "train_files")
    val_files = expand_files(config.validation_files, "validation_files")
    eval_sets = expand_files(config.eval_sets, "eval_sets")
    # Not max_length: the data layer assumes right truncation (cutting answers); ours keeps the end.
    check_data(train_files + val_files, tokenizer, UNLIMITED, eval_sets)
    records = read_preference_records(train_files, labeled=False)
    if val_files:
        val_records = read_preference_records(val_files, labeled=False)
    else:
        records, val_records = split_records(records, config.validation_fraction, config.seed)
    if not records:
        raise ConfigError("train_files: no PreferencePair records to train on")
    # Chosen and rejected go through one forward: 2 x batch sequences.
    plan = memory_plan(config.model_copy(update={"batch_size": 2 * config.batch_size}), resolved)
    train, validation = (encode_pairs(r, tokenizer, config.max_length, config.margin_key)
                         for r in (records, val_records))  # fmt: skip
    return {"resolved": resolved, "tokenizer": tokenizer, "train": train, "validation": validation,
            "files": train_files + val_files + eval_sets, "plan": plan}  # fmt: skip


def load_reward_model(config: RewardConfig, resolved, tokenizer):
    """(model, facts): a one-output sequence classifier with ``pad_token_id`` set; with LoRA,
    wrapped in a SEQ_CLS adapter whose ``modules_to_save`` holds the score head."""
    import torch
    from transformers import AutoModelForSequenceClassification, set_seed

    if resolved.kind == "gguf":
        raise ConfigError(
            "model: a reward model needs an HF model folder; pull or convert the .gguf first"
        )
    set_seed(config.seed)  # the score head and the LoRA matrices are drawn here
    dtype = training_dtype(config.dtype)
    model = load_sequence_classifier(
        AutoModelForSequenceClassification, resolved.path, num_labels=1
    ).to(dtype)
    model.config.pad_token_id = tokenizer.pad_token_id
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if config.method == "lora":
        from peft import get_peft_model

        peft_config = lora_config(config, task_type="SEQ_CLS")
        # The head is new: train it in full and save it with the adapter, or reloading gives random scores.
        peft_config.modules_to_save = [n for n in ("score", "classifier") if hasattr(model, n)]
        if config.lora_top_layers:
            peft_config.target_modules = _top_layer_targets(model, config)
        if config.gradient_checkpointing:
            model.enable_input_require_grads()
        model = get_peft_model(model, peft_config)
    model.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return model, {"trainable_parameters": trainable, "total_parameters": total,
                   "trainable_percent": round(100 * trainable / total, 4),
                   "dtype": str(dtype).removeprefix("torch."),
                   "device": "cuda" if torch.cuda.is_available() else "cpu"}  # fmt: skip


def _top_layer_targets(model, config: RewardConfig) -> list[str]:
    """Full names of the configured linear modules of the top ``lora_top_layers`` layers (not
    PEFT's layers_to_transform: PEFT skips that filter for names it expanded from all-linear)."""
    import re

    import torch

    n_layers = model.config.get_text_config().num_hidden_layers
    if config.lora_top_layers > n_layers:
        raise ConfigError(
            f"lora_top_layers: {config.lora_top_layers} > the model's {n_layers} layers"
        )
    names = []
    for name, module in model.named_modules():
        layer = re.search(r"\.layers\.(\d+)\.", name)
        wanted = (
            config.lora_target_modules == "all-linear"
            or name.rsplit(".", 1)[-1] in config.lora_target_modules
        )
        if layer and int(layer.group(1)) >= n_layers - config.lora_top_layers and isinstance(module, torch.nn.Linear) and wanted:  # fmt: skip
            names.append(name)
    return names


def trl_args(config: RewardConfig, run_dir: Path, has_eval: bool):
    """TRL's RewardConfig from ours, with CPU-safe settings made explicit."""
    import torch
    import trl

    eval_kwargs: dict[str, Any] = {}
    if has_eval:
        eval_kwargs = {"eval_strategy": "steps", "eval_steps": config.eval_every, "load_best_model_at_end": True,
                       "metric_for_best_model": "eval_loss", "greater_is_better": False}  # fmt: skip
    kwargs = common_trainer_kwargs(config, run_dir)
    kwargs.update(eval_kwargs)
    return trl.RewardConfig(
        full_determinism=config.deterministic,
        max_length=None,  # encode_pairs already truncated (TRL would drop long pairs instead)
        center_rewards_coefficient=config.center_rewards_coefficient,
        include_num_input_tokens_seen="non_padding", use_cpu=not torch.cuda.is_available(), **kwargs,
    )  # fmt: skip


def _dataset(split: PairSplit, with_record: bool):
    from datasets import Dataset

    return Dataset.from_list(
        [r if with_record else {k: v for k, v in r.items() if k != "record"} for r in split.rows]
    )


def train(config: RewardConfig, resume: Path | None = None, prepared: dict | None = None) -> Path:
    """Train a reward model; returns the run folder. ``resume`` continues from the latest checkpoint."""
    import trl
    from transformers import EarlyStoppingCallback

    prepared = prepared or prepare(config)
    tokenizer, train_split, val_split = (
        prepared["tokenizer"],
        prepared["train"],
        prepared["validation"],
    )
    run_dir = Path(resume) if resume else runs.new_run_dir(config.output_dir, config.name)
    with runs.run_status(run_dir):
        model, facts = load_reward_model(config, prepared["resolved"], tokenizer)
        (run_dir / "config.yaml").write_text(config_to_yaml(config))
        runs.write_json(run_dir / "manifest.json", runs.build_manifest(config, prepared["files"], {
            "recipe": "reward", "model_facts": facts, "memory_plan": prepared["plan"],
            "pad_token": tokenizer.pad_token,
            "data": {"train": train_split.summary(), "validation": val_split.summary()},
        }))  # fmt: skip
        queue: deque = deque()
        step_records: deque = deque(maxlen=4096)
        monitor = AnomalyMonitor(config.loss_spike_factor, config.grad_norm_threshold,
                                 config.stop_on_anomaly, step_records)  # fmt: skip
        callbacks = [MetricsCallback(run_dir / "metrics.jsonl"), monitor]
        if config.early_stopping_patience and val_split.rows:
            callbacks.append(EarlyStoppingCallback(config.early_stopping_patience))
        trainer = track_records(trl.RewardTrainer)(
            model=model, args=trl_args(config, run_dir, has_eval=bool(val_split.rows)), processing_class=tokenizer,
            train_dataset=_dataset(train_split, True),
            eval_dataset=_dataset(val_split, False) if val_split.rows else None,
            callbacks=callbacks, record_queue=queue, step_records=step_records,
        )  # fmt: skip
        trainer.data_collator = RecordTrackingCollator(trainer.data_collator, queue)
        checkpoint = runs.latest_checkpoint(run_dir) if resume else None
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        final = run_dir / "final"
        trainer.save_model(str(final))
        tokenizer.save_pretrained(final)
        runs.write_json(final / META_FILE, {"max_length": config.max_length, "base_model": str(prepared["resolved"].path),
                                       "model": config.model, "method": config.method})  # fmt: skip
        scorer = RewardModel(trainer.model.eval(), tokenizer, config.max_length)
        held_out = held_out_scores(scorer, val_split)
        summary = pairwise_summary(held_out["chosen"], held_out["rejected"])
        runs.write_json(run_dir / "results.json", {
            "held_out": summary, "train": result.metrics,
            "eval": _best_eval(trainer.state.log_history),
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "anomalies": monitor.events, "resumed_from": str(checkpoint) if checkpoint else None,
        })  # fmt: skip
        runs.write_json(run_dir / "held_out_scores.json", held_out)
        from tuneloop.train.plots import plot_metrics

        plot_metrics(run_dir / "metrics.jsonl", run_dir / "plots")
        plot_margins(held_out, run_dir / "plots" / "margins.png")
    return run_dir


def _best_eval(log_history: list[dict]) -> dict | None:
    """TRL's eval metrics of the best evaluation (the checkpoint loaded at the end), without another pass."""
    evals = [h for h in log_history if "eval_loss" in h]
    return min(evals, key=lambda h: h["eval_loss"]) if evals else None


def held_out_scores(scorer: RewardModel, split: PairSplit, batch_size: int = 8) -> dict[str, list]:
    """Rewards of each held-out pair's chosen and rejected side, with the record ids."""
    return {"record": [r["record"] for r in split.rows],
            "chosen": scorer.score_ids([r["chosen_ids"] for r in split.rows], batch_size),
            "rejected": scorer.score_ids([r["rejected_ids"] for r in split.rows], batch_size)}  # fmt: skip


def plot_margins(held_out: dict[str, list], out: Path) -> Path:
    """``margins.png``: histogram of held-out r(chosen) - r(rejected); right of 0 is ranked right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    margins = [c - r for c, r in zip(held_out["chosen"], held_out["rejected"], strict=True)]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if margins:
        ax.hist(margins, bins=min(30, max(5, len(margins) // 2)))
    ax.axvline(0.0, color="black", linewidth=1)
    right = sum(m > 0 for m in margins)
    ax.set_title(f"held-out reward margins: {right}/{len(margins)} pairs ranked right")
    ax.set_xlabel("r(chosen) - r(rejected)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
