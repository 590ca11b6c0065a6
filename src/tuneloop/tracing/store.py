"""Traces in SQLite: an OpenTelemetry span exporter that writes them, a store that reads them.

One file, WAL mode, so a chat session, a server and ``tuneloop traces list`` can use
it at once. Each export batch is one transaction (the :class:`~tuneloop.tracing.spans.TraceSink`
exports a whole run as one batch, so a killed writer never leaves half a trace).
The ``traces`` table holds a summary row per run, written from the root span's
attributes; ``feedback`` holds human ratings and corrections. Everything the reader
cannot parse (bad JSON, spans of other instrumentations) is skipped and reported in
:attr:`TraceStore.warnings`, never raised.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from pydantic import ValidationError

from tuneloop.data.io import atomic_path
from tuneloop.runtime.events import parse_event
from tuneloop.tracing.records import Feedback, SpanRecord, Trace, TraceNotFound, TraceSummary

SCHEMA_VERSION = 1
KNOWN_SPANS = ("invoke_agent", "chat", "execute_tool")
"""First word of the span names tuneloop writes; other spans are foreign and skipped."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL, span_id TEXT PRIMARY KEY, parent_id TEXT, name TEXT NOT NULL,
    start_ns INTEGER, end_ns INTEGER, status TEXT, attributes JSON, events JSON
);
CREATE INDEX IF NOT EXISTS spans_trace ON spans(trace_id);
CREATE TABLE IF NOT EXISTS traces (
    trace_id TEXT PRIMARY KEY, start_ns INTEGER, end_ns INTEGER, model TEXT, status TEXT,
    error_type TEXT, input_tokens INTEGER, output_tokens INTEGER, latency_s REAL,
    failed_validation INTEGER, tool_error INTEGER, first_user TEXT, steps INTEGER, tools JSON
);
CREATE INDEX IF NOT EXISTS traces_start ON traces(start_ns);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY, trace_id TEXT NOT NULL, rating TEXT, correction TEXT, note TEXT,
    tags JSON, annotator TEXT, created REAL
);
CREATE INDEX IF NOT EXISTS feedback_trace ON feedback(trace_id);
"""


def default_store_path() -> Path:
    """``$TUNELOOP_HOME/traces.db`` (``~/.cache/tuneloop/traces.db`` by default)."""
    import os

    home = Path(os.environ.get("TUNELOOP_HOME") or Path.home() / ".cache" / "tuneloop")
    return home / "traces.db"


class _Database:
    """A connection per thread to one SQLite file, plus a lock that serialises writes.

    Within a process the lock keeps writers from spinning on SQLite's busy handler;
    across processes ``busy_timeout`` does.
    """

    def __init__(self, path: str | Path, busy_timeout_ms: int = 30_000):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self.write_lock = threading.Lock()
        self._migrate()

    def connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self.write_lock:
                self._all.append(conn)
        return conn

    def _migrate(self) -> None:
        conn = self.connect()
        with self.write_lock:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path}: trace store schema v{version} is newer than this tuneloop "
                    f"(v{SCHEMA_VERSION}); upgrade tuneloop"
                )
            if version < SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

    def write(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Run ``(sql, params)`` pairs as one transaction."""
        conn = self.connect()
        with self.write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    conn.execute(sql, params)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self.write_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


# ----------------------------------------------------------------------- writing


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _span_row(span: ReadableSpan) -> tuple[str, list]:
    attributes = {k: _jsonable(v) for k, v in (span.attributes or {}).items()}
    events = [
        {"name": e.name, "time_ns": e.timestamp,
         "attributes": {k: _jsonable(v) for k, v in (e.attributes or {}).items()}}
        for e in span.events
    ]  # fmt: skip
    parent = span.parent.span_id if span.parent is not None else None
    row = [
        f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}",
        None if parent is None else f"{parent:016x}", span.name, span.start_time, span.end_time,
        span.status.status_code.name, json.dumps(attributes, ensure_ascii=False),
        json.dumps(events, ensure_ascii=False),
    ]  # fmt: skip
    return "INSERT OR REPLACE INTO spans VALUES (?,?,?,?,?,?,?,?,?)", row


