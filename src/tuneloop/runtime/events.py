"""Typed events: every step the runtime takes, as data.

The :class:`~tuneloop.runtime.assistant.Assistant` emits one event per model call,
tool call (accepted, rejected or failed), validation, repair attempt and
context-policy action, to any :class:`EventSink`. :class:`ListSink` keeps them in
memory, :class:`JsonlSink` appends them to a file (one JSON object per line); the
tracing layer stores them as OpenTelemetry spans.

Every event carries ``run_id`` (one ``Assistant.run`` call) and ``step`` (the
model-call index within the run, from 0), so a sink can rebuild the tree.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


def new_id() -> str:
    """A random hex id for runs and tool calls."""
    return uuid.uuid4().hex


def stable_hash(value: Any) -> str:
    """sha256 (first 16 hex digits) of ``value`` as canonical JSON: prompt and schema hashes."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str = ""
    step: int = 0
    time: float = Field(default_factory=time.time)
    """Unix time when the event was emitted."""


class RunStarted(_Event):
    kind: Literal["run_started"] = "run_started"
    model: str
    tools: list[str] = Field(default_factory=list)
    """Names of the allow-listed tools offered to the model."""
    tools_hash: str | None = None
    """Hash of the tool specs as sent (``stable_hash``)."""
    tool_specs: list[dict] = Field(default_factory=list)
    """The tool specs offered (OpenAI function format), so mined data can be validated."""
    output_schema_hash: str | None = None
    messages: list[dict] = Field(default_factory=list)
    """The input conversation."""


class ModelCall(_Event):
    kind: Literal["model_call"] = "model_call"
    model: str
    purpose: Literal["step", "error_feedback", "repair", "summary"] = "step"
    prompt_hash: str
    """``stable_hash`` of the messages and tool specs sent."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    time_to_first_token_s: float | None = None
    finish_reason: str = "stop"
    constrained: bool = False
    """Whether constrained decoding (a grammar) shaped this output."""
    grammar_error: str | None = None
    """Why the grammar could not be used (the call then decoded freely)."""
    output: str = ""
    """The raw text the model produced."""
    tool_calls: list[dict] | None = None
    """Structured tool calls when the backend returned them."""
    messages: list[dict] | None = None
    """The messages sent (after the context policy); kept so traces can be mined."""


class ToolCallRejected(_Event):
    """The model asked for a tool call that was not run."""

    kind: Literal["tool_call_rejected"] = "tool_call_rejected"
    reason: Literal["parse_error", "unknown_tool", "not_allowed", "invalid_arguments"]
    tool: str | None = None
    raw: str
    """The call as the model wrote it."""
    error: str


class FabricatedToolResponse(_Event):
    """The model wrote tool-response markup itself; the text was rejected."""

    kind: Literal["fabricated_tool_response"] = "fabricated_tool_response"
    raw: str


class ToolCallEvent(_Event):
    """A tool call that ran (successfully or not)."""

    kind: Literal["tool_call"] = "tool_call"
    call_id: str
    tool: str
    arguments: dict
    ok: bool
    result: str | None = None
    """The tool's output as given to the model (after capping), when ``ok``."""
    error: str | None = None
    error_type: str | None = None
    """``timeout``, ``exception`` (with the class name in ``error``) or ``refused``."""
    duration_s: float = 0.0
    truncated: bool = False


class ValidationResult(_Event):
    kind: Literal["validation"] = "validation"
    validator: str = "json_schema"
    passed: bool
    errors: list[str] = Field(default_factory=list)
    attempt: int = 0
    """0 for the first answer, ``k`` for the k-th repair."""


class RepairAttempt(_Event):
    kind: Literal["repair"] = "repair"
    attempt: int
    """1-based."""
    feedback: str
    """The error text fed back to the model."""


class ContextAction(_Event):
    kind: Literal["context_policy"] = "context_policy"
    action: Literal[
        "drop_turns", "summarize", "truncate_tool_output", "truncate_retrieved",
        "truncate_summary",
    ]  # fmt: skip
    detail: dict = Field(default_factory=dict)
    tokens_before: int = 0
    tokens_after: int = 0


class RunFinished(_Event):
    kind: Literal["run_finished"] = "run_finished"
    status: Literal["ok", "error"]
    error: str | None = None
    error_type: str | None = None
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    answer: str | None = None


Event = Annotated[
    RunStarted | ModelCall | ToolCallRejected | FabricatedToolResponse | ToolCallEvent
    | ValidationResult | RepairAttempt | ContextAction | RunFinished,
    Field(discriminator="kind"),
]  # fmt: skip
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: dict | str) -> Event:
    """Rebuild a typed event from its JSON (dict or string)."""
    if isinstance(data, str):
        return _EVENT_ADAPTER.validate_json(data)
    return _EVENT_ADAPTER.validate_python(data)


@runtime_checkable
class EventSink(Protocol):
    def emit(self, event: _Event) -> None: ...


class ListSink:
    """Keeps events in memory, in order."""

    def __init__(self) -> None:
        self.events: list[_Event] = []
        self._lock = threading.Lock()

    def emit(self, event: _Event) -> None:
        with self._lock:
            self.events.append(event)

    def of_kind(self, kind: str) -> list:
        return [e for e in self.events if e.kind == kind]


class JsonlSink:
    """Appends each event as one JSON line and flushes, so a crash loses nothing emitted."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def emit(self, event: _Event) -> None:
        line = event.model_dump_json() + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line)

    def read(self) -> list:
        """The events written so far, typed."""
        if not self.path.exists():
            return []
        return [parse_event(x) for x in self.path.read_text(encoding="utf-8").splitlines() if x]


class MultiSink:
    """Sends each event to several sinks."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = list(sinks)

    def emit(self, event: _Event) -> None:
        for sink in self.sinks:
            sink.emit(event)


class NullSink:
    def emit(self, event: _Event) -> None:
        pass
