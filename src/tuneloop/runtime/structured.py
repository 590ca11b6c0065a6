"""Structured outputs: a JSON Schema (or pydantic model) the answer must satisfy.

Two lines of defence, both recorded as events:

1. constrained decoding, where the backend can (``supports_json_schema``): the
   local engine masks tokens with a grammar, so the output is valid by construction
   (unless ``max_new_tokens`` cuts it off);
2. validation with a bounded repair loop: the validation errors go back to the
   model, at most ``max_repairs`` times, within a total token and time budget. When
   it still fails, :class:`StructuredOutputError` carries every attempt and the usage.

There is no silent fallback: an answer that does not validate is never returned as
if it did.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tuneloop.runtime.events import RepairAttempt, ValidationResult, stable_hash
from tuneloop.runtime.toolcalls import strip_fence
from tuneloop.runtime.types import GenerationConfig, GenerationOutput, Message


class SchemaFileError(ValueError):
    """An output schema that cannot be used (unreadable file, invalid JSON Schema)."""


class OutputSchema:
    """A JSON Schema, optionally backed by a pydantic model that parses the value."""

    def __init__(self, schema: dict | type[BaseModel], name: str | None = None):
        self.model: type[BaseModel] | None = None
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            self.model = schema
            schema = schema.model_json_schema()
            name = name or self.model.__name__
        if not isinstance(schema, dict):
            raise SchemaFileError(
                f"an output schema must be a JSON object, got {type(schema).__name__}"
            )
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "(root)"
            raise SchemaFileError(f"invalid JSON Schema at {where}: {exc.message}") from None
        self.json_schema: dict = schema
        self.name = name or str(schema.get("title") or "output")
        self._validator = Draft202012Validator(schema)

    @classmethod
    def load(cls, path: str | Path) -> OutputSchema:
        """Read a JSON Schema file; errors name the file (and line, for bad JSON)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SchemaFileError(
                f"{path}: cannot read the schema: {exc.strerror or exc}"
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaFileError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        try:
            return cls(data, name=path.stem)
        except SchemaFileError as exc:
            raise SchemaFileError(f"{path}: {exc}") from None

    @property
    def hash(self) -> str:
        return stable_hash(self.json_schema)

    def validate(self, text: str) -> tuple[Any, list[str]]:
        """``(value, [])`` when ``text`` is valid JSON for the schema, else ``(None, errors)``.

        A Markdown code fence around the JSON is tolerated; any other extra text is not.
        """
        body = strip_fence(text)
        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            return None, [f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]
        errors = [
            f"{_json_path(e.absolute_path)}: {e.message}"
            for e in sorted(self._validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        ]
        if errors:
            return None, errors
        if self.model is not None:
            try:
                return self.model.model_validate(value), []
            except ValidationError as exc:
                return None, [f"{_json_path(err['loc'])}: {err['msg']}" for err in exc.errors()]
        return value, []


def _json_path(parts) -> str:
    path = "$"
    for p in parts:
        path += f"[{p}]" if isinstance(p, int) else f".{p}"
    return path


class RepairBudget(BaseModel):
    """Bounds on the repair loop, across all attempts of one answer."""

    model_config = ConfigDict(extra="forbid")

    max_repairs: int = Field(2, ge=0)
    """Re-asks after the first answer fails validation."""
    max_total_tokens: int | None = Field(None, ge=1)
    """Prompt + completion tokens over every attempt (the first one included)."""
    max_time_s: float | None = Field(None, gt=0)
    """Wall time over every attempt."""


@dataclass
class Attempt:
    text: str
    errors: list[str]
    constrained: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: str = "stop"


@dataclass
class StructuredResult:
    value: Any
    """The parsed value (a pydantic instance when the schema is a model)."""
    text: str
    attempts: list[Attempt] = field(default_factory=list)


class StructuredOutputError(Exception):
    """The answer never validated within the repair budget; every attempt is kept."""

    def __init__(self, message: str, attempts: list[Attempt]):
        super().__init__(message)
        self.attempts = attempts

    @property
    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": sum(a.prompt_tokens for a in self.attempts),
            "completion_tokens": sum(a.completion_tokens for a in self.attempts),
        }


def repair_feedback(errors: list[str], schema: OutputSchema) -> str:
    """The message that asks the model to fix its answer."""
    listed = "\n".join(f"- {e}" for e in errors[:10])
    return (
        "Your answer is not valid for the required JSON schema:\n"
        f"{listed}\n"
        f"The schema is: {json.dumps(schema.json_schema, ensure_ascii=False)}\n"
        "Reply with only the corrected JSON, no other text."
    )


CallModel = Callable[[list[Message], GenerationConfig, str], GenerationOutput]
"""``(messages, config, purpose) -> output``: the caller's model call (it emits ModelCall)."""


def validate_and_repair(
    first: GenerationOutput,
    messages: list[Message],
    schema: OutputSchema,
    *,
    call_model: CallModel,
    config: GenerationConfig,
    budget: RepairBudget,
    constrain_repairs: bool,
    first_constrained: bool = False,
    emit: Callable[[Any], None] = lambda e: None,
    started: float | None = None,
) -> StructuredResult:
    """Validate ``first`` (the answer to ``messages``); re-ask within ``budget`` until valid.

    Raises :class:`StructuredOutputError` with all attempts when the budget runs out.
    """
    started = time.perf_counter() if started is None else started
    output, constrained = first, first_constrained
    attempts: list[Attempt] = []
    convo = list(messages)
    while True:
        value, errors = schema.validate(output.text)
        if output.finish_reason == "length" and errors:
            errors.append(f"the answer was cut off at max_new_tokens={config.max_new_tokens}")
        attempts.append(
            Attempt(output.text, errors, constrained, output.prompt_tokens,
                    output.completion_tokens, output.latency_s, output.finish_reason)
        )  # fmt: skip
        emit(ValidationResult(passed=not errors, errors=errors, attempt=len(attempts) - 1))
        if not errors:
            return StructuredResult(value=value, text=strip_fence(output.text), attempts=attempts)
        used_tokens = sum(a.prompt_tokens + a.completion_tokens for a in attempts)
        elapsed = time.perf_counter() - started
        repairs = len(attempts) - 1
        reason = None
        if repairs >= budget.max_repairs:
            reason = f"{budget.max_repairs} repair(s) allowed"
        elif budget.max_total_tokens is not None and used_tokens >= budget.max_total_tokens:
            reason = f"token budget spent ({used_tokens} of {budget.max_total_tokens})"
        elif budget.max_time_s is not None and elapsed >= budget.max_time_s:
            reason = f"time budget spent ({elapsed:.1f} s of {budget.max_time_s:g} s)"
        if reason:
            raise StructuredOutputError(
                f"the answer did not match the output schema after {len(attempts)} attempt(s) "
                f"({reason}); last errors: {'; '.join(errors[:3])}",
                attempts,
            )
        feedback = repair_feedback(errors, schema)
        emit(RepairAttempt(attempt=repairs + 1, feedback=feedback))
        convo = convo + [
            {"role": "assistant", "content": output.text},
            {"role": "user", "content": feedback},
        ]
        repair_config = config.model_copy(update={"tools": None})
        if budget.max_total_tokens is not None:
            # Leave the repair no more room than the budget has left (best effort:
            # the prompt's size is only known after the call).
            left = max(budget.max_total_tokens - used_tokens, 1)
            repair_config.max_new_tokens = min(repair_config.max_new_tokens, left)
        constrained = constrain_repairs
        if constrained:
            repair_config.json_schema = schema.json_schema
        output = call_model(convo, repair_config, "repair")
