"""Memory planner: every component against values worked out by hand.

The made-up shape used throughout (V=100, h=36, L=2, a=9 heads, g=3 KV heads, d=4,
i=48, tied) has per layer:
    q 36*36 = 1296, k 36*12 = 432, v 432, o 1296      -> attention 3456
    gate 36*48 = 1728, up 1728, down 1728               -> MLP 5184
    two RMSNorms 2*36 = 72                              -> 8712 per layer
params = embed 100*36 + 2*8712 + final norm 36 = 3600 + 17424 + 36 = 21060 (tied),
plus lm_head 3600 = 24660 untied. Decoder linear weights: 2 * (3456 + 5184) = 17280.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from tuneloop.models.plan import GIB, RUNTIME_OVERHEAD_BYTES, ModelShape, plan_memory

SHAPE = ModelShape(
    params=21060,
    layers=2,
    hidden_size=36,
    num_heads=9,
    num_kv_heads=3,
    head_dim=4,
    intermediate_size=48,
    vocab_size=100,
    tie_embeddings=True,
    max_position_embeddings=64,
)
SEQ, BATCH = 10, 2  # 20 tokens


def _llama_config(**overrides):
    from transformers import LlamaConfig

    kwargs = dict(
        vocab_size=100,
        hidden_size=36,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    return LlamaConfig(**{**kwargs, **overrides})


def test_param_count_by_hand():
    """21060 tied and 24660 untied, as worked out in the module docstring."""
    assert ModelShape.from_hf_config(_llama_config()) == SHAPE
    untied = ModelShape.from_hf_config(_llama_config(tie_word_embeddings=False))
    assert untied.params == 24660
    assert not untied.tie_embeddings


@pytest.mark.parametrize(
    "overrides",
    [
        {"tie_word_embeddings": True},
        {"tie_word_embeddings": False},
        # no num_key_value_heads (falls back to all heads), explicit head_dim != h/a, biases
        {"num_key_value_heads": None, "head_dim": 8, "attention_bias": True, "mlp_bias": True},
    ],
)
def test_from_hf_config_matches_instantiated_model(overrides):
    """The analytic count equals summing numel over a real LlamaForCausalLM.

    ``model.parameters()`` yields a tied embedding once, as the count does.
    """
    import torch
    from transformers import LlamaForCausalLM

    config = _llama_config(**overrides)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    assert ModelShape.from_hf_config(config).params == sum(p.numel() for p in model.parameters())


def test_from_hf_config_fallbacks():
    """head_dim = 36 / 9 = 4 when missing; kv heads = heads when missing."""
    shape = ModelShape.from_hf_config(_llama_config(num_key_value_heads=None, head_dim=None))
    assert (shape.head_dim, shape.num_kv_heads) == (4, 9)


def test_from_model_dir_matches_saved_weights(tiny_model_dir):
    """Reading only config.json gives the parameter count of the saved model."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    shape = ModelShape.from_model_dir(tiny_model_dir)
    assert shape.params == sum(p.numel() for p in model.parameters())


def test_kv_cache_is_gqa_aware():
    """2 (k, v) * L 2 * g 3 * d 4 * 20 tokens * 4 bytes = 3840; 9 KV heads: 3x = 11520."""
    gqa = plan_memory(SHAPE, "inference", SEQ, BATCH, "fp32")
    mha = plan_memory(replace(SHAPE, num_kv_heads=9), "inference", SEQ, BATCH, "fp32")
    assert gqa.kv_cache == 3840
    assert mha.kv_cache == 11520 == 3 * gqa.kv_cache
    assert plan_memory(SHAPE, "inference", SEQ, BATCH, "bf16").kv_cache == 1920
    assert plan_memory(SHAPE, "lora", SEQ, BATCH, "fp32").kv_cache == 0  # no cache in training


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("fp32", 21060 * 4),  # 84240
        ("bf16", 21060 * 2),  # 42120
        ("fp16", 21060 * 2),
        # quantized linears 17280 * 1, the other 21060 - 17280 = 3780 params in bf16, plus
        # the largest linear (1728) dequantized in flight: 17280 + (3780 + 1728) * 2 = 28296
        ("int8", 28296),
        # nf4 with double quantization: int(17280 * (0.5 + 0.127/8)) = int(8914.32) = 8914
        ("nf4", 8914 + (3780 + 1728) * 2),  # 19930
    ],
)
def test_weights_per_dtype(dtype, expected):
    assert plan_memory(SHAPE, "inference", SEQ, BATCH, dtype).weights == expected