def _summary_row(span: ReadableSpan) -> tuple[str, list]:
    a = span.attributes or {}
    row = [
        f"{span.context.trace_id:032x}", span.start_time, span.end_time,
        a.get("gen_ai.request.model"), a.get("tuneloop.status"), a.get("tuneloop.error_type"),
        a.get("gen_ai.usage.input_tokens", 0), a.get("gen_ai.usage.output_tokens", 0),
        a.get("tuneloop.latency_s", 0.0), int(bool(a.get("tuneloop.failed_validation"))),
        int(bool(a.get("tuneloop.tool_error"))), a.get("tuneloop.first_user"),
        a.get("tuneloop.steps", 0), json.dumps(list(a.get("tuneloop.tools_used", ()))),
    ]  # fmt: skip
    return "INSERT OR REPLACE INTO traces VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row


class SQLiteSpanExporter(SpanExporter):
    """Writes finished spans to a SQLite trace store; one transaction per batch.

    A root ``invoke_agent`` span also writes the trace's summary row. Thread-safe.
    """

    def __init__(self, path: str | Path):
        self._db = _Database(path)
        self.path = self._db.path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        statements = [_span_row(s) for s in spans]
        statements += [
            _summary_row(s) for s in spans
            if s.parent is None and (s.attributes or {}).get("gen_ai.operation.name") == "invoke_agent"
        ]  # fmt: skip
        try:
            self._db.write(statements)
        except sqlite3.Error:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._db.close()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


# ----------------------------------------------------------------------- reading

FeedbackFilter = Literal["up", "down", "any", "none"]

_LIST_SQL = """
SELECT * FROM (
  SELECT t.*,
    (SELECT f.rating FROM feedback f WHERE f.trace_id = t.trace_id AND f.rating IS NOT NULL
     ORDER BY f.id DESC LIMIT 1) AS rating,
    (SELECT COUNT(*) FROM feedback f WHERE f.trace_id = t.trace_id) AS feedback_count
  FROM traces t
) WHERE 1=1"""


