"""Traces: runtime events as OpenTelemetry spans (GenAI conventions) in a SQLite store.

sink = TraceSink(default_store_path())           # an EventSink for the Assistant
Assistant(model, tools, sink=sink).run("...")
store = TraceStore(default_store_path())
store.list_traces(failed_validation=True)         # summaries, newest first
store.run_events(trace_id)                        # the exact runtime events back
store.add_feedback(trace_id, rating="down", correction="...")
mine(traces, "mined/")                            # validated SFT / DPO / KTO data + queue
"""

from tuneloop.tracing.mine import MineConfig, MinedTrace, MineError, MineReport, mine
from tuneloop.tracing.records import Feedback, SpanRecord, Trace, TraceNotFound, TraceSummary
from tuneloop.tracing.spans import TraceSink, redact_event, redact_value
from tuneloop.tracing.store import SQLiteSpanExporter, TraceStore, default_store_path

__all__ = [
    "Feedback",
    "MineConfig",
    "MineError",
    "MineReport",
    "MinedTrace",
    "SQLiteSpanExporter",
    "SpanRecord",
    "Trace",
    "TraceNotFound",
    "TraceSink",
    "TraceStore",
    "TraceSummary",
    "default_store_path",
    "mine",
    "redact_event",
    "redact_value",
]