def test_model_states_full_vs_lora():
    """Full: AdamW 8 bytes/param; 16-bit adds a 4-byte fp32 master copy (ZeRO's 16 bytes).

    LoRA r=2, all linear: r*(in+out) per target = q 2*72 + k 2*48 + v 2*48 + o 2*72
    + gate, up, down 3 * 2*84 = 984 per layer, 1968 for 2 layers; adapters, their
    gradients in fp32 (4 bytes) and AdamW (8 bytes) follow.
    """
    full32 = plan_memory(SHAPE, "full", SEQ, BATCH, "fp32")
    assert (full32.gradients, full32.optimizer_states, full32.lora_params) == (84240, 168480, 0)
    full16 = plan_memory(SHAPE, "full", SEQ, BATCH, "bf16")
    assert (full16.weights, full16.gradients, full16.optimizer_states) == (42120, 42120, 252720)
    assert full16.weights + full16.gradients + full16.optimizer_states == 16 * 21060
    lora = plan_memory(SHAPE, "lora", SEQ, BATCH, "bf16", lora_rank=2)
    assert (lora.lora_params, lora.gradients, lora.optimizer_states) == (7872, 7872, 15744)
    qv = plan_memory(
        SHAPE, "lora", SEQ, BATCH, "fp32", lora_rank=2, lora_targets=["q_proj", "v_proj"]
    )
    assert qv.lora_params == 2 * (144 + 96) * 4  # 480 adapter params


def test_qlora_weights_smaller_than_lora():
    """QLoRA keeps nf4 base weights (19930 bytes) under a bf16 LoRA base (42120)."""
    lora = plan_memory(SHAPE, "lora", SEQ, BATCH, "bf16")
    qlora = plan_memory(SHAPE, "qlora", SEQ, BATCH, "bf16")
    assert (qlora.weights, lora.weights) == (19930, 42120)
    assert qlora.lora_params == lora.lora_params and qlora.total < lora.total


def test_activations_by_hand():
    """Saved per token per layer (values): 4h + 2q + 2kv + 4i = 144 + 72 + 24 + 192 = 432.

    LoRA fp32: (432 * 4 + 4 * 9 lse) = 1764 bytes * 20 tokens * 2 layers = 70560, plus the
    final norm's input and output 20 * 2 * 36 * 4 = 5760 -> 76320. Full adds the two norms'
    normalized copies (2h): (504 * 4 + 36) * 20 * 2 + 5760 = 87840. Checkpointing keeps the
    layer inputs 2 * 20 * 36 * 4 = 5760, one layer 35280 and the head 5760 -> 46800.
    Inference: one layer's working set 20 * (2*36 + 3*48) * 4 = 17280.
    """
    assert plan_memory(SHAPE, "lora", SEQ, BATCH, "fp32").activations == 76320
    assert plan_memory(SHAPE, "full", SEQ, BATCH, "fp32").activations == 87840
    gc = plan_memory(SHAPE, "lora", SEQ, BATCH, "fp32", gradient_checkpointing=True)
    assert gc.activations == 46800
    assert plan_memory(SHAPE, "inference", SEQ, BATCH, "fp32").activations == 17280


def test_logits_by_hand():
    """Training: 3 fp32 b*s*V tensors = 2 * 10 * 100 * 12 = 24000, whatever the dtype.

    Inference: last position only, in fp32 and a 4-byte copy: 2 * 100 * 8 = 1600.
    """
    assert plan_memory(SHAPE, "lora", SEQ, BATCH, "fp32").logits == 24000
    assert plan_memory(SHAPE, "full", SEQ, BATCH, "bf16").logits == 24000
    assert plan_memory(SHAPE, "inference", SEQ, BATCH, "fp32").logits == 1600


def test_total_fits_and_to_dict():
    """Inference fp32: 84240 + 3840 + 17280 + 1600 + runtime overhead."""
    plan = plan_memory(SHAPE, "inference", SEQ, BATCH, "fp32")
    assert plan.total == 84240 + 3840 + 17280 + 1600 + RUNTIME_OVERHEAD_BYTES
    assert plan.fits(plan.total / GIB)
    assert not plan.fits((plan.total - 1) / GIB)
    d = plan.to_dict()
    assert d["total"] == {"bytes": plan.total, "gib": round(plan.total / GIB, 4)}
    assert d["components"]["kv_cache"]["bytes"] == 3840
    assert sum(c["bytes"] for c in d["components"].values()) == plan.total
    assert d["inputs"]["shape"]["params"] == 21060 and d["inputs"]["method"] == "inference"


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("train", 8, 1, "fp32"), "method"),
        (("lora", 8, 1, "fp8"), "dtype"),
        (("full", 8, 1, "nf4"), "full fine-tuning"),
        (("lora", 0, 1, "fp32"), "positive"),
    ],
)
def test_bad_arguments_raise(args, match):
    with pytest.raises(ValueError, match=match):
        plan_memory(SHAPE, *args)


def test_unknown_lora_target_raises():
    with pytest.raises(ValueError, match="LoRA targets"):
        plan_memory(SHAPE, "lora", 8, 1, "fp32", lora_targets=["lm_head"])


def test_planner_does_not_import_torch():
    """Planning must stay cheap: plan.py by itself pulls in neither torch nor transformers.

    The module is loaded from its file, so what the rest of the package imports is not judged.
    """
    import tuneloop.models.plan as plan

    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('plan', {plan.__file__!r})\n"
        "module = sys.modules['plan'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert not {'torch', 'transformers'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
