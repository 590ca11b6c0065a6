"""The loop's config: which model, which prompts, which data, which recipes, which gate.

YAML holds values only; ``--set key=value`` (dotted keys for nested blocks, e.g.
``--set sft.max_steps=5``) overrides. Every path is relative to the working directory,
like the other configs. The recipe blocks point at the recipe's own YAML config and
override some of its keys, so one SFT config serves the loop and ``tuneloop train``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LoopConfigError(ValueError):
    """A loop config is wrong; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class AssistantStage(_Strict):
    """Stage 2: the assistant (runtime with tools and schemas) over a prompt set, traced."""

    prompts: list[str] = Field(min_length=1)
    """EvalSample JSONL files (globs allowed): input messages, and a ``schema`` the answer
    must satisfy or ``tools`` (built-in tool names in ``metadata.tools``) it may call."""
    limit: int | None = Field(None, ge=1)
    """Use at most this many prompts (the first ones)."""
    tools: list[str] = Field(default_factory=list)
    """Built-in tools offered to every prompt (calculator, clock, read_file, search_docs)."""
    constrain_first: bool = False
    """Constrain the first answer too. The default lets the model answer freely and
    constrains only the repairs: failures become visible, repaired and traced, which is
    what mining turns into training data."""
    max_repairs: int = Field(1, ge=0)
    """Repairs per answer after a schema failure."""
    max_new_tokens: int = Field(128, ge=1)
    """Generation limit per model call."""
    batch_size: int = Field(8, ge=1)
    """Prompts run concurrently (batched by the local engine)."""


class DataStage(_Strict):
    """Stage 3: mined records merged with reference data, validated (blocking)."""

    sft_sources: list[dict[str, Any]] = Field(min_length=1)
    """Reference SFT sources, as ``tuneloop data mix`` sources (path, weight or count...)."""
    preference_files: list[str] = Field(default_factory=list)
    """Reference PreferencePair JSONL merged with the mined pairs for DPO."""
    eval_sets: list[str] = Field(default_factory=lambda: ["data/eval/**/*.jsonl"])
    """Held-out eval files that mined and mixed records must not overlap."""
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    """Share of the SFT mix held out for validation."""


class RecipeStage(_Strict):
    """A training stage: a recipe config file and overrides of its keys."""

    config: str
    """The recipe's YAML config (configs/sft/..., configs/dpo/..., configs/grpo/...)."""
    set: dict[str, Any] = Field(default_factory=dict)
    """Keys of that config to override (as ``--set`` would)."""


class LoopConfig(_Strict):
    """One turn of the loop, from baseline scorecard to gate verdict."""

    name: str = Field(min_length=1, pattern=r"^[\w.-]+$")
    """Loop name; its folder is ``output_dir/name`` (default: the config file's stem)."""
    model: str = "smollm2-135m-instruct"
    """The current model: embedded name, local folder or hub id."""
    output_dir: Path = Path("loops")
    """Parent folder of loop folders."""
    seed: int = 42
    """Seed of sampling, mixing and training."""
    scorecard: str = "configs/eval/loop.yaml"
    """Scorecard run on the baseline and on the candidate."""
    eval_limit: int | None = Field(None, ge=1)
    """Samples per scorecard task (overrides the scorecard's limits; None keeps them)."""
    gate: str = "configs/eval/gate.yaml"
    """Release-gate policy applied to candidate vs baseline."""
    assistant: AssistantStage
    data: DataStage
    sft: RecipeStage
    """SFT (LoRA) on the mix; the run the later stages build on."""
    dpo: RecipeStage | None = None
    """DPO on mined + reference pairs, starting from the SFT adapter (None skips it)."""
    export_gguf: bool = False
    """Also export the candidate as a GGUF file (llama.cpp's converter)."""


def _recipe_key(item: str) -> str:
    """``sft.max_steps=5`` means the SFT recipe's key: ``sft.set.max_steps=5``."""
    key, sep, value = item.partition("=")
    head, dot, rest = key.strip().partition(".")
    if head in ("sft", "dpo") and dot and rest.split(".")[0] not in ("config", "set"):
        return f"{head}.set.{rest}{sep}{value}"
    return item


def load_loop_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> LoopConfig:
    """Read, override (dotted keys for blocks), validate. Errors name the file and the field."""
    from tuneloop.train.config import ConfigError, load_config

    try:
        return load_config(path, LoopConfig, [_recipe_key(o) for o in overrides])
    except ConfigError as exc:
        raise LoopConfigError(str(exc)) from None