def _ns(value: datetime | float | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    return int(value * 1e9)


class TraceStore:
    """Reads (and annotates) the traces in one SQLite file; creates it when missing."""

    def __init__(self, path: str | Path):
        self._db = _Database(path)
        self.path = self._db.path
        self.warnings: list[str] = []
        """Rows skipped because they could not be read (bad JSON, foreign spans)."""

    def exporter(self) -> SQLiteSpanExporter:
        """A span exporter writing into this store."""
        return SQLiteSpanExporter(self.path)

    def close(self) -> None:
        self._db.close()

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    # -------------------------------------------------------------- summaries

    def list_traces(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        model: str | None = None,
        failed_validation: bool | None = None,
        tool_error: bool | None = None,
        feedback: FeedbackFilter | None = None,
        min_latency_s: float | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[TraceSummary]:
        """Trace summaries matching every given filter, newest first."""
        sql, params = _LIST_SQL, []
        for clause, value in (
            ("start_ns >= ?", _ns(since)), ("start_ns <= ?", _ns(until)), ("model = ?", model),
            ("failed_validation = ?", None if failed_validation is None else int(failed_validation)),
            ("tool_error = ?", None if tool_error is None else int(tool_error)),
            ("latency_s >= ?", min_latency_s), ("status = ?", status),
        ):  # fmt: skip
            if value is not None:
                sql += f" AND {clause}"
                params.append(value)
        if feedback in ("up", "down"):
            sql += " AND rating = ?"
            params.append(feedback)
        elif feedback == "any":
            sql += " AND feedback_count > 0"
        elif feedback == "none":
            sql += " AND feedback_count = 0"
        elif feedback is not None:
            raise ValueError(f"feedback filter {feedback!r}: expected up, down, any or none")
        sql += " ORDER BY start_ns DESC, trace_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        conn = self._db.connect()
        conn.row_factory = sqlite3.Row
        try:
            rows = conn.execute(sql, params).fetchall()
        finally:
            conn.row_factory = None
        return [s for s in map(self._summary, rows) if s is not None]

    def iter_traces(self, **filters: Any) -> Iterator[TraceSummary]:
        """Like :meth:`list_traces`, one at a time (for exports)."""
        yield from self.list_traces(**filters)

    def _summary(self, row: sqlite3.Row) -> TraceSummary | None:
        data = dict(row)
        try:
            data["tools"] = json.loads(data["tools"] or "[]")
            data = {k: v for k, v in data.items() if v is not None}
            return TraceSummary(**data)
        except (ValueError, TypeError, ValidationError) as exc:
            self._warn(f"trace {data.get('trace_id')}: unreadable summary row skipped ({exc})")
            return None

    def resolve(self, trace_id: str) -> str:
        """The full id of the one trace whose id starts with ``trace_id`` (like git)."""
        prefix = trace_id.strip().lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            raise TraceNotFound(f"{trace_id!r} is not a trace id (expected hex digits)")
        rows = (
            self._db.connect()
            .execute(
                "SELECT trace_id FROM traces WHERE trace_id >= ? AND trace_id < ? LIMIT 2",
                (prefix, prefix + "g"),
            )
            .fetchall()
        )
        if not rows:
            raise TraceNotFound(f"no trace with id {trace_id!r} in {self.path}")
        if len(rows) > 1:
            raise TraceNotFound(f"trace id prefix {trace_id!r} is ambiguous; give more digits")
        return rows[0][0]

    # ------------------------------------------------------------------ traces

    def get_trace(self, trace_id: str) -> Trace:
        """A trace by id or unique id prefix: summary, span tree and feedback."""
        full = self.resolve(trace_id)
        summary = self.list_traces_by_id(full)
        return Trace(summary=summary, spans=self._tree(full), feedback=self.feedback_for(full))

    def list_traces_by_id(self, trace_id: str) -> TraceSummary:
        conn = self._db.connect()
        conn.row_factory = sqlite3.Row
        try:
            row = conn.execute(_LIST_SQL + " AND trace_id = ?", (trace_id,)).fetchone()
        finally:
            conn.row_factory = None
        summary = self._summary(row) if row is not None else None
        if summary is None:
            raise TraceNotFound(f"trace {trace_id} has no readable summary in {self.path}")
        return summary

    def _spans(self, trace_id: str) -> list[SpanRecord]:
        rows = (
            self._db.connect()
            .execute(
                "SELECT trace_id, span_id, parent_id, name, start_ns, end_ns, status, attributes,"
                " events FROM spans WHERE trace_id = ? ORDER BY start_ns, rowid",
                (trace_id,),
            )
            .fetchall()
        )
        spans = []
        for row in rows:
            name = row[3] or ""
            if name.split(" ", 1)[0] not in KNOWN_SPANS:
                self._warn(f"span {row[1]} of trace {trace_id}: foreign span {name!r} skipped")
                continue
            try:
                attributes, events = json.loads(row[7] or "{}"), json.loads(row[8] or "[]")
                spans.append(SpanRecord(
                    trace_id=row[0], span_id=row[1], parent_id=row[2], name=name,
                    start_ns=row[4], end_ns=row[5], status=row[6] or "UNSET",
                    attributes=attributes, events=events,
                ))  # fmt: skip
            except (ValueError, TypeError, ValidationError) as exc:
                self._warn(f"span {row[1]} of trace {trace_id}: unreadable row skipped ({exc})")
        return spans

    def _tree(self, trace_id: str) -> list[SpanRecord]:
        spans = self._spans(trace_id)
        by_id = {s.span_id: s for s in spans}
        roots = []
        for span in spans:
            parent = by_id.get(span.parent_id) if span.parent_id else None
            (parent.children if parent is not None else roots).append(span)
        return roots

    def run_events(self, trace_id: str) -> list:
        """The runtime events of a trace, rebuilt from ``tuneloop.event``, in emission order.

        Events that do not parse are skipped and reported in :attr:`warnings`.
        """
        full = self.resolve(trace_id)
        found: list[tuple[int, str]] = []
        for span in self._spans(full):
            holders = [span.attributes] + [e.get("attributes") or {} for e in span.events]
            for attrs in holders:
                for key, seq_key in (("tuneloop.event", "tuneloop.seq"),
                                     ("tuneloop.finish_event", "tuneloop.finish_seq")):  # fmt: skip
                    if key in attrs:
                        found.append((attrs.get(seq_key, 0), attrs[key]))
        events = []
        for seq, raw in sorted(found, key=lambda x: x[0]):
            try:
                events.append(parse_event(raw))
            except (ValueError, TypeError) as exc:
                self._warn(f"trace {full}: event #{seq} unreadable, skipped ({str(exc)[:200]})")
        return events

    # ---------------------------------------------------------------- feedback

    def add_feedback(
        self,
        trace_id: str,
        *,
        rating: Literal["up", "down"] | None = None,
        correction: str | None = None,
        note: str | None = None,
        tags: Sequence[str] = (),
        annotator: str = "cli",
    ) -> Feedback:
        """Record a rating, a corrected answer and/or a note for a trace (id or prefix)."""
        if rating not in (None, "up", "down"):
            raise ValueError(f"rating {rating!r}: expected 'up' or 'down'")
        if correction is not None and not correction.strip():
            raise ValueError("the correction is empty")
        if rating is None and correction is None and not note:
            raise ValueError("feedback needs a rating, a correction or a note")
        full = self.resolve(trace_id)
        created = time.time()
        conn = self._db.connect()
        with self._db.write_lock:
            cursor = conn.execute(
                "INSERT INTO feedback (trace_id, rating, correction, note, tags, annotator, created)"
                " VALUES (?,?,?,?,?,?,?)",
                (full, rating, correction, note, json.dumps(list(tags)), annotator, created),
            )
        return Feedback(
            id=cursor.lastrowid, trace_id=full, rating=rating, correction=correction, note=note,
            tags=list(tags), annotator=annotator, created=created,
        )  # fmt: skip

    def feedback_for(self, trace_id: str) -> list[Feedback]:
        """All feedback on a trace, oldest first."""
        full = self.resolve(trace_id)
        rows = (
            self._db.connect()
            .execute(
                "SELECT id, trace_id, rating, correction, note, tags, annotator, created"
                " FROM feedback WHERE trace_id = ? ORDER BY id",
                (full,),
            )
            .fetchall()
        )
        out = []
        for row in rows:
            try:
                out.append(Feedback(
                    id=row[0], trace_id=row[1], rating=row[2], correction=row[3], note=row[4],
                    tags=json.loads(row[5] or "[]"), annotator=row[6] or "", created=row[7] or 0,
                ))  # fmt: skip
            except (ValueError, TypeError, ValidationError) as exc:
                self._warn(f"feedback {row[0]} of trace {full}: unreadable, skipped ({exc})")
        return out

    # ------------------------------------------------------------------ export

    def export_jsonl(self, path: str | Path, **filters: Any) -> int:
        """Write one JSON object per trace (``trace_id``, ``summary``, ``events``,
        ``feedback``) to ``path``, atomically. Returns the number of traces."""
        n = 0
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            for summary in self.iter_traces(**filters):
                row = {
                    "trace_id": summary.trace_id,
                    "summary": summary.model_dump(mode="json"),
                    "events": [
                        e.model_dump(mode="json") for e in self.run_events(summary.trace_id)
                    ],
                    "feedback": [
                        f.model_dump(mode="json") for f in self.feedback_for(summary.trace_id)
                    ],
                }
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        return n
