"""``schema``: every line is UTF-8 JSON holding a canonical record.

Unlike :func:`tuneloop.data.io.read_jsonl`, which stops at the first bad line (right
for loading data to train on), validation keeps going and reports every bad line,
so one run lists everything to fix.
"""

from __future__ import annotations

from pathlib import Path

from tuneloop.data.checks.item import Context, Item
from tuneloop.data.findings import CheckInfo
from tuneloop.data.io import DataError, iter_rows, parse_record
from tuneloop.data.records import record_kind

SCHEMA = CheckInfo(
    "schema", "error",
    "Each non-blank line is valid UTF-8 JSON holding a known record (conversation, preference, labeled, eval).",
)  # fmt: skip


def read_items(path: str | Path, ctx: Context) -> tuple[list[Item], int]:
    """Records of ``path`` that parse; every other line becomes a ``schema`` finding.

    Returns ``(items, lines)`` where ``lines`` counts the non-blank lines read.
    """
    items: list[Item] = []
    lines = 0
    for row in iter_rows(path):
        lines += 1
        if isinstance(row, DataError):
            ctx.add_at(SCHEMA, row.file, row.line, row.message, row.field)
            continue
        try:
            record = parse_record(row)
        except DataError as exc:
            ctx.add_at(SCHEMA, exc.file, exc.line, exc.message, exc.field)
            continue
        items.append(Item(row.file, row.line, record_kind(row.data) or "", record))
    return items, lines
