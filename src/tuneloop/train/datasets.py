"""Training data through the data layer: blocking validation, then one rendering pass.

Trainers receive ready ``input_ids`` and ``labels`` (assistant-only loss, built by
:func:`tuneloop.models.render_for_training`); they never re-apply a chat template.
"""

from __future__ import annotations

import functools
import glob
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneloop.data import Conversation, read_records, to_chat_messages, tools_as_dicts
from tuneloop.models.chat_template import render_for_training


class DataValidationError(ValueError):
    """Training data failed a blocking check; nothing was trained."""


def expand_files(patterns: list[str], what: str) -> list[Path]:
    """Files matched by ``patterns`` (globs allowed), in order; a pattern matching nothing is an error."""
    files: list[Path] = []
    for pattern in patterns:
        matched = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        if not matched or not all(Path(m).is_file() for m in matched):
            missing = [m for m in matched if not Path(m).is_file()] or [pattern]
            raise FileNotFoundError(f"{what}: no such file: {', '.join(missing)}")
        files.extend(Path(m) for m in matched if Path(m) not in files)
    return files


def renderer(tokenizer, max_length: int | None):
    """``render(messages, tools, max_length)`` bound to ``tokenizer``: what the data layer takes."""

    def render(messages, tools=None, max_len=max_length):
        return render_for_training(tokenizer, messages, tools, max_length=max_len)

    return render


def check_data(files: list[Path], tokenizer, max_length: int, eval_sets: list[Path]) -> Any:
    """Run the data layer's blocking checks; raise :class:`DataValidationError` on any error."""
    from tuneloop.data.validate import ValidateConfig, validate_files

    report = validate_files(
        files, ValidateConfig(render=renderer(tokenizer, max_length), max_len=max_length, eval_sets=eval_sets)
    )
    if not report.ok:
        failing = [r for r in report.summary() if r["status"] == "FAIL"]
        lines = [f"  {r['check']}: {r['count']} x, e.g. {', '.join(r['locations'][:3])}" for r in failing]
        raise DataValidationError(
            "training data failed blocking checks (run `tuneloop data validate` for the full report):\n"
            + "\n".join(lines)
        )
    return report


@dataclass
class RenderedSplit:
    rows: list[dict[str, Any]] = field(default_factory=list)
    truncated: int = 0

    @property
    def tokens(self) -> int:
        return sum(len(r["input_ids"]) for r in self.rows)

    @property
    def trainable_tokens(self) -> int:
        return sum(sum(1 for x in r["labels"] if x != -100) for r in self.rows)

    def summary(self) -> dict[str, Any]:
        n = len(self.rows)
        return {"records": n, "tokens": self.tokens, "trainable_tokens": self.trainable_tokens,
                "mean_tokens": round(self.tokens / n, 1) if n else 0, "truncated": self.truncated}  # fmt: skip


def render_files(files: list[Path], tokenizer, max_length: int) -> RenderedSplit:
    """Render every Conversation in ``files`` into input_ids/labels, tagged with file:line."""
    split = RenderedSplit()
    render = functools.partial(render_for_training, tokenizer, max_length=max_length)
    for path in files:
        for row, record in read_records(path, "conversation"):
            assert isinstance(record, Conversation)
            out = render(to_chat_messages(record.messages), tools_as_dicts(record.tools))
            split.truncated += out.truncated
            split.rows.append({"input_ids": out.input_ids, "labels": out.labels,
                               "record": f"{row.file}:{row.line}"})  # fmt: skip
    return split


def split_rows(split: RenderedSplit, fraction: float, seed: int) -> tuple[RenderedSplit, RenderedSplit]:
    """Seeded hold-out of ``fraction`` of the rows (at least one when fraction > 0)."""
    rows = list(split.rows)
    random.Random(seed).shuffle(rows)
    n_eval = max(1, round(len(rows) * fraction)) if fraction > 0 and len(rows) > 1 else 0
    return RenderedSplit(rows[n_eval:]), RenderedSplit(rows[:n_eval])


def to_dataset(split: RenderedSplit):
    """A ``datasets.Dataset`` with input_ids, labels and the record id of each row."""
    from datasets import Dataset

    return Dataset.from_dict({
        "input_ids": [r["input_ids"] for r in split.rows],
        "labels": [r["labels"] for r in split.rows],
        "record": [r["record"] for r in split.rows],
    })  # fmt: skip
