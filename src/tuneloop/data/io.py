"""JSONL in and out: every error names file, line and field; writes are atomic."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tuneloop.data.records import RECORD_TYPES, record_kind


class DataError(ValueError):
    """Bad input data. ``str()`` reads ``file:line: field: message``."""

    def __init__(self, file: str | Path, line: int | None, message: str, field: str | None = None):
        self.file, self.line, self.field, self.message = str(file), line, field, message
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: {field + ': ' if field else ''}{message}")


@dataclass
class Row:
    """One JSON object read from a file, with where it came from."""

    file: str
    line: int
    data: dict[str, Any]


def iter_rows(path: str | Path) -> Iterator[Row | DataError]:
    """Each non-blank line as a :class:`Row`, or the :class:`DataError` it raised (bad
    UTF-8, bad JSON, not an object), so lenient readers can go on past a bad line.

    Raises :class:`DataError` only when the file itself cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "no such file")
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield DataError(path, line_no, f"not valid UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield DataError(path, line_no, f"invalid JSON: {exc.msg} (column {exc.colno})")
                continue
            except RecursionError:
                yield DataError(path, line_no, "invalid JSON: nested too deeply")
                continue
            if not isinstance(obj, dict):
                yield DataError(path, line_no, f"expected a JSON object, got {type(obj).__name__}")
                continue
            yield Row(str(path), line_no, obj)


def read_jsonl(path: str | Path) -> Iterator[Row]:
    """Yield each non-blank line of a JSONL file as a dict.

    Raises :class:`DataError` on unreadable files, bad UTF-8 or bad JSON, naming the line.
    """
    for row in iter_rows(path):
        if isinstance(row, DataError):
            raise row
        yield row


def _field_path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "<record>"


def parse_record(row: Row, kind: str | None = None):
    """The canonical record for ``row`` (kind detected from keys unless given)."""
    kind = kind or record_kind(row.data)
    if kind is None:
        raise DataError(
            row.file, row.line,
            f"not a known record (keys: {', '.join(sorted(row.data)) or 'none'}); expected "
            "'messages', 'prompt'+'chosen'+'rejected', 'prompt'+'completion'+'label' or 'id'+'input'",
        )  # fmt: skip
    try:
        return RECORD_TYPES[kind].model_validate(row.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise DataError(row.file, row.line, first["msg"] + more, _field_path(first["loc"])) from None


def read_records(path: str | Path, kind: str | None = None) -> Iterator[tuple[Row, Any]]:
    """Yield ``(row, record)`` for each line; the first bad line raises :class:`DataError`."""
    for row in read_jsonl(path):
        yield row, parse_record(row, kind)


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are ordinary files
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: str | Path, records: Iterable[Any]) -> int:
    """Write records (pydantic records or dicts) as JSONL, atomically. Returns the count."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for rec in records:
            obj = rec.to_json_dict() if hasattr(rec, "to_json_dict") else rec
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
            n += 1
    return n
