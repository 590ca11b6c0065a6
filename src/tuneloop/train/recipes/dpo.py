"""Preference tuning on TRL's trainers: DPO, IPO, APO (zero/down), KTO, ORPO, SimPO.

Reads top to bottom: resolve the model, check and render the data, plan, create the
run folder, load the policy, build the TRL trainer for the loss, train (or resume),
save, plot.

| loss_type | TRL trainer | reference |
|---|---|---|
| dpo, ipo, apo_zero, apo_down | ``trl.DPOTrainer``, ``loss_type=[sigmoid / ipo / apo_*]`` | yes |
| kto | ``trl.KTOTrainer`` on LabeledExample rows (pairs are unpaired) | yes |
| orpo | ``trl.experimental.orpo.ORPOTrainer`` | none |
| simpo | ``trl.experimental.cpo.CPOTrainer``, ``loss_type="simpo"``, ``cpo_alpha=0`` | none |

The reference model. With LoRA/QLoRA we hand TRL the base model and a LoRA config
(``ref_model=None``): TRL adds the adapter and computes reference log-probs with the
adapter disabled, so no second copy of the weights is held. With ``adapter:`` (an
SFT run folder, whose ``final/`` is used, or an adapter folder) that adapter is
loaded onto the base and **merged in memory first**; the fresh preference LoRA goes
on top, so "adapter disabled" is exactly the SFT model. Full fine-tuning with a
reference loss keeps a frozen copy of the (merged) model, unless
``precompute_ref_log_probs`` computes the reference log-probs once before training.
"""

from __future__ import annotations

import copy
import logging
import random
import warnings
from collections import deque
from pathlib import Path
from typing import Any

from tuneloop.models.resolve import load_tokenizer, resolve_model
from tuneloop.train.callbacks import AnomalyMonitor, MetricsCallback
from tuneloop.train.config import ConfigError, DPOConfig, config_to_yaml
from tuneloop.train.datasets import check_data, expand_files
from tuneloop.train.modeling import (
    common_trainer_kwargs,
    final_eval,
    load_for_training,
    lora_config,
    training_dtype,
)
from tuneloop.train.preference_data import (
    read_preference_records,
    render_records,
    split_records,
    to_dataset,
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

DPO_LOSSES = {"dpo": "sigmoid", "ipo": "ipo", "apo_zero": "apo_zero", "apo_down": "apo_down"}
"""Our loss names -> ``trl.DPOConfig.loss_type`` entries."""
REFERENCE_FREE = ("orpo", "simpo")


def resolve_adapter(ref: str | None) -> Path | None:
    """The adapter folder for ``adapter:``: a run folder's ``final/``, or the folder itself."""
    if ref is None:
        return None
    path = Path(ref)
    for candidate in (path / "final", path):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    if (path / "final" / "config.json").is_file():
        raise ConfigError(f"adapter: {path}/final is a full model, not an adapter; set model: {path}/final instead")
    raise ConfigError(f"adapter: {path} is neither a run folder with final/adapter_config.json nor an adapter folder")


def prepare(config: DPOConfig) -> dict[str, Any]:
    """Everything up to the model: checked, rendered data and the memory plan. No side effects."""
    if config.loss_type == "kto" and config.batch_size < 2:
        raise ConfigError("batch_size: kto needs at least 2 (its KL term pairs completions within a batch)")
    adapter = resolve_adapter(config.adapter)
    resolved = resolve_model(config.model)
    tokenizer = load_tokenizer(resolved)
    train_files = expand_files(config.train_files, "train_files")
    val_files = expand_files(config.validation_files, "validation_files")
    eval_sets = expand_files(config.eval_sets, "eval_sets")
    check_data(train_files + val_files, tokenizer, config.max_length, eval_sets)
    kto = config.loss_type == "kto"
    records = read_preference_records(train_files, labeled=kto)
    if val_files:
        val_records = read_preference_records(val_files, labeled=kto)
    else:
        records, val_records = split_records(records, config.validation_fraction, config.seed)
    train, validation = (render_records(r, tokenizer, kto, config.max_length, config.max_prompt_length)
                         for r in (records, val_records))  # fmt: skip
    if kto:  # KTOTrainer samples sequentially (its KL term needs it): shuffle once, seeded
        random.Random(config.seed).shuffle(train.rows)
    return {"resolved": resolved, "tokenizer": tokenizer, "train": train, "validation": validation,
            "adapter": adapter, "files": train_files + val_files + eval_sets,
            "plan": memory_plan(config, resolved)}  # fmt: skip


def memory_plan(config: DPOConfig, resolved) -> dict[str, Any] | None:
    """The planner's estimate (chosen and rejected share one forward: 2 x batch), with notes."""
    from tuneloop.models.info import load_config
    from tuneloop.models.plan import GIB, ModelShape, plan_memory

    dtype = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}[str(training_dtype(config.dtype)).removeprefix("torch.")]
    try:
        shape = ModelShape.from_hf_config(load_config(resolved))
        plan = plan_memory(shape, method=config.method, seq_len=config.max_length, batch=2 * config.batch_size,
                           dtype="nf4" if config.method == "qlora" else dtype, lora_rank=config.lora_r,
                           gradient_checkpointing=config.gradient_checkpointing).to_dict()  # fmt: skip
    except (ValueError, KeyError, AttributeError) as exc:
        log.warning("no memory plan: %s", exc)
        return None
    if config.loss_type in REFERENCE_FREE:
        note = f"{config.loss_type} is reference-free: no reference model"
    elif config.method != "full":
        note = "reference = the policy with its LoRA adapter disabled: no second copy (one extra no-grad forward)"
        if config.adapter:
            note += "; the SFT adapter is merged into the base first, so the reference is the SFT model"
    elif config.precompute_ref_log_probs:
        note = "reference log-probs precomputed once with the policy before training: no copy kept"
    else:
        ref = plan["components"]["weights"]["bytes"]
        plan["reference_model"] = {"bytes": ref, "gib": round(ref / GIB, 4)}
        plan["total"]["gib"] = round((plan["total"]["bytes"] + ref) / GIB, 4)
        plan["total"]["bytes"] += ref
        note = "full fine-tuning: a frozen reference copy of the model is held in memory (included in total)"
    plan["notes"] = [note, "sequences counted: 2 x batch_size (chosen+rejected, or completion+KL for kto)"]
    return plan


