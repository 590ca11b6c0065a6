"""Typed training configs. YAML holds values only; ``--set key=value`` overrides.

Hyper-parameters are flat (``max_steps``, ``learning_rate``, ``lora_r``...) like
Axolotl's and TRL's own configs, so ``--set max_steps=20`` does what users expect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the file and the field."""


class TrainConfig(BaseModel):
    """Fields shared by every recipe."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)

    name: str = Field(min_length=1, pattern=r"^[\w.-]+$")
    """Run name; the run folder is ``output_dir/name``."""
    model: str = "smollm2-135m-instruct"
    """Model reference: embedded name, local folder, .gguf file or hub id."""
    output_dir: Path = Path("runs")
    """Parent folder of run folders."""
    method: Literal["full", "lora", "qlora"] = "lora"
    """full fine-tuning, LoRA adapters, or LoRA on a 4-bit NF4 base (bitsandbytes)."""
    lora_r: int = Field(16, ge=1)
    """LoRA rank."""
    lora_alpha: int = Field(32, ge=1)
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0)
    """Dropout on the LoRA path."""
    lora_target_modules: list[str] | Literal["all-linear"] = "all-linear"
    """Module names to adapt, or "all-linear" for every linear layer but the output head."""
    train_files: list[str] = Field(min_length=1)
    """JSONL files (globs allowed) with training records."""
    validation_files: list[str] = Field(default_factory=list)
    """JSONL files for evaluation; when empty, ``validation_fraction`` of train is held out."""
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    """Share of training records held out when no validation files are given."""
    eval_sets: list[str] = Field(default_factory=list)
    """Eval sets (globs) the training data must not overlap (contamination check)."""
    max_length: int = Field(512, ge=8)
    """Longest sequence in tokens; longer examples are truncated (and reported)."""
    learning_rate: float = Field(2e-4, gt=0)
    """Peak learning rate. Scale it with the effective batch (docs/training.md)."""
    num_epochs: float = Field(1.0, gt=0)
    """Passes over the training data (ignored when max_steps > 0)."""
    max_steps: int = -1
    """Optimizer steps to run; -1 means num_epochs."""
    batch_size: int = Field(4, ge=1)
    """Sequences per device per micro-batch."""
    gradient_accumulation_steps: int = Field(1, ge=1)
    """Micro-batches per optimizer step (effective batch = batch x accumulation x processes)."""
    warmup_ratio: float = Field(0.05, ge=0.0, le=1.0)
    """Share of steps with linear learning-rate warm-up."""
    lr_scheduler: str = "cosine"
    """transformers scheduler name (linear, cosine, constant, constant_with_warmup...)."""
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0)
    """Gradient clipping threshold."""
    seed: int = 42
    """Seed for initialisation, data order and dropout."""
    deterministic: bool = False
    """Deterministic kernels only (torch.use_deterministic_algorithms): bit-reproducible
    runs and resumes, somewhat slower. Without it, multi-threaded CPU kernels may sum in
    a different order from run to run."""
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(20, ge=1)
    """Write a checkpoint every N steps (what --resume continues from)."""
    eval_steps: int | None = Field(None, ge=1)
    """Evaluate on the validation split every N steps (default: save_steps). save_steps
    must be a multiple of it, so the best evaluated checkpoint exists."""
    save_total_limit: int | None = 3
    """Keep at most this many checkpoints (the best one is always kept)."""
    early_stopping_patience: int | None = None
    """Stop after this many evaluations without improvement of eval loss."""
    gradient_checkpointing: bool = False
    """Trade compute for memory (about 25% slower on CPU)."""
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Training precision; auto = fp32 on CPU (bf16 is ~20x slower there), bf16 on GPUs that have it."""
    loss_spike_factor: float = Field(3.0, gt=1.0)
    """Warn when a step's loss exceeds this multiple of the running mean."""
    grad_norm_threshold: float = Field(100.0, gt=0)
    """Warn when the gradient norm (before clipping) exceeds this, or is not finite."""
    stop_on_anomaly: bool = False
    """Stop training (checkpoint kept) at the first loss spike or gradient anomaly."""
    report_to: list[Literal["tensorboard", "mlflow", "wandb"]] = Field(default_factory=list)
    """Experiment trackers, each an optional install; metrics.jsonl is always written."""

    @model_validator(mode="after")
    def _checkpoint_at_every_evaluation(self):
        # Best-checkpoint selection needs a checkpoint at each evaluation.
        if self.eval_steps is not None and self.save_steps % self.eval_steps:
            raise ValueError(
                f"save_steps ({self.save_steps}) must be a multiple of eval_steps ({self.eval_steps}) "
                "so the best evaluated checkpoint exists"
            )
        return self

    @property
    def eval_every(self) -> int:
        """Steps between evaluations."""
        return self.eval_steps or self.save_steps


