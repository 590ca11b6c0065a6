"""The scorer contract: one function type for eval metrics and (later) GRPO rewards.

A scorer takes the sample and what the solver produced and returns a typed
:class:`Score`::

    @scorer("exact_match")
    def exact_match(sample: EvalSample, completion: Completion) -> Score:
        return Score.binary(completion.text.strip() == sample.target)

Scorers register by name; tasks (YAML, data only) refer to them by that name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from tuneloop.data.records import EvalSample


class Score(BaseModel):
    """One metric on one sample."""

    value: float
    """In [0, 1] for binary and rate metrics; anything for others."""
    passed: bool | None = None
    """For binary metrics: whether the sample passed."""
    explanation: str = ""
    """Why, in a sentence (shown in reports)."""
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def binary(cls, passed: bool, explanation: str = "", **metadata: Any) -> Score:
        return cls(value=1.0 if passed else 0.0, passed=passed, explanation=explanation,
                   metadata=metadata)  # fmt: skip


@dataclass
class Completion:
    """What a solver produced for one sample."""

    text: str
    """The final answer text ("" when the run failed)."""
    messages: list[dict] = field(default_factory=list)
    """The whole conversation, tool calls and tool results included."""
    tool_calls: list[dict] = field(default_factory=list)
    """The tool calls that were executed, in order: ``{"name", "arguments", "ok", "result"}``."""
    attempted_tool_calls: list[dict] = field(default_factory=list)
    """Every tool call the model asked for, executed or rejected: ``{"name", "arguments"}``."""
    error: str | None = None
    """Why the run failed, when it did."""
    metadata: dict[str, Any] = field(default_factory=dict)


Scorer = Callable[[EvalSample, Completion], Score]

_SCORERS: dict[str, Scorer] = {}


def scorer(name: str) -> Callable[[Scorer], Scorer]:
    """Register a scorer under ``name`` (unique)."""

    def register(fn: Scorer) -> Scorer:
        if name in _SCORERS and _SCORERS[name] is not fn:
            raise ValueError(f"scorer {name!r} is already registered")
        _SCORERS[name] = fn
        fn.scorer_name = name  # type: ignore[attr-defined]
        return fn

    return register


def get_scorer(name: str) -> Scorer:
    if name not in _SCORERS:
        known = ", ".join(sorted(_SCORERS)) or "none"
        raise KeyError(f"unknown scorer {name!r}; registered: {known}")
    return _SCORERS[name]


def registered_scorers() -> list[str]:
    return sorted(_SCORERS)