def load_policy(config: DPOConfig, resolved, adapter: Path | None):
    """(model, peft_config, facts). LoRA/QLoRA: the base model (SFT adapter merged) and
    the LoRA config TRL wraps it with; full: the whole (merged) model, trainable."""
    model, facts = load_for_training(config, resolved)
    peft_config = None
    if config.method != "full":
        # load_for_training counted the LoRA's parameters; TRL adds the adapter itself, so
        # that its reference is "adapter disabled" rather than a copied "ref" adapter.
        model, peft_config = model.unload(), lora_config(config)
    if adapter is not None:
        from peft import PeftModel

        if config.method == "qlora":
            log.warning("merging %s into 4-bit weights re-quantizes them (small rounding error)", adapter)
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        if config.method == "full":
            model.requires_grad_(True)
        facts["merged_adapter"] = str(adapter)
    return model, peft_config, facts


def trl_args(config: DPOConfig, run_dir: Path, has_eval: bool):
    """(TRL trainer class, its config) for the loss, with CPU-safe settings made explicit."""
    import trl

    kwargs: dict[str, Any] = common_trainer_kwargs(config, run_dir)
    kwargs.update(beta=config.beta, max_length=config.max_length)
    if has_eval:
        kwargs.update(eval_strategy="steps", eval_steps=config.eval_every, load_best_model_at_end=True,
                      metric_for_best_model="eval_loss", greater_is_better=False)  # fmt: skip
    if config.loss_type in DPO_LOSSES:
        return trl.DPOTrainer, trl.DPOConfig(
            loss_type=[DPO_LOSSES[config.loss_type]], padding_free=False,
            precompute_ref_log_probs=config.precompute_ref_log_probs,
            include_num_input_tokens_seen="non_padding", **kwargs)  # fmt: skip
    if config.loss_type == "kto":
        return trl.KTOTrainer, trl.KTOConfig(
            precompute_ref_log_probs=config.precompute_ref_log_probs,
            include_num_input_tokens_seen="non_padding", **kwargs)  # fmt: skip
    with warnings.catch_warnings():  # the "importing from trl.experimental" notice
        warnings.simplefilter("ignore")
        from trl.experimental.cpo import CPOConfig, CPOTrainer
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer
    if config.loss_type == "orpo":
        return ORPOTrainer, ORPOConfig(**kwargs)
    return CPOTrainer, CPOConfig(loss_type="simpo", cpo_alpha=0.0, simpo_gamma=config.simpo_gamma, **kwargs)