class SFTConfig(TrainConfig):
    """Supervised fine-tuning on Conversation records."""

    batching: Literal["padding_free", "padding", "packing"] = "padding_free"
    """padding_free: sequences concatenated with per-sequence attention (no padding, no
    cross-document attention); padding: pad to the longest in the batch; packing: fill
    fixed-length rows (TRL bfd packing)."""


class DPOConfig(TrainConfig):
    """Preference tuning: DPO and its relatives."""

    loss_type: Literal["dpo", "ipo", "apo_zero", "apo_down", "kto", "orpo", "simpo"] = "dpo"
    """Objective. dpo/ipo/apo_* use PreferencePair data with a reference model; kto uses
    LabeledExample data; orpo and simpo are reference-free."""
    beta: float = Field(0.1, gt=0)
    """Strength of the KL (or margin) term."""
    learning_rate: float = Field(5e-6, gt=0)
    """Preference tuning wants far smaller rates than SFT."""
    max_prompt_length: int | None = None
    """Truncate prompts to this many tokens (kept from the left of the answer)."""
    precompute_ref_log_probs: bool = False
    """Compute reference log-probs once before training (saves memory and time per step)."""
    simpo_gamma: float = 0.5
    """SimPO target reward margin."""
    adapter: str | None = None
    """An SFT run folder or adapter to start from (its adapter is the reference model)."""


class RewardConfig(TrainConfig):
    """A Bradley-Terry reward model (sequence classifier, one score) on PreferencePair data."""

    method: Literal["full", "lora"] = "lora"
    """full fine-tuning, or LoRA adapters (task SEQ_CLS) with the score head trained in full."""
    learning_rate: float = Field(1e-4, gt=0)
    """Reward models take larger rates than DPO: the score head starts from random."""
    max_length: int = Field(512, ge=8)
    """Longest prompt+answer in tokens; longer ones keep their last tokens (the answer end,
    where the score is read) and are counted as truncated."""
    center_rewards_coefficient: float | None = Field(None, ge=0)
    """Weight of a mean((r_chosen + r_rejected)^2) term pulling rewards towards zero mean
    (Eisenstein et al. 2023; 0.01 is typical). None disables it."""
    margin_key: str | None = None
    """PreferencePair ``metadata`` key holding a per-pair margin m: the loss becomes
    -log sigmoid(r_chosen - r_rejected - m). None: no margin."""
    lora_top_layers: int | None = Field(None, ge=1)
    """LoRA on the top N transformer layers only (None: all). The backward pass then stops
    below them, so a step costs little more than a forward (default model, top 4 of 30
    layers: about 4-5x faster per step on CPU)."""


