"""What every check sees: one parsed record with its place, and where findings go.

A record is checked as one or more *sequences*, i.e. conversations a model would
train on: a :class:`~tuneloop.data.records.Conversation` is one, a preference pair
is two (prompt+chosen, prompt+rejected), a KTO example is prompt+completion and an
eval sample is its input. Checks that walk turns walk sequences, and name turns by
the record's own field path (``prompt.1``, ``chosen.0``), so a finding points at the
line and the field a person has to fix.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from tuneloop.data.findings import CheckInfo, Report, Severity
from tuneloop.data.records import Conversation, EvalSample, LabeledExample, Message, PreferencePair


@dataclass(frozen=True)
class Sequence:
    """Messages of one trainable conversation, and the field each message came from."""

    name: str
    """``messages``, ``chosen``, ``rejected``, ``completion`` or ``input``."""
    messages: list[Message]
    fields: list[str]
    """Field path of each message, e.g. ``prompt.0`` or ``chosen.1``."""
    trained_from: int
    """Index of the first message whose assistant turns are trained (0 for conversations)."""


@dataclass
class Item:
    """A record that parsed, with its file, line and kind."""

    file: str
    line: int
    kind: str
    record: Conversation | PreferencePair | LabeledExample | EvalSample

    @property
    def tools(self):
        return self.record.tools

    @cached_property
    def sequences(self) -> list[Sequence]:
        """The conversations this record trains on (see the module docstring)."""
        rec = self.record
        if isinstance(rec, Conversation):
            return [_seq("messages", [], rec.messages)]
        if isinstance(rec, PreferencePair):
            return [
                _seq("chosen", rec.prompt, rec.chosen),
                _seq("rejected", rec.prompt, rec.rejected),
            ]
        if isinstance(rec, LabeledExample):
            return [_seq("completion", rec.prompt, rec.completion)]
        return [_seq("input", [], rec.input)]

    @cached_property
    def turns(self) -> list[tuple[str, Message]]:
        """Every message once with its field path (a pair's prompt is not seen twice)."""
        seen: dict[str, Message] = {}
        for seq in self.sequences:
            for f, m in zip(seq.fields, seq.messages, strict=True):
                seen.setdefault(f, m)
        return list(seen.items())


def _seq(name: str, prompt: list[Message], answer: list[Message]) -> Sequence:
    """``prompt`` (context) followed by ``answer``, the field named ``name``."""
    fields = [f"prompt.{i}" for i in range(len(prompt))] + [
        f"{name}.{i}" for i in range(len(answer))
    ]
    return Sequence(name, [*prompt, *answer], fields, len(prompt))


# ------------------------------------------------------------------------- texts

_WS = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Lower-case with whitespace runs collapsed: how texts are compared."""
    return _WS.sub(" ", text).strip().lower()


def message_text(m: Message) -> str:
    """Content of a turn plus its tool calls (as JSON), the text a model reads or writes."""
    parts = [m.content or ""]
    for call in m.tool_calls or []:
        args = call.function.arguments
        args = args if isinstance(args, str) else json.dumps(args, sort_keys=True)
        parts.append(f"{call.function.name}({args})")
    return "\n".join(p for p in parts if p)


def turns_text(messages: list[Message], skip_system: bool = False, roles: bool = True) -> str:
    """Turns as text, one per line (``role: text`` unless ``roles`` is False)."""
    return "\n".join(
        f"{m.role}: {message_text(m)}" if roles else message_text(m)
        for m in messages
        if not (skip_system and m.role == "system")
    )


def record_text(item: Item, skip_system: bool = False, roles: bool = True) -> str:
    """The full text of a record (every turn once, in field order)."""
    return turns_text([m for _, m in item.turns], skip_system, roles).strip()


def system_prompt(item: Item) -> str | None:
    """The record's system prompt (first turn), or None."""
    first = item.sequences[0].messages[0]
    return (first.content or "") if first.role == "system" else None


# ------------------------------------------------------------------------ context


@dataclass
class Context:
    """Where checks write findings, with the user's severity overrides applied."""

    report: Report
    severities: dict[str, Severity] = field(default_factory=dict)
    flagged: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    """Check ids that fired per (file, line): later checks skip records they would only
    restate (no rendering of a conversation whose turns are out of order)."""

    def add(self, check: CheckInfo, item: Item, message: str, field: str | None = None) -> None:
        """A finding on one record."""
        self.add_at(check, item.file, item.line, message, field)

    def add_at(self, check: CheckInfo, file: str, line: int | None, message: str,
               field: str | None = None) -> None:  # fmt: skip
        """A finding on a file (``line=None`` for set-level findings) or one of its lines."""
        self.report.add(check, file, line, message, field, self.severities)
        if line is not None:
            self.flagged.setdefault((file, line), set()).add(check.id)

    def fired(self, item: Item, *check_ids: str) -> bool:
        return bool(self.flagged.get((item.file, item.line), set()) & set(check_ids))


def as_json_text(value: Any) -> str:
    """A target or other JSON value as text (strings stay as they are)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(as_json_text(v) for v in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
