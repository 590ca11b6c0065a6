"""Load a GGUF file with transformers, de-quantized and ready to save or train."""

from __future__ import annotations

from pathlib import Path


def load_gguf(path: str | Path):
    """(model, tokenizer) from a ``.gguf`` file, fp32, with the GGUF quantizer removed.

    transformers de-quantizes GGUF weights on load but keeps a quantizer attached,
    which makes ``save_pretrained`` fail ("not serializable") and trainers refuse
    the model; removing it turns the model into a plain fp32 model.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32
    )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    for attr in ("hf_quantizer", "is_quantized"):
        if hasattr(model, attr):
            try:
                setattr(model, attr, None if attr == "hf_quantizer" else False)
            except AttributeError:
                pass
    _fix_generation_config(model, tokenizer)
    return model, tokenizer


def _fix_generation_config(model, tokenizer) -> None:
    """Make generation stop at the chat template's end-of-turn token as well as EOS."""
    gen = model.generation_config
    eos = gen.eos_token_id
    eos_ids = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
    for tok in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", tokenizer.eos_token):
        if tok and tok in tokenizer.get_vocab():
            tid = tokenizer.convert_tokens_to_ids(tok)
            if tid not in eos_ids:
                eos_ids.append(tid)
    if eos_ids:
        gen.eos_token_id = eos_ids if len(eos_ids) > 1 else eos_ids[0]
    if gen.pad_token_id is None and tokenizer.pad_token_id is not None:
        gen.pad_token_id = tokenizer.pad_token_id