def _parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _set_dotted(data: dict, key: str, value: Any) -> None:
    """``dpo.max_steps`` sets ``max_steps`` inside the ``dpo`` block (created when absent)."""
    *heads, last = key.split(".")
    node = data
    for head in heads:
        node = node.setdefault(head, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {head} is not a block of keys")
    node[last] = value


def load_config(path: str | Path, cls: type[BaseModel], overrides: list[str] = ()) -> Any:
    """Read a YAML config, apply ``key=value`` overrides (dotted keys reach nested blocks),
    validate as ``cls``. Errors name file and field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values")
    for item in overrides:
        _set_dotted(data, *_parse_override(item))
    data.setdefault("name", path.stem)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            field = ".".join(str(p) for p in e["loc"]) or "<config>"
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            lines.append(f"{path}: {field}: {msg}")
        raise ConfigError("\n".join(lines)) from None


def config_to_yaml(config: BaseModel) -> str:
    """The resolved config as YAML (what every run folder saves)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


class RewardSpec(BaseModel):
    """One reward term of a GRPO run: a registered scorer or a trained reward model, with a weight."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    scorer: str | None = Field(None, min_length=1)
    """Scorer name from the registry (``tuneloop eval scorers`` lists them)."""
    reward_model: str | None = Field(None, min_length=1)
    """A reward model: a ``tuneloop train reward`` run folder, its LoRA adapter folder, or a
    full sequence-classification model folder."""
    weight: float = 1.0
    """Weight of this term in the summed reward."""

    @model_validator(mode="after")
    def _one_source(self):
        if (self.scorer is None) == (self.reward_model is None):
            raise ValueError("set exactly one of scorer or reward_model")
        return self


class GRPOConfig(TrainConfig):
    """GRPO with verifiable rewards (the scorecard's scorers) on EvalSample prompts."""

    rewards: list[RewardSpec] = Field(min_length=1)
    """Reward terms, each a scorer name or a reward model, and a weight."""
    num_generations: int = Field(4, ge=2)
    """Completions sampled per prompt (the group); batch_size must be a multiple of it."""
    max_completion_length: int = Field(64, ge=1)
    """Hard limit on generated tokens."""
    overlong_buffer: int = Field(0, ge=0)
    """DAPO soft overlong penalty: 0 up to max_completion_length - buffer, then falling
    linearly to -1 at the hard limit (0 disables it)."""
    overlong_weight: float = Field(1.0, ge=0)
    """Weight of the overlong penalty term."""
    epsilon: float = Field(0.2, gt=0)
    """PPO-style clipping range of the importance ratio."""
    beta: float = Field(0.0, ge=0)
    """KL coefficient to the reference (adapter disabled); 0 loads no reference."""
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = "dapo"
    """TRL loss normalisation."""
    temperature: float = Field(1.0, gt=0)
    """Sampling temperature of rollouts."""
    mask_truncated_completions: bool = False
    """Drop completions that hit the hard limit from the loss (DAPO)."""
    learning_rate: float = Field(5e-6, gt=0)
    """RL wants small rates."""

    @model_validator(mode="after")
    def _group_fits_batch(self):
        if (self.batch_size * self.gradient_accumulation_steps) % self.num_generations:
            raise ValueError(
                f"batch_size x gradient_accumulation_steps ({self.batch_size * self.gradient_accumulation_steps}) "
                f"must be a multiple of num_generations ({self.num_generations})"
            )
        if self.overlong_buffer >= self.max_completion_length:
            raise ValueError("overlong_buffer must be smaller than max_completion_length")
        return self


class RoundDPO(BaseModel):
    """The DPO hyper-parameters of each on-policy round (mapped onto :class:`DPOConfig`)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    loss_type: Literal["dpo", "ipo", "apo_zero", "apo_down"] = "dpo"
    """Pairwise objective with a reference (the round's starting policy)."""
    beta: float = Field(0.1, gt=0)
    """Strength of the KL term to the round's starting policy."""
    learning_rate: float = Field(5e-6, gt=0)
    """Peak learning rate of each round."""
    max_steps: int = Field(10, ge=1)
    """Optimizer steps per round."""
    batch_size: int = Field(2, ge=1)
    """Pairs per micro-batch."""
    gradient_accumulation_steps: int = Field(1, ge=1)
    """Micro-batches per optimizer step."""
    method: Literal["full", "lora"] = "lora"
    """LoRA (merged after each round) or full fine-tuning."""
    lora_r: int = Field(8, ge=1)
    """LoRA rank."""
    lora_alpha: int = Field(16, ge=1)
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout on the LoRA path."""
    max_length: int = Field(512, ge=8)
    """Longest prompt + answer in tokens."""
    warmup_ratio: float = Field(0.0, ge=0.0, le=1.0)
    """Share of each round's steps with learning-rate warm-up."""
    lr_scheduler: str = "constant"
    """transformers scheduler name."""


class DPORoundConfig(BaseModel):
    """On-policy preference rounds: sample from the policy, score, pair, DPO, merge, repeat."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)

    name: str = Field(min_length=1, pattern=r"^[\w.-]+$")
    """Run name; the run folder is ``output_dir/name``."""
    model: str = "smollm2-135m-instruct"
    """Starting policy: embedded name, local folder or hub id."""
    output_dir: Path = Path("runs")
    """Parent folder of run folders."""
    prompts: list[str] = Field(min_length=1)
    """EvalSample JSONL files the policy answers each round (pairs are built from them)."""
    prompts_limit: int | None = Field(None, ge=1)
    """Use only the first N prompts (all when unset)."""
    heldout_prompts: list[str] = Field(min_length=1)
    """EvalSample JSONL files evaluated greedily after every round (never trained on)."""
    heldout_limit: int | None = Field(None, ge=1)
    """Evaluate only the first N held-out prompts (all when unset)."""
    rounds: int = Field(2, ge=1)
    """Rounds of sample -> pair -> DPO -> merge."""
    samples_per_prompt: int = Field(4, ge=2)
    """Answers sampled per prompt each round (k)."""
    scorers: list[RewardSpec] = Field(min_length=1)
    """Grading terms (scorer or reward_model, with weights); a sample's value is their weighted mean."""
    threshold: float = 1.0
    """Value a held-out answer needs to count as passed (and no scorer may fail it)."""
    temperature: float = Field(0.8, gt=0)
    """Sampling temperature of the round's samples."""
    max_new_tokens: int = Field(64, ge=1)
    """Token budget of each sampled and held-out answer."""
    seed: int = 42
    """Sample i of round r uses seed ``seed + 1000 r + i``; DPO of round r uses ``seed + r``."""
    pair_strategy: Literal["best_vs_worst"] = "best_vs_worst"
    """Chosen from the top-scoring samples, rejected from the bottom-scoring."""
    min_score_gap: float = Field(0.5, gt=0)
    """Skip a prompt whose top and bottom values differ by less (no clear preference)."""
    length_control: bool = True
    """Chosen = the shortest top sample; rejected = the bottom sample closest in length to it,
    so pairs do not teach "longer is better"."""
    dpo: RoundDPO = Field(default_factory=RoundDPO)
    """DPO hyper-parameters of each round (``--set dpo.max_steps=5``)."""


def load_round_config(path: str | Path, overrides: list[str] = ()) -> DPORoundConfig:
    """:func:`load_config` for :class:`DPORoundConfig` (``--set dpo.key=value`` reaches the block)."""
    return load_config(path, DPORoundConfig, overrides)
