"""Redact personal data and secrets in a JSONL file of canonical records.

Every line must be a canonical record (it is validated, so a bad line stops the run
with its file:line). The output keeps each line's JSON structure as it was and only
replaces text, with :func:`tuneloop.data.pii.redact`, in:

- message ``content`` (every message list of the record: ``messages``, ``prompt``,
  ``chosen``, ``rejected``, ``completion``, ``input``);
- tool-call ``arguments``: every string value, recursively (or the raw string when
  a model produced arguments as one JSON string);
- tool specs: each function's ``description`` and every ``description`` in its
  parameters' JSON Schema;
- an eval sample's ``target`` (strings, recursively) and ``reference``, so that an
  answer still matches its redacted question.

Names, ids, roles and metadata are left alone. The output is written atomically: on
any error no output file is left behind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneloop.data.io import parse_record, read_jsonl, write_jsonl
from tuneloop.data.pii import PII_KINDS, redact
from tuneloop.data.records import record_kind

_MESSAGE_LISTS = ("messages", "prompt", "chosen", "rejected", "completion", "input")


@dataclass
class RedactResult:
    """What :func:`redact_file` did."""

    records: int = 0
    """Records written."""
    matches_by_kind: dict[str, int] = field(default_factory=dict)
    """Values replaced, per PII kind (only kinds that occurred)."""


class _Redactor:
    """Applies :func:`redact` to strings and tallies what it replaced."""

    def __init__(self, kinds: tuple[str, ...]):
        self.kinds = kinds
        self.counts: Counter[str] = Counter()

    def text(self, value: str) -> str:
        new, matches = redact(value, self.kinds)
        self.counts.update(m.kind for m in matches)
        return new

    def strings(self, value: Any) -> Any:
        """Every string inside ``value`` (dict values, list items) redacted; keys kept."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.strings(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.strings(v) for v in value]
        return value

    def descriptions(self, schema: Any) -> Any:
        """Every ``description`` string in a JSON Schema redacted, at any depth."""
        if isinstance(schema, list):
            return [self.descriptions(v) for v in schema]
        if not isinstance(schema, dict):
            return schema
        return {
            k: self.text(v) if k == "description" and isinstance(v, str) else self.descriptions(v)
            for k, v in schema.items()
        }

    def message(self, msg: dict[str, Any]) -> dict[str, Any]:
        msg = dict(msg)
        if isinstance(msg.get("content"), str):
            msg["content"] = self.text(msg["content"])
        if msg.get("tool_calls"):
            msg["tool_calls"] = [self.tool_call(c) for c in msg["tool_calls"]]
        return msg

    def tool_call(self, call: dict[str, Any]) -> dict[str, Any]:
        function = dict(call["function"])
        if "arguments" in function:
            function["arguments"] = self.strings(function["arguments"])
        return {**call, "function": function}

    def tool_spec(self, spec: dict[str, Any]) -> dict[str, Any]:
        function = dict(spec["function"])
        if isinstance(function.get("description"), str):
            function["description"] = self.text(function["description"])
        if "parameters" in function:
            function["parameters"] = self.descriptions(function["parameters"])
        return {**spec, "function": function}

    def record(self, data: dict[str, Any], kind: str) -> dict[str, Any]:
        data = dict(data)
        for key in _MESSAGE_LISTS:
            if isinstance(data.get(key), list):
                data[key] = [self.message(m) for m in data[key]]
        if data.get("tools"):
            data["tools"] = [self.tool_spec(t) for t in data["tools"]]
        if kind == "eval":
            for key in ("target", "reference"):
                if data.get(key) is not None:
                    data[key] = self.strings(data[key])
        return data


def _redacted_rows(in_path: Path, redactor: _Redactor, result: RedactResult) -> Iterator[dict]:
    for row in read_jsonl(in_path):
        parse_record(row)  # validates; raises DataError naming file:line:field
        result.records += 1
        yield redactor.record(row.data, record_kind(row.data) or "")


def redact_file(
    in_path: str | Path, out_path: str | Path, kinds: list[str] | tuple[str, ...] | None = None
) -> RedactResult:
    """Copy a canonical-record JSONL file with PII of ``kinds`` (default: all) redacted.

    Raises :class:`~tuneloop.data.io.DataError` (file:line) on a line that is not valid
    JSON or not a valid record, and ``ValueError`` on an unknown kind; in both cases
    nothing is written.
    """
    kinds = tuple(PII_KINDS if kinds is None else kinds)
    unknown = sorted(set(kinds) - set(PII_KINDS))
    if unknown:
        raise ValueError(f"unknown PII kind(s) {', '.join(unknown)}; known: {', '.join(PII_KINDS)}")
    redactor = _Redactor(kinds)
    result = RedactResult()
    write_jsonl(out_path, _redacted_rows(Path(in_path), redactor, result))
    result.matches_by_kind = dict(sorted(redactor.counts.items()))
    return result
