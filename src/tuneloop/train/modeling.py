"""Load a model for training: full, LoRA or QLoRA, in the right precision for the hardware."""

from __future__ import annotations

import os
from typing import Any

from tuneloop.models.resolve import ResolvedModel, load_model


def training_dtype(name: str):
    """torch dtype for ``name``; auto = bf16 on a GPU that supports it, else fp32.

    CPU training is always fp32: bf16 autocast is ~20x slower on CPUs without bf16 units.
    """
    import torch

    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def lora_config(config, task_type: str = "CAUSAL_LM"):
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
        task_type=task_type,
    )


def load_for_training(config, resolved: ResolvedModel):
    """(model, facts) where facts holds parameter counts and the dtype used.

    Seeds first: LoRA matrices are initialised from the global RNG here, before the
    trainer seeds it, so without this two runs with one seed start from different adapters.
    """
    import torch
    from transformers import set_seed

    set_seed(config.seed)

    dtype = training_dtype(config.dtype)
    if config.method == "qlora":
        model = _load_4bit(resolved, dtype)
    else:
        model = load_model(resolved, str(dtype).removeprefix("torch."))
    model.train()
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if config.method in ("lora", "qlora"):
        from peft import get_peft_model

        if config.gradient_checkpointing:
            model.enable_input_require_grads()
        model = get_peft_model(model, lora_config(config))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    facts: dict[str, Any] = {"trainable_parameters": trainable, "total_parameters": total,
                             "trainable_percent": round(100 * trainable / total, 4),
                             "dtype": str(dtype).removeprefix("torch."),
                             "device": "cuda" if torch.cuda.is_available() else "cpu"}  # fmt: skip
    return model, facts


def _load_4bit(resolved: ResolvedModel, compute_dtype):
    """NF4 base weights (bitsandbytes) prepared for k-bit training."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise RuntimeError(
            "method: qlora needs bitsandbytes: pip install 'tuneloop[qlora]'"
        ) from None
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if resolved.kind == "gguf":
        raise RuntimeError("method: qlora needs an HF folder; pull or convert the .gguf model first")
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )
    model = AutoModelForCausalLM.from_pretrained(resolved.path, quantization_config=quant, dtype=compute_dtype)
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def pin_malloc_threshold() -> None:
    """Keep glibc from growing its mmap threshold during training (CPU memory).

    By default glibc raises the threshold after the first large free, later per-layer
    tensors come from the heap and freed gaps are never returned: peak RSS of LoRA on
    the default model was 7.8 GB instead of 4.5 GB (docs/design/memory-planner.md).
    Same as MALLOC_MMAP_THRESHOLD_=131072; no measurable slowdown.
    """
    import ctypes
    import ctypes.util

    if os.environ.get("MALLOC_MMAP_THRESHOLD_"):
        return
    libc_name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(libc_name) if libc_name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(-3, 131072)  # M_MMAP_THRESHOLD
    except OSError:
        pass


def common_trainer_kwargs(config, run_dir) -> dict[str, Any]:
    """TrainingArguments every TRL recipe config takes from ours, with CPU-safe settings:
    TRL defaults bf16=True (an error on CPU) and gradient checkpointing on (25% slower);
    checkpointing is enabled on the model itself when configured."""
    dtype = training_dtype(config.dtype)
    return dict(
        output_dir=str(run_dir), seed=config.seed, data_seed=config.seed,
        learning_rate=config.learning_rate, num_train_epochs=config.num_epochs, max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        warmup_steps=config.warmup_ratio, lr_scheduler_type=config.lr_scheduler,
        weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm,
        logging_steps=config.logging_steps, logging_first_step=True,
        save_strategy="steps", save_steps=config.save_steps, save_total_limit=config.save_total_limit,
        bf16=str(dtype) == "torch.bfloat16", fp16=str(dtype) == "torch.float16",
        gradient_checkpointing=False,
        remove_unused_columns=False,  # keep the record column for batch provenance
        report_to=config.report_to or "none", dataloader_num_workers=0,
    )  # fmt: skip



def final_eval(trainer) -> dict[str, float] | None:
    """Held-out metrics of the final weights: the evaluation already logged at the last
    step when there is one (``eval_steps`` dividing ``max_steps``), else a new one. On a
    CPU one pass over the validation split costs as much as a few training steps."""
    if trainer.eval_dataset is None:
        return None
    step = trainer.state.global_step
    for entry in reversed(trainer.state.log_history):
        if entry.get("step") == step and "eval_loss" in entry:
            return {k: v for k, v in entry.items() if k.startswith("eval_") or k == "epoch"}
    return trainer.evaluate()
