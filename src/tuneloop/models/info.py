"""What a model is: architecture numbers, tokenizer facts, chat template, stop tokens."""

from __future__ import annotations

import json
from typing import Any

from tuneloop.models.resolve import ResolvedModel, load_tokenizer


def load_config(model: ResolvedModel):
    """The model's transformers config, without loading weights."""
    from transformers import AutoConfig

    if model.kind == "gguf":
        return AutoConfig.from_pretrained(model.path.parent, gguf_file=model.path.name)
    return AutoConfig.from_pretrained(model.path)


def count_parameters(config) -> int:
    """Exact parameter count, by building the model on the meta device (no memory)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    # Tied embeddings are one tensor; parameters() yields shared tensors once.
    return sum(p.numel() for p in model.parameters())


_SAFETENSORS_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}


def _weights_dtype(model: ResolvedModel, config) -> str:
    if model.kind == "gguf":
        return "gguf (de-quantized to float32 on load)"
    index = model.path / "model.safetensors.index.json"
    first = model.path / "model.safetensors"
    if index.is_file():
        shard = next(iter(json.loads(index.read_text())["weight_map"].values()))
        first = model.path / shard
    if first.is_file():
        from safetensors import safe_open

        with safe_open(first, framework="pt") as f:
            key = next(iter(f.keys()))
            raw = str(f.get_slice(key).get_dtype()).upper()
            return _SAFETENSORS_DTYPES.get(raw, raw.lower())
    return str(getattr(config, "dtype", None) or "unknown")


def model_info(model: ResolvedModel) -> dict[str, Any]:
    """Architecture and tokenizer facts of ``model`` as a plain dict."""
    config = load_config(model)
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    tokenizer = load_tokenizer(model)
    heads = getattr(text_config, "num_attention_heads", None)
    hidden = getattr(text_config, "hidden_size", None)
    eos = _generation_eos(model)
    return {
        "name": model.name,
        "kind": model.kind,
        "path": str(model.path),
        "architecture": (config.architectures or [config.model_type])[0],
        "parameters": count_parameters(config),
        "layers": getattr(text_config, "num_hidden_layers", None),
        "heads": heads,
        "kv_heads": getattr(text_config, "num_key_value_heads", None) or heads,
        "head_dim": getattr(text_config, "head_dim", None)
        or (hidden // heads if hidden and heads else None),
        "hidden_size": hidden,
        "intermediate_size": getattr(text_config, "intermediate_size", None),
        "context_length": getattr(text_config, "max_position_embeddings", None),
        "vocab_size": getattr(text_config, "vocab_size", None),
        "tie_word_embeddings": bool(getattr(config, "tie_word_embeddings", False)),
        "dtype": _weights_dtype(model, config),
        "chat_template": bool(tokenizer.chat_template),
        "special_tokens": {
            k: v for k, v in tokenizer.special_tokens_map.items() if v
        },
        "eos_token_ids": eos,
        "eos_tokens": [tokenizer.convert_ids_to_tokens(i) for i in eos],
    }


def _generation_eos(model: ResolvedModel) -> list[int]:
    from transformers import GenerationConfig

    try:
        if model.kind == "gguf":
            return []
        gen = GenerationConfig.from_pretrained(model.path)
    except OSError:
        return []
    eos = gen.eos_token_id
    return [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
