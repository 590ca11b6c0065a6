"""``contamination``: training records that share n-grams with an eval set.

Each ``--eval-sets`` file is indexed by its inputs and targets (for an
:class:`~tuneloop.data.records.EvalSample`; the full text for other records, every
string value for lines that are no record at all). A training record sharing even
one 13-gram with a set is reported once per set: the usual decontamination rule
(GPT-3, Llama 2). System prompts are left out on both sides, since a prompt shared
by design would contaminate everything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuneloop.data.checks.item import Context, Item, as_json_text, record_text, turns_text
from tuneloop.data.checks.schema import SCHEMA
from tuneloop.data.contamination import NgramIndex
from tuneloop.data.findings import CheckInfo
from tuneloop.data.io import DataError, iter_rows, parse_record
from tuneloop.data.records import EvalSample, record_kind

CONTAMINATION = CheckInfo(
    "contamination", "error", "No training record shares an n-gram with an eval set's inputs or targets."
)  # fmt: skip


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def eval_texts(path: str | Path, ctx: Context) -> list[str]:
    """Text of each line of an eval file (unreadable lines become ``schema`` findings)."""
    texts = []
    for row in iter_rows(path):
        if isinstance(row, DataError):
            ctx.add_at(SCHEMA, row.file, row.line, row.message, row.field)
            continue
        try:
            record = parse_record(row) if record_kind(row.data) else None
        except DataError:
            record = None
        if isinstance(record, EvalSample):
            target = as_json_text(record.target) if record.target is not None else ""
            texts.append(turns_text(record.input, skip_system=True, roles=False) + "\n" + target)
        elif record is not None:
            texts.append(
                record_text(Item(row.file, row.line, "", record), skip_system=True, roles=False)
            )
        else:
            texts.append("\n".join(_strings(row.data)))
    return texts


def check_contamination(
    items: list[Item], eval_sets: list[str | Path], ctx: Context, n: int
) -> dict[str, int]:
    """Report each record once per eval set it overlaps; return records found per set."""
    index = NgramIndex(n)
    found: dict[str, int] = {}
    for path in eval_sets:
        name = str(Path(path))
        found[name] = 0
        for text in eval_texts(path, ctx):
            index.add(name, text)
    for item in items:
        shared_by_set = index.overlaps(record_text(item, skip_system=True, roles=False))
        for name, shared in sorted(shared_by_set.items()):
            if shared > 0:
                found[name] += 1
                ctx.add(CONTAMINATION, item, f"shares {shared} {n}-gram(s) with eval set {name}")
    return found
