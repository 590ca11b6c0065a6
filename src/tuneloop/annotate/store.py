"""The annotation store: comparison items and human judgements in one SQLite file (WAL).

Verdicts are always stored in the item's canonical a/b order, never the side an
annotator saw, so blind randomization never leaks into the data.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from tuneloop.annotate.agreement import Agreement, agreement, majority
from tuneloop.data.io import DataError, iter_rows, write_jsonl
from tuneloop.data.records import Message, PreferencePair

Verdict = Literal["a", "b", "tie", "skip"]
VERDICTS = ("a", "b", "tie", "skip")
MAX_NOTE = 10_000
"""Longest note (characters) a judgement may carry."""
SOURCE = "tuneloop-annotate"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, prompt TEXT NOT NULL, response_a TEXT NOT NULL,
    response_b TEXT NOT NULL, source TEXT NOT NULL, priority REAL NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS judgements (
    id INTEGER PRIMARY KEY, item_id TEXT NOT NULL REFERENCES items(id), annotator TEXT NOT NULL,
    verdict TEXT NOT NULL, shown_left TEXT NOT NULL, tags TEXT NOT NULL, note TEXT NOT NULL,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS judgements_by_annotator ON judgements (annotator, item_id);
CREATE INDEX IF NOT EXISTS items_by_order ON items (kind, priority DESC, created);
"""


class AnnotationError(ValueError):
    """A judgement or item the store refuses (unknown item, bad verdict...)."""


class Item(BaseModel):
    """One thing to annotate: a prompt and two responses (``queue``: the failed run's outputs)."""

    id: str
    kind: Literal["pair", "queue"]
    prompt: list[dict[str, Any]]
    response_a: list[dict[str, Any]]
    response_b: list[dict[str, Any]]
    source: dict[str, Any] = Field(default_factory=dict)
    """Provenance: ``trace_ids``, ``models``, ``reasons`` (and what the producer adds)."""
    priority: float = 0.0
    created: float = 0.0


class Judgement(BaseModel):
    item_id: str
    annotator: str
    verdict: Verdict
    """In the item's canonical a/b, whatever side it was shown on."""
    shown_left: Literal["a", "b"]
    tags: list[str] = Field(default_factory=list)
    note: str = ""
    created: float = 0.0


class ImportReport(BaseModel):
    added: int = 0
    existing: int = 0
    """Rows whose item was already in the store (re-imports are idempotent)."""
    errors: list[str] = Field(default_factory=list)
    """One ``file:line: message`` per bad row; the good rows are imported anyway."""


class ExportReport(BaseModel):
    path: str
    written: int = 0
    """Preference pairs written (items with a clear a-or-b majority)."""
    judged_items: int = 0
    ties: int = 0
    skipped: int = 0
    """Items only ever skipped."""
    splits: int = 0
    """Items dropped because annotators split exactly."""
    agreement: Agreement = Field(default_factory=Agreement)


