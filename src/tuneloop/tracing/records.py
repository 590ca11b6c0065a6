"""What the trace store hands back: summaries, span trees, feedback (pydantic, in memory)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field


def ns_to_datetime(ns: int | None) -> datetime | None:
    """Unix nanoseconds as an aware UTC datetime."""
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)


class TraceNotFound(KeyError):
    """No trace matches an id or id prefix (or a prefix matches several)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "trace not found"


class Feedback(BaseModel):
    """One human judgement of a trace: a rating, a corrected answer, a note, tags."""

    id: int
    trace_id: str
    rating: Literal["up", "down"] | None = None
    correction: str | None = None
    """The answer the assistant should have given."""
    note: str | None = None
    tags: list[str] = Field(default_factory=list)
    annotator: str = "cli"
    created: float
    """Unix time the feedback was recorded."""


class TraceSummary(BaseModel):
    """One row of ``traces``: what a run did, at a glance."""

    trace_id: str
    """32 hex digits; equals the runtime's ``run_id``."""
    start_ns: int
    end_ns: int
    model: str | None = None
    status: str | None = None
    """``ok``, ``error`` or ``incomplete`` (the run never reported its end)."""
    error_type: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    failed_validation: bool = False
    """Some answer of the run failed its output schema (repaired or not)."""
    tool_error: bool = False
    """Some tool call failed or was rejected."""
    first_user: str | None = None
    """The first user message (redacted like everything else)."""
    steps: int = 0
    tools: list[str] = Field(default_factory=list)
    """Names of the tools that ran, in first-use order."""
    rating: Literal["up", "down"] | None = None
    """The latest rating given as feedback, if any."""
    feedback_count: int = 0

    @property
    def start(self) -> datetime:
        return ns_to_datetime(self.start_ns)  # type: ignore[return-value]


class SpanRecord(BaseModel):
    """One stored span, with its children (ordered by start time)."""

    trace_id: str
    span_id: str
    parent_id: str | None = None
    name: str
    start_ns: int
    end_ns: int
    status: str = "UNSET"
    attributes: dict[str, Any] = Field(default_factory=dict)
    events: list[dict[str, Any]] = Field(default_factory=list)
    """Span events: ``{"name", "time_ns", "attributes"}``."""
    children: list[SpanRecord] = Field(default_factory=list)

    def walk(self):
        """This span and all below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


class Trace(BaseModel):
    """A whole trace: summary, span tree(s) and feedback."""

    summary: TraceSummary
    spans: list[SpanRecord] = Field(default_factory=list)
    """Root spans (normally exactly one, ``invoke_agent``), children nested."""
    feedback: list[Feedback] = Field(default_factory=list)