def reference_model(config: DPOConfig, model):
    """An explicit frozen reference, only for full fine-tuning of a reference loss
    (TRL would otherwise reload the model from disk, without a merged SFT adapter)."""
    if config.method != "full" or config.loss_type in REFERENCE_FREE or config.precompute_ref_log_probs:
        return None
    return copy.deepcopy(model).requires_grad_(False).eval()


def train(config: DPOConfig, resume: Path | None = None, prepared: dict | None = None) -> Path:
    """Run preference tuning; returns the run folder. ``resume`` continues from the latest checkpoint."""
    from accelerate import PartialState
    from transformers import EarlyStoppingCallback

    state = PartialState()  # one process, or one of N under `accelerate launch`
    main = state.is_main_process
    prepared = prepared or prepare(config)
    tokenizer, train_split, val_split = prepared["tokenizer"], prepared["train"], prepared["validation"]
    if train_split.answers_without_eos:
        log.warning("%d answers do not end with eos_token %r: TRL appends it", train_split.answers_without_eos,
                    tokenizer.eos_token)  # fmt: skip
    run_dir = Path(resume) if resume else Path(config.output_dir) / config.name
    if main and not resume:
        new_run_dir(config.output_dir, config.name)
    state.wait_for_everyone()
    with run_status(run_dir, enabled=main):
        model, peft_config, facts = load_policy(config, prepared["resolved"], prepared["adapter"])
        if main:
            (run_dir / "config.yaml").write_text(config_to_yaml(config))
            write_json(run_dir / "manifest.json", build_manifest(config, prepared["files"], {
                "recipe": "dpo", "loss_type": config.loss_type, "model_facts": facts,
                "memory_plan": prepared["plan"], "processes": state.num_processes,
                "adapter": str(prepared["adapter"]) if prepared["adapter"] else None,
                "data": {"train": train_split.summary(), "validation": val_split.summary()},
            }))  # fmt: skip
        trainer_cls, args = trl_args(config, run_dir, has_eval=bool(val_split.rows))
        queue: deque = deque()
        step_records: deque = deque(maxlen=4096)
        monitor = AnomalyMonitor(config.loss_spike_factor, config.grad_norm_threshold,
                                 config.stop_on_anomaly, step_records)  # fmt: skip
        callbacks = [MetricsCallback(run_dir / "metrics.jsonl"), monitor]
        if config.early_stopping_patience and val_split.rows:
            callbacks.append(EarlyStoppingCallback(config.early_stopping_patience))
        extra: dict[str, Any] = {"peft_config": peft_config}
        if config.loss_type not in REFERENCE_FREE:
            extra["ref_model"] = reference_model(config, model)
        trainer = track_records(trainer_cls)(
            model=model, args=args, processing_class=tokenizer, train_dataset=to_dataset(train_split),
            eval_dataset=to_dataset(val_split, with_record=False) if val_split.rows else None,
            callbacks=callbacks, record_queue=queue, step_records=step_records, **extra,
        )  # fmt: skip
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
            plot_rewards(run_dir / "metrics.jsonl", run_dir / "plots" / "rewards.png")
    return run_dir


def plot_rewards(metrics_path: Path, out: Path) -> Path:
    """``rewards.png``: TRL's implicit reward margin and accuracy, train and eval, by step."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line.strip()]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key in zip(axes, ("rewards/margins", "rewards/accuracies"), strict=True):
        for prefix in ("", "eval_"):
            points = [(r["step"], r[prefix + key]) for r in rows if prefix + key in r]
            if points:
                ax.plot(*zip(*points, strict=True), marker=".", label=(prefix or "train_") + key)
                ax.legend()
        ax.set_xlabel("step")
        ax.set_title(key)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