def item_id(kind: str, *parts: Any) -> str:
    """Stable id from content, so adding the same item twice is a no-op."""
    blob = json.dumps([kind, *parts], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def as_messages(value: Any, role: str, what: str) -> list[dict[str, Any]]:
    """A string (one ``role`` turn) or a list of messages, checked, as plain dicts."""
    if isinstance(value, str):
        value = [{"role": role, "content": value}]
    if not isinstance(value, list) or not value:
        raise ValueError(f"{what}: expected a string or a non-empty list of messages")
    try:
        messages = [Message.model_validate(m).to_json_dict() for m in value]
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{what}: {first['msg']}") from None
    if role == "assistant" and any(m["role"] not in ("assistant", "tool") for m in messages):
        raise ValueError(f"{what}: a response holds only assistant (and tool) messages")
    return messages


class AnnotationStore:
    """Items to compare and the judgements on them. Safe to share between threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)
            self._conn.commit()

    def close(self) -> None:
        self._conn.close()

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _write(self, sql: str, params: tuple) -> int:
        with self._lock, self._conn:
            return self._conn.execute(sql, params).rowcount

    # ------------------------------------------------------------------ items

    def _add(self, kind: str, prompt: list, a: list, b: list, source: dict, priority: float,
             key: tuple) -> tuple[str, bool]:  # fmt: skip
        iid = item_id(kind, *key)
        added = self._write(
            "INSERT OR IGNORE INTO items VALUES (?,?,?,?,?,?,?,?)",
            (iid, kind, json.dumps(prompt), json.dumps(a), json.dumps(b), json.dumps(source),
             float(priority), time.time()),
        )  # fmt: skip
        return iid, bool(added)

    def add_pair(self, prompt: Any, response_a: Any, response_b: Any, *,
                 source: dict | None = None, priority: float = 0.0) -> str:  # fmt: skip
        """Add a comparison item; returns its id (the same id, and no new row, if present)."""
        prompt = as_messages(prompt, "user", "prompt")
        a = as_messages(response_a, "assistant", "response a")
        b = as_messages(response_b, "assistant", "response b")
        return self._add("pair", prompt, a, b, source or {}, priority, (prompt, a, b))[0]

    def import_pairs_jsonl(self, path: str | Path) -> ImportReport:
        """Import ``{"prompt": [...], "responses": [a, b]}`` rows (a response: a string or a
        list of assistant messages). Bad rows are reported ``file:line``, the rest imported."""
        report = ImportReport()
        for line_no, row in _rows(path, report):
            try:
                responses = row.get("responses")
                if not isinstance(responses, list) or len(responses) != 2:
                    raise ValueError("responses: expected a list of exactly two responses")
                prompt = as_messages(row.get("prompt"), "user", "prompt")
                a = as_messages(responses[0], "assistant", "responses.0")
                b = as_messages(responses[1], "assistant", "responses.1")
                if a == b:
                    raise ValueError("responses: the two responses are identical")
            except ValueError as exc:
                report.errors.append(str(DataError(path, line_no, str(exc))))
                continue
            source = {"file": str(path), "line": line_no, **(row.get("source") or {})}
            _, added = self._add("pair", prompt, a, b, source, float(row.get("priority") or 0),
                                 (prompt, a, b))  # fmt: skip
            report.added += added
            report.existing += not added
        return report

    def import_queue(self, path: str | Path) -> ImportReport:
        """Import ``tuneloop mine``'s ``annotation_queue.jsonl`` as ``queue`` items."""
        report = ImportReport()
        for line_no, row in _rows(path, report):
            try:
                trace_id = row.get("trace_id")
                if not isinstance(trace_id, str) or not trace_id:
                    raise ValueError("trace_id: missing")
                prompt = as_messages(row.get("prompt"), "user", "prompt")
                outputs = [o for o in row.get("outputs") or [] if isinstance(o, str)]
                a = [{"role": "assistant", "content": o} for o in outputs]
            except ValueError as exc:
                report.errors.append(str(DataError(path, line_no, str(exc))))
                continue
            source = {"trace_ids": [trace_id], "models": [row.get("model")],
                      "reasons": list(row.get("reasons") or []),
                      "errors": list(row.get("errors") or []), "answer": row.get("answer")}  # fmt: skip
            _, added = self._add("queue", prompt, a, [], source, float(len(source["reasons"])),
                                 (trace_id,))  # fmt: skip
            report.added += added
            report.existing += not added
        return report

    def get_item(self, iid: str) -> Item | None:
        rows = self._query("SELECT * FROM items WHERE id = ?", (iid,))
        return _item(rows[0]) if rows else None

    def next_item(self, annotator: str, kind: str = "pair") -> Item | None:
        """The highest-priority (then oldest) item of ``kind`` this annotator has not judged."""
        rows = self._query(
            "SELECT * FROM items WHERE kind = ? AND id NOT IN"
            " (SELECT item_id FROM judgements WHERE annotator = ?)"
            " ORDER BY priority DESC, created, id LIMIT 1",
            (kind, annotator),
        )
        return _item(rows[0]) if rows else None

    def has_judged(self, iid: str, annotator: str) -> bool:
        return bool(self._query("SELECT 1 FROM judgements WHERE item_id = ? AND annotator = ?",
                                (iid, annotator)))  # fmt: skip

    def progress(self, annotator: str, kind: str = "pair") -> tuple[int, int]:
        """``(items of kind judged by annotator, items of kind)``."""
        (total,), = self._query("SELECT COUNT(*) FROM items WHERE kind = ?", (kind,))  # fmt: skip
        (done,), = self._query(
            "SELECT COUNT(DISTINCT j.item_id) FROM judgements j JOIN items i ON i.id = j.item_id"
            " WHERE j.annotator = ? AND i.kind = ?", (annotator, kind))  # fmt: skip
        return done, total

    # ------------------------------------------------------------- judgements

    def record(self, item_id: str, annotator: str, verdict: str, shown_left: str,
               tags: list[str] | tuple = (), note: str = "") -> Judgement:  # fmt: skip
        """Store one judgement; ``verdict`` is canonical a/b/tie/skip."""
        if self.get_item(item_id) is None:
            raise AnnotationError(f"no item {item_id!r}")
        if not annotator or not annotator.strip():
            raise AnnotationError("annotator: missing")
        if verdict not in VERDICTS:
            raise AnnotationError(f"verdict {verdict!r}: expected one of {', '.join(VERDICTS)}")
        if shown_left not in ("a", "b"):
            raise AnnotationError(f"shown_left {shown_left!r}: expected 'a' or 'b'")
        if len(note or "") > MAX_NOTE:
            raise AnnotationError(f"note: longer than {MAX_NOTE} characters")
        j = Judgement(item_id=item_id, annotator=annotator, verdict=verdict,
                      shown_left=shown_left, tags=list(tags), note=note or "", created=time.time())  # fmt: skip
        self._write(
            "INSERT INTO judgements (item_id, annotator, verdict, shown_left, tags, note, created)"
            " VALUES (?,?,?,?,?,?,?)",
            (j.item_id, j.annotator, j.verdict, j.shown_left, json.dumps(j.tags), j.note, j.created),
        )  # fmt: skip
        return j

    def judgements(self, item_id: str | None = None) -> list[Judgement]:
        """All judgements (of one item), oldest first."""
        sql = "SELECT item_id, annotator, verdict, shown_left, tags, note, created FROM judgements"
        rows = self._query(sql + (" WHERE item_id = ?" if item_id else "") + " ORDER BY id",
                           (item_id,) if item_id else ())  # fmt: skip
        return [Judgement(item_id=r[0], annotator=r[1], verdict=r[2], shown_left=r[3],
                          tags=json.loads(r[4]), note=r[5], created=r[6]) for r in rows]  # fmt: skip

    def _latest_verdicts(self) -> dict[str, dict[str, str]]:
        """``{item_id: {annotator: verdict}}`` for pair items (an annotator's last word counts)."""
        rows = self._query("SELECT j.item_id, j.annotator, j.verdict FROM judgements j JOIN items"
                           " i ON i.id = j.item_id WHERE i.kind = 'pair' ORDER BY j.id")  # fmt: skip
        out: dict[str, dict[str, str]] = defaultdict(dict)
        for iid, who, verdict in rows:
            out[iid][who] = verdict
        return dict(out)

    def agreement(self) -> Agreement:
        """Raw agreement and Cohen's kappa over items judged by two or more annotators."""
        return agreement(self._latest_verdicts())

    def human_verdicts(self) -> dict[str, str]:
        """``{item_id: "a" | "b" | "tie"}``: the majority verdict of each judged pair item
        (only-skipped items and exact splits left out)."""
        out = {}
        for iid, by_annotator in self._latest_verdicts().items():
            winner = majority(list(by_annotator.values()))
            if winner is not None:
                out[iid] = winner
        return out

    def export_pairs(self, path: str | Path) -> ExportReport:
        """Write the majority verdicts as PreferencePair JSONL (atomically): chosen = winner.

        Ties and only-skipped items are left out, and so are exact splits.
        """
        verdicts = self._latest_verdicts()
        report = ExportReport(path=str(path), judged_items=len(verdicts),
                              agreement=agreement(verdicts))  # fmt: skip
        records = []
        for iid, by_annotator in sorted(verdicts.items()):
            votes = list(by_annotator.values())
            winner = majority(votes)
            if winner is None:
                if any(v != "skip" for v in votes):
                    report.splits += 1
                else:
                    report.skipped += 1
                continue
            if winner == "tie":
                report.ties += 1
                continue
            item = self.get_item(iid)
            chosen, rejected = (
                (item.response_a, item.response_b) if winner == "a" else (item.response_b, item.response_a)
            )  # fmt: skip
            meta = {"source": SOURCE, "item_id": iid, "annotators": sorted(by_annotator),
                    "votes": dict(sorted(by_annotator.items())), **_provenance(item.source)}  # fmt: skip
            records.append(PreferencePair.model_validate(
                {"prompt": item.prompt, "chosen": chosen, "rejected": rejected, "metadata": meta}
            ))  # fmt: skip
        report.written = write_jsonl(path, records)
        return report


def _provenance(source: dict) -> dict:
    return {k: source[k] for k in ("trace_ids", "models", "reasons") if source.get(k)}


def _item(row: tuple) -> Item:
    return Item(id=row[0], kind=row[1], prompt=json.loads(row[2]), response_a=json.loads(row[3]),
                response_b=json.loads(row[4]), source=json.loads(row[5]), priority=row[6],
                created=row[7])  # fmt: skip


def _rows(path: str | Path, report: ImportReport):
    """``(line, dict)`` per good JSON-object line; bad lines go to ``report.errors``."""
    for row in iter_rows(path):
        if isinstance(row, DataError):
            report.errors.append(str(row))
        else:
            yield row.line, row.data
