"""Memory planner: the bytes a model needs to generate or train, worked out before loading it.

``plan_memory(shape, method, seq_len, batch, dtype)`` adds up a few physically motivated
components (weights, KV cache, activations, logits, gradients, optimizer states, LoRA
parameters, runtime baseline) for a Llama-style decoder described by a :class:`ModelShape`.
It is plain arithmetic: torch is never imported here, so ``--dry-run`` can plan a 70B model
on a laptop. How the terms compare with measured peak RSS: ``docs/design/memory-planner.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MIB = 2**20
GIB = 2**30

METHODS = ("inference", "full", "lora", "qlora")
"""What the process does with the model."""

WEIGHT_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "int8": 1.0, "nf4": 0.5 + 0.127 / 8}
"""Bytes per stored parameter. nf4 is 4 bits plus the absmax of each 64-value block, which
double quantization (QLoRA's default) shrinks to 0.127 bits/param (Dettmers et al. 2023)."""

OPTIMIZER_BYTES = {"adamw": 8, "adamw_8bit": 2, "sgd": 0}
"""Optimizer state bytes per trainable parameter: AdamW keeps two fp32 moments."""

RUNTIME_OVERHEAD_BYTES = 340 * MIB
"""RSS of a Python process with torch and transformers' modeling stack imported and no
model: measured 324 MiB (torch 2.13 CPU, transformers 5.23, ``import torch,
transformers.modeling_utils``; plain ``import transformers`` is lazy and shows 237 MiB),
plus ~16 MiB for a model-family module and peft, which every load or training run imports."""

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""The decoder's linear layers; ``"all-linear"`` means all of them (peft leaves lm_head out)."""


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a Llama-style decoder that decide its memory."""

    params: int
    """Total parameter count (tied embeddings counted once)."""
    layers: int
    """Number of decoder layers."""
    hidden_size: int
    """Width of the residual stream."""
    num_heads: int
    """Query heads per layer."""
    num_kv_heads: int
    """Key/value heads per layer (fewer than ``num_heads`` under grouped-query attention)."""
    head_dim: int
    """Width of one attention head."""
    intermediate_size: int
    """Width of the gated MLP (gate/up output, down input)."""
    vocab_size: int
    """Rows of the embedding and of the output head."""
    tie_embeddings: bool
    """Whether the output head shares the input embedding's weights."""
    max_position_embeddings: int = 0
    """Longest sequence the model was trained for (0 when unknown)."""

    @classmethod
    def from_hf_config(cls, config: Any) -> ModelShape:
        """Shape of a transformers ``PretrainedConfig``; ``params`` is counted analytically.

        Missing fields fall back as Llama does: ``head_dim = hidden_size // num_heads``,
        ``num_kv_heads = num_heads`` (no GQA), ``intermediate_size = 4 * hidden_size``.
        """
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        hidden = text.hidden_size
        heads = text.num_attention_heads
        kv_heads = getattr(text, "num_key_value_heads", None) or heads
        head_dim = getattr(text, "head_dim", None) or hidden // heads
        inter = getattr(text, "intermediate_size", None) or 4 * hidden
        tie = bool(
            getattr(text, "tie_word_embeddings", getattr(config, "tie_word_embeddings", False))
        )
        shape = dict(
            layers=text.num_hidden_layers,
            hidden_size=hidden,
            num_heads=heads,
            num_kv_heads=kv_heads,
            head_dim=head_dim,
            intermediate_size=inter,
            vocab_size=text.vocab_size,
            tie_embeddings=tie,
            max_position_embeddings=getattr(text, "max_position_embeddings", None) or 0,
        )
        attn_bias = bool(getattr(text, "attention_bias", False))
        mlp_bias = bool(getattr(text, "mlp_bias", False))
        return cls(params=_count_params(shape, attn_bias, mlp_bias), **shape)

    @classmethod
    def from_model_dir(cls, path: str | Path) -> ModelShape:
        """Shape of the model whose ``config.json`` is in folder ``path`` (no weights read)."""
        from transformers import AutoConfig  # imported here so the planner stays torch-free

        return cls.from_hf_config(AutoConfig.from_pretrained(str(path), local_files_only=True))

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """``(in_features, out_features)`` of each linear layer in one decoder layer."""
        h, q = self.hidden_size, self.num_heads * self.head_dim
        kv, i = self.num_kv_heads * self.head_dim, self.intermediate_size
        return {
            "q_proj": (h, q),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (q, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    def lora_params(self, rank: int, targets: tuple[str, ...] = LORA_TARGETS) -> int:
        """LoRA parameters over all layers: each target adds A (r x in) and B (out x r)."""
        shapes = self.linear_shapes()
        return self.layers * sum(rank * (shapes[t][0] + shapes[t][1]) for t in targets)


def _count_params(s: dict[str, Any], attn_bias: bool, mlp_bias: bool) -> int:
    """Llama decoder parameters, from the fields of a :class:`ModelShape` (less ``params``).

    embed V*h; per layer q h*(a*d), k and v h*(g*d) each, o (a*d)*h, gate and up h*i,
    down i*h, two RMSNorm weights 2h; final norm h; lm_head V*h unless tied.
    SmolLM2-135M (V=49152, h=576, L=30, a=9, g=3, d=64, i=1536, tied):
    28,311,552 + 30 * 3,540,096 + 576 = 134,515,008.
    """
    h, i, v = s["hidden_size"], s["intermediate_size"], s["vocab_size"]
    q, kv = s["num_heads"] * s["head_dim"], s["num_kv_heads"] * s["head_dim"]
    per_layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h
    per_layer += (q + 2 * kv + h) * attn_bias + (2 * i + h) * mlp_bias
    return v * h + s["layers"] * per_layer + h + (0 if s["tie_embeddings"] else v * h)


COMPONENTS = ("weights", "kv_cache", "activations", "logits", "gradients",
              "optimizer_states", "lora_params", "runtime_overhead")  # fmt: skip
"""The components of a :class:`MemoryPlan`, in the order reports list them."""


@dataclass(frozen=True)
class MemoryPlan:
    """Estimated peak memory of one process, by component, in bytes."""

    inputs: dict[str, Any]
    """The arguments the plan was made from (shape as a dict)."""
    weights: int
    """Model weights as stored (quantized linears at 4 or 8 bits, the rest in the compute dtype)."""
    kv_cache: int
    """Inference: cached keys and values of every layer for ``seq_len`` tokens."""
    activations: int
    """Training: tensors saved for backward. Inference: one layer's working set."""
    logits: int
    """Output-head logits, plus the softmax/cross-entropy copies and gradients in training."""
    gradients: int
    """Gradients of the trainable parameters."""
    optimizer_states: int
    """Optimizer moments of the trainable parameters, plus an fp32 master copy when full
    fine-tuning keeps 16-bit weights."""
    lora_params: int
    """The LoRA adapter matrices (peft keeps them in fp32)."""
    runtime_overhead: int
    """The Python + torch + transformers process before any model is loaded."""

    @property
    def total(self) -> int:
        """Sum of all components: the estimated peak resident memory in bytes."""
        return sum(getattr(self, name) for name in COMPONENTS)

    def fits(self, memory_gb: float) -> bool:
        """Whether the total fits in ``memory_gb`` GiB (2**30 bytes, as ``free -g`` counts)."""
        return self.total <= memory_gb * GIB

    def to_dict(self) -> dict[str, Any]:
        """Inputs, every component and the total, each in bytes and GiB (JSON-ready)."""

        def both(n: int) -> dict[str, float]:
            return {"bytes": n, "gib": round(n / GIB, 4)}

        return {
            "inputs": self.inputs,
            "components": {name: both(getattr(self, name)) for name in COMPONENTS},
            "total": both(self.total),
        }


def plan_memory(
    shape: ModelShape,
    method: str,
    seq_len: int,
    batch: int,
    dtype: str,
    lora_rank: int = 8,
    lora_targets: str | list[str] = "all-linear",
    gradient_checkpointing: bool = False,
    optimizer: str = "adamw",
) -> MemoryPlan:
    """Plan the peak memory of generating with, or training, ``shape``.

    ``method``: inference | full | lora | qlora. ``dtype`` is the weight dtype (fp32, bf16,
    fp16, int8, nf4); int8/nf4 store the decoder's linear layers quantized and compute in
    bf16. ``qlora`` always stores those layers in nf4 and computes in ``dtype`` (bf16 when
    ``dtype`` is itself a quantized type). ``seq_len`` counts prompt plus generated tokens.
    ``lora_targets``: "all-linear" or names from :data:`LORA_TARGETS`.

    Training plans the peak at the start of backward, when every saved activation, the
    cross-entropy's fp32 tensors, the gradients and the optimizer states coexist; model
    states are counted as in the ZeRO paper (Rajbhandari et al. 2020): full fine-tuning in
    16 bits is 2 (weights) + 2 (grads) + 4 (fp32 master) + 8 (AdamW) = 16 bytes/param.
    The loss is the plain ``model(labels=...)`` one, which builds the full logits.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if dtype not in WEIGHT_BYTES:
        raise ValueError(f"dtype must be one of {tuple(WEIGHT_BYTES)}, got {dtype!r}")
    if optimizer not in OPTIMIZER_BYTES:
        raise ValueError(f"optimizer must be one of {tuple(OPTIMIZER_BYTES)}, got {optimizer!r}")
    if method == "full" and dtype in ("int8", "nf4"):
        raise ValueError("full fine-tuning needs fp32, bf16 or fp16 weights, not " + dtype)
    if seq_len < 1 or batch < 1:
        raise ValueError(f"seq_len and batch must be positive, got {seq_len} and {batch}")
    targets = _resolve_targets(lora_targets)
    training = method != "inference"
    tokens = seq_len * batch
    # Quantized storage computes in bf16; fp32/bf16/fp16 compute in themselves.
    act = 2 if dtype in ("int8", "nf4") else int(WEIGHT_BYTES[dtype])
    adapters = shape.lora_params(lora_rank, targets) if method in ("lora", "qlora") else 0
    trainable = shape.params if method == "full" else adapters
    master = 4 * shape.params if method == "full" and act == 2 else 0
    # Keys and values of every layer, GQA-aware: only num_kv_heads heads are cached.
    kv_per_token = 2 * shape.layers * shape.num_kv_heads * shape.head_dim * act
    return MemoryPlan(
        inputs=dict(
            shape=asdict(shape),
            method=method,
            seq_len=seq_len,
            batch=batch,
            dtype=dtype,
            lora_rank=lora_rank,
            lora_targets=list(targets),
            gradient_checkpointing=gradient_checkpointing,
            optimizer=optimizer,
        ),
        weights=_weights(shape, "nf4" if method == "qlora" else dtype, act),
        kv_cache=0 if training else kv_per_token * tokens,
        activations=_activations(shape, tokens, act, method, gradient_checkpointing),
        logits=_logits(shape, seq_len, batch, act, training),
        gradients=trainable * (act if method == "full" else 4),
        optimizer_states=trainable * OPTIMIZER_BYTES[optimizer] + master,
        lora_params=adapters * 4,
        runtime_overhead=RUNTIME_OVERHEAD_BYTES,
    )


def _resolve_targets(lora_targets: str | list[str]) -> tuple[str, ...]:
    if lora_targets == "all-linear":
        return LORA_TARGETS
    targets = (lora_targets,) if isinstance(lora_targets, str) else tuple(lora_targets)
    unknown = [t for t in targets if t not in LORA_TARGETS]
    if unknown:
        raise ValueError(f"unknown LoRA targets {unknown}; use 'all-linear' or {LORA_TARGETS}")
    return targets


def _weights(shape: ModelShape, dtype: str, act: int) -> int:
    """Stored weights: quantization reaches only the decoder's linear layers.

    bitsandbytes leaves embeddings, norms and lm_head in the compute dtype, so for int8/nf4
    quantized = L * sum(in*out) at WEIGHT_BYTES[dtype] and the rest at ``act`` bytes, plus
    the largest linear dequantized to ``act`` bytes while its matmul runs.
    """
    if dtype not in ("int8", "nf4"):
        return int(shape.params * WEIGHT_BYTES[dtype])
    sizes = [i * o for i, o in shape.linear_shapes().values()]
    quantized = shape.layers * sum(sizes)
    return int(quantized * WEIGHT_BYTES[dtype]) + (shape.params - quantized + max(sizes)) * act


def _activations(shape: ModelShape, tokens: int, act: int, method: str, checkpointing: bool) -> int:
    """Activation memory, Korthikanti et al. 2022 redone for a Llama layer with fused attention.

    Korthikanti counts 34*s*b*h + 5*a*s^2*b bytes per GPT layer at 16 bits. For a Llama layer
    (RMSNorm, GQA, SwiGLU) under SDPA the tensors autograd saves, per token, are:
    2 norm inputs + 2 norm outputs (4h; +2h normalized copies when the norm weights train,
    i.e. full fine-tuning), rotated q and the attention output (2q), rotated k and v (2kv;
    GQA keeps them un-repeated), gate, up, silu(gate), gate*up (4i), each at ``act`` bytes,
    plus the fp32 log-sum-exp of each head (4a bytes). The 5*a*s^2*b score term is gone:
    the fused kernel recomputes scores in backward instead of storing them.
    SmolLM2-135M, LoRA: 4*576 + 2*576 + 2*192 + 4*1536 = 9984 = 17.3h values per token
    (Korthikanti: 17h). Gradient checkpointing keeps each layer's input (h) and re-runs one.
    Inference keeps nothing: one layer's working set, the residual and its normed copy (2h)
    plus silu(gate), up and their product (3i), at the widest point, the MLP.
    """
    h, a, i = shape.hidden_size, shape.num_heads, shape.intermediate_size
    q, kv = shape.num_heads * shape.head_dim, shape.num_kv_heads * shape.head_dim
    if method == "inference":
        return tokens * (2 * h + 3 * i) * act
    norms = 6 * h if method == "full" else 4 * h
    per_layer = tokens * ((norms + 2 * q + 2 * kv + 4 * i) * act + 4 * a)
    head = tokens * 2 * h * act  # the final norm's input and output (lm_head's input)
    if checkpointing:
        return shape.layers * tokens * h * act + per_layer + head
    return shape.layers * per_layer + head


def _logits(shape: ModelShape, seq_len: int, batch: int, act: int, training: bool) -> int:
    """Output-head logits; for vocab 49152 this rivals the whole model.

    Inference (``generate``) computes logits for the last position only, then copies them to
    fp32 for the logits processors: batch * V * (act + 4). Training: transformers upcasts
    the logits to fp32 for cross-entropy, which saves its fp32 log-softmax; backward then
    adds that tensor's gradient and the logits' gradient, both fp32, while the trainer has
    already dropped the outputs: batch * seq * V * 12. (Forward peaks lower, at the logits
    plus the log-softmax.) A caller that keeps ``outputs.logits`` through backward adds
    batch * seq * V * act. TRL 1.16's fused LM head never builds the full logits: with
    Triton it holds one min(tokens, 4096) x min(V, 32768) tile, but its torch fallback (CPU)
    keeps ~9 fp32 tiles alive in backward, more than this term at vocab 49152.
    """
    if not training:
        return batch * shape.vocab_size * (act + 4)
    return batch * seq_len * shape.vocab_size * 12
