"""Runtime events as OpenTelemetry spans (GenAI semantic conventions).

:class:`TraceSink` is an event sink: it buffers a run's events and, when the run
finishes, turns them into one trace::

    invoke_agent {model}            RunStarted .. RunFinished, token totals, status
    ├── chat {model}                one per ModelCall (start = time - latency_s)
    │     events: tuneloop.tool_call_rejected, tuneloop.fabricated_tool_response,
    │             gen_ai.evaluation.result, tuneloop.repair
    ├── execute_tool {name}         one per ToolCallEvent (status ERROR when it failed)
    └── ...                         tuneloop.context_policy events sit on the root

Every span and span event carries ``tuneloop.event`` (the event's JSON) and
``tuneloop.seq`` (its index in the run), so :meth:`TraceStore.run_events` rebuilds
the exact event list. Redaction (:func:`tuneloop.data.pii.redact`: e-mails, phone
numbers, cards, IBANs, IPs and API keys such as ``sk-…``, ``ghp_…``, ``AKIA…``,
``Bearer …``, ``api_key=…``) runs on every string of every event before any span is
built, so nothing unredacted reaches an exporter.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Status, StatusCode

from tuneloop.data.pii import redact as redact_pii
from tuneloop.runtime.events import ModelCall, RunFinished, RunStarted, ToolCallEvent
from tuneloop.tracing.store import TraceStore

_UNREDACTED = frozenset(
    {"kind", "run_id", "call_id", "prompt_hash", "tools_hash", "output_schema_hash", "model"}
)
"""Top-level event fields that are ids or hashes, never user content."""

_EVENT_NAMES = {
    "tool_call_rejected": "tuneloop.tool_call_rejected",
    "fabricated_tool_response": "tuneloop.fabricated_tool_response",
    "validation": "gen_ai.evaluation.result",
    "repair": "tuneloop.repair",
    "context_policy": "tuneloop.context_policy",
}
_ON_CHAT_SPAN = frozenset(
    {"tool_call_rejected", "fabricated_tool_response", "validation", "repair"}
)


def redact_value(value: Any) -> Any:
    """Every string inside ``value`` (dict values, list items) redacted; keys kept."""
    if isinstance(value, str):
        return redact_pii(value)[0]
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    return value


def redact_event(event):
    """A copy of ``event`` with personal data and secrets replaced in all its content."""
    data = event.model_dump()
    clean = {k: v if k in _UNREDACTED else redact_value(v) for k, v in data.items()}
    return type(event).model_validate(clean)


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class _RunIdGenerator(RandomIdGenerator):
    """Uses the run id as the trace id, so ``run_id`` and trace id are the same string."""

    def __init__(self) -> None:
        self.next_trace_id = threading.local()

    def generate_trace_id(self) -> int:
        wanted = getattr(self.next_trace_id, "value", None)
        self.next_trace_id.value = None
        return wanted if wanted else super().generate_trace_id()


class _TraceBatchProcessor(SpanProcessor):
    """Exports all spans of a trace in one call when its root span ends.

    The exporter then writes a trace in one transaction: a crash loses whole traces,
    never half of one. (``SimpleSpanProcessor`` would commit span by span.)
    """

    def __init__(self, exporter: SpanExporter):
        self.exporter = exporter
        self._pending: dict[int, list[ReadableSpan]] = {}
        self._lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        trace_id = span.context.trace_id
        with self._lock:
            batch = self._pending.setdefault(trace_id, [])
            batch.append(span)
            if span.parent is not None:
                return
            del self._pending[trace_id]
        self.exporter.export(batch)

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _otlp_exporter(endpoint: str) -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise ImportError(
            "sending traces over OTLP needs the otlp extra: pip install 'tuneloop[otlp]'"
        ) from exc
    return OTLPSpanExporter(endpoint=endpoint)


class TraceSink:
    """An event sink that stores each run as one OpenTelemetry trace.

    ``store`` is a :class:`TraceStore` or the path of its SQLite file. ``redact``
    (default on) scrubs personal data and secrets from all content first.
    ``record_content=False`` keeps messages, outputs, tool arguments and results out
    of span attributes (the events in ``tuneloop.event`` still hold them, redacted).
    ``otlp_endpoint`` also sends the spans to an OTLP/HTTP collector (needs the
    ``otlp`` extra). Runs are written when they finish, or on :meth:`flush`.
    """

    def __init__(
        self,
        store: TraceStore | str | Path,
        *,
        redact: bool = True,
        record_content: bool = True,
        otlp_endpoint: str | None = None,
    ):
        self.store = store if isinstance(store, TraceStore) else TraceStore(store)
        self.redact = redact
        self.record_content = record_content
        self._runs: dict[str, list] = {}
        self._lock = threading.Lock()
        self._ids = _RunIdGenerator()
        unlimited = SpanLimits.UNSET
        self._provider = TracerProvider(
            resource=Resource.create({"service.name": "tuneloop"}),
            id_generator=self._ids,
            span_limits=SpanLimits(
                max_attributes=unlimited, max_events=unlimited, max_span_attributes=unlimited,
                max_event_attributes=unlimited, max_attribute_length=unlimited,
                max_span_attribute_length=unlimited,
            ),
        )  # fmt: skip
        self._provider.add_span_processor(_TraceBatchProcessor(self.store.exporter()))
        if otlp_endpoint:
            self._provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(otlp_endpoint)))
        self._tracer = self._provider.get_tracer("tuneloop.tracing")
        self.last_trace_id: str | None = None
        """The trace id (= run id) of the last run written."""

    def emit(self, event) -> None:
        with self._lock:
            events = self._runs.setdefault(event.run_id, [])
            events.append(event)
            if not isinstance(event, RunFinished):
                return
            del self._runs[event.run_id]
        self._write(events)

    def flush(self) -> None:
        """Write the runs still open (they are stored with status ``incomplete``)."""
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
        for events in runs:
            self._write(events)
        self._provider.force_flush()

    def close(self) -> None:
        """Flush, then release the exporters."""
        self.flush()
        self._provider.shutdown()

    # ------------------------------------------------------------------ building

    def _write(self, events: list) -> None:
        if self.redact:
            events = [redact_event(e) for e in events]
        _TraceBuilder(self, events).build()
        self.last_trace_id = events[0].run_id or self.last_trace_id


class _TraceBuilder:
    """Turns one run's events into spans on the sink's tracer."""

    def __init__(self, sink: TraceSink, events: list):
        self.sink = sink
        self.events = events
        self.content = sink.record_content

    def build(self) -> None:
        events = self.events
        started = next((e for e in events if isinstance(e, RunStarted)), None)
        finished = next((e for e in events if isinstance(e, RunFinished)), None)
        model = started.model if started else next(
            (e.model for e in events if isinstance(e, ModelCall)), "unknown"
        )  # fmt: skip
        run_id = events[0].run_id
        if len(run_id) == 32 and all(c in "0123456789abcdef" for c in run_id):
            self.sink._ids.next_trace_id.value = int(run_id, 16)
        start = started.time if started else min(e.time for e in events)
        end = finished.time if finished else max(e.time for e in events)
        tracer = self.sink._tracer
        root = tracer.start_span(
            f"invoke_agent {model}", start_time=_ns(start), kind=otel_trace.SpanKind.INTERNAL,
            attributes=self._root_attributes(model, started, finished),
        )  # fmt: skip
        context = otel_trace.set_span_in_context(root)
        chat, chat_end = None, 0.0
        for seq, event in enumerate(events):
            if event is started or event is finished:
                continue
            if isinstance(event, ModelCall):
                if chat is not None:  # kept open until now so that events could land on it
                    chat.end(end_time=_ns(chat_end))
                chat, chat_end = self._chat_span(tracer, context, event, seq), event.time
            elif isinstance(event, ToolCallEvent):
                self._tool_span(tracer, context, event, seq)
            else:
                target = chat if chat is not None and event.kind in _ON_CHAT_SPAN else root
                target.add_event(
                    _EVENT_NAMES.get(event.kind, f"tuneloop.{event.kind}"),
                    self._event_attributes(event, seq), timestamp=_ns(event.time),
                )  # fmt: skip
        if chat is not None:
            chat.end(end_time=_ns(chat_end))
        if finished is not None and finished.status == "error":
            root.set_status(Status(StatusCode.ERROR, finished.error or finished.error_type))
        root.end(end_time=_ns(end))

    def _root_attributes(self, model: str, started, finished) -> dict[str, Any]:
        events = self.events
        calls = [e for e in events if isinstance(e, ModelCall)]
        tools = [e for e in events if isinstance(e, ToolCallEvent)]
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": finished.prompt_tokens if finished
            else sum(e.prompt_tokens for e in calls),
            "gen_ai.usage.output_tokens": finished.completion_tokens if finished
            else sum(e.completion_tokens for e in calls),
            "tuneloop.run_id": events[0].run_id,
            "tuneloop.status": finished.status if finished else "incomplete",
            "tuneloop.steps": finished.steps if finished
            else len([c for c in calls if c.purpose != "summary"]),
            "tuneloop.latency_s": finished.latency_s if finished else 0.0,
            "tuneloop.tools_used": list(dict.fromkeys(t.tool for t in tools)),
            "tuneloop.tool_error": any(not t.ok for t in tools)
            or any(e.kind == "tool_call_rejected" for e in events),
            "tuneloop.failed_validation": any(
                e.kind == "validation" and not e.passed for e in events
            ),
        }  # fmt: skip
        if started is not None:
            attrs["tuneloop.event"] = started.model_dump_json()
            attrs["tuneloop.seq"] = events.index(started)
            for key in ("tools_hash", "output_schema_hash"):
                if getattr(started, key):
                    attrs[f"tuneloop.{key}"] = getattr(started, key)
            first_user = next(
                (m.get("content") for m in started.messages if m.get("role") == "user"), None
            )
            if isinstance(first_user, str):
                attrs["tuneloop.first_user"] = first_user
        if finished is not None:
            attrs["tuneloop.finish_event"] = finished.model_dump_json()
            attrs["tuneloop.finish_seq"] = events.index(finished)
            for key in ("error", "error_type"):
                if getattr(finished, key):
                    attrs[f"tuneloop.{key}"] = getattr(finished, key)
        return attrs

    def _chat_span(self, tracer, context, event: ModelCall, seq: int):
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": event.model,
            "gen_ai.response.finish_reasons": [event.finish_reason],
            "gen_ai.usage.input_tokens": event.prompt_tokens,
            "gen_ai.usage.output_tokens": event.completion_tokens,
            "tuneloop.prompt_hash": event.prompt_hash,
            "tuneloop.purpose": event.purpose,
            "tuneloop.constrained": event.constrained,
            "tuneloop.step": event.step,
            "tuneloop.latency_s": event.latency_s,
            "tuneloop.event": event.model_dump_json(),
            "tuneloop.seq": seq,
        }
        if event.grammar_error:
            attrs["tuneloop.grammar_error"] = event.grammar_error
        if self.content:
            if event.messages is not None:
                attrs["gen_ai.input.messages"] = _json(event.messages)
            output = {"role": "assistant", "content": event.output}
            if event.tool_calls:
                output["tool_calls"] = event.tool_calls
            attrs["gen_ai.output.messages"] = _json([output])
        span = tracer.start_span(
            f"chat {event.model}", context=context, kind=otel_trace.SpanKind.CLIENT,
            start_time=_ns(event.time - event.latency_s), attributes=attrs,
        )  # fmt: skip
        return span  # ended by the caller, after the events that belong to it

    def _tool_span(self, tracer, context, event: ToolCallEvent, seq: int) -> None:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": event.tool,
            "gen_ai.tool.call.id": event.call_id,
            "tuneloop.step": event.step,
            "tuneloop.duration_s": event.duration_s,
            "tuneloop.truncated": event.truncated,
            "tuneloop.event": event.model_dump_json(),
            "tuneloop.seq": seq,
        }
        if self.content:
            attrs["gen_ai.tool.call.arguments"] = _json(event.arguments)
            if event.result is not None:
                attrs["gen_ai.tool.call.result"] = event.result
        if not event.ok:
            attrs["error.type"] = event.error_type or "error"
        span = tracer.start_span(
            f"execute_tool {event.tool}", context=context, kind=otel_trace.SpanKind.INTERNAL,
            start_time=_ns(event.time - event.duration_s), attributes=attrs,
        )  # fmt: skip
        if not event.ok:
            span.set_status(Status(StatusCode.ERROR, event.error or event.error_type))
        span.end(end_time=_ns(event.time))

    def _event_attributes(self, event, seq: int) -> dict[str, Any]:
        attrs: dict[str, Any] = {"tuneloop.event": event.model_dump_json(), "tuneloop.seq": seq}
        kind = event.kind
        if kind == "validation":
            attrs |= {
                "gen_ai.evaluation.name": event.validator,
                "gen_ai.evaluation.score.label": "pass" if event.passed else "fail",
                "tuneloop.errors": list(event.errors),
                "tuneloop.attempt": event.attempt,
            }
        elif kind == "tool_call_rejected":
            attrs |= {"tuneloop.reason": event.reason, "tuneloop.error": event.error}
            if event.tool:
                attrs["gen_ai.tool.name"] = event.tool
        elif kind == "repair":
            attrs["tuneloop.attempt"] = event.attempt
        elif kind == "context_policy":
            attrs |= {
                "tuneloop.action": event.action, "tuneloop.tokens_before": event.tokens_before,
                "tuneloop.tokens_after": event.tokens_after,
            }  # fmt: skip
        return attrs
