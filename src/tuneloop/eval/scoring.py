"""The scorer contract: one function type for eval metrics and (later) GRPO rewards.

A scorer takes the sample and what the solver produced and returns a typed
:class:`Score`::

    @scorer("exact_match")
    def exact_match(sample: EvalSample, completion: Completion) -> Score:
        return Score.binary(completion.text.strip() == sample.target)

Scorers register by name; tasks (YAML, data only) refer to them by that name.
"""

from __future__ import annotations

import json
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


_JSON_TEXT_COLUMNS = ("schema", "tools", "metadata")
_SAMPLE_COLUMNS = ("id", "tools", "schema", "target", "reference", "metadata")


def as_reward_function(name_or_scorer: str | Scorer, *, weight: float = 1.0) -> Callable:
    """Adapt a scorer to TRL's reward-function signature ``(prompts, completions, **kw)``.

    Each dataset row's columns (``schema``, ``target``, ``tools``, ``metadata``, ``id``)
    arrive as per-sample lists in ``kwargs`` and rebuild the :class:`EvalSample`; a
    conversational completion (a list of messages) is graded on its last message's
    content. A scorer's ``ValueError`` scores 0.0 and is counted in ``fn.errors``.
    """
    fn_scorer = get_scorer(name_or_scorer) if isinstance(name_or_scorer, str) else name_or_scorer
    name = getattr(fn_scorer, "scorer_name", getattr(fn_scorer, "__name__", "scorer"))

    def reward(prompts: list, completions: list, **kwargs: Any) -> list[float]:
        values = []
        for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
            sample = _sample_from_row(i, prompt, kwargs)
            try:
                values.append(weight * fn_scorer(sample, _completion(completion)).value)
            except ValueError:
                reward.errors += 1  # type: ignore[attr-defined]
                values.append(0.0)
        return values

    reward.errors = 0  # type: ignore[attr-defined]
    reward.__name__ = name  # TRL names the logged metric after the function
    return reward


def _completion(completion: str | list[dict]) -> Completion:
    if isinstance(completion, str):
        return Completion(text=completion, messages=[{"role": "assistant", "content": completion}])
    text = completion[-1].get("content") or "" if completion else ""
    return Completion(text=text, messages=list(completion))


def _sample_from_row(i: int, prompt: str | list[dict], columns: dict[str, Any]) -> EvalSample:
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    row: dict[str, Any] = {"id": f"sample-{i}", "input": messages}
    for key in _SAMPLE_COLUMNS:
        values = columns.get(key)
        if values is not None and values[i] is not None:
            value = values[i]
            # datasets turns dicts with differing keys into None-filled structs, so a
            # recipe stores ``schema``/``target``/``tools`` as JSON text; decode it here.
            if key in _JSON_TEXT_COLUMNS and isinstance(value, str) and value[:1] in "{[":
                value = json.loads(value)
            row[key] = value
    return EvalSample.model_validate(row)
