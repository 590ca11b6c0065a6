"""Prometheus metrics of one server (its own registry, so several apps can live in a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class ServeMetrics:
    """Counters, gauges and histograms exposed on ``GET /metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tuneloop_requests", "HTTP requests by route and status code.",
            ["route", "status"], registry=r,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "tuneloop_queue_depth", "Requests waiting for a batch slot.", registry=r
        )
        self.active = Gauge("tuneloop_active_rows", "Requests generating right now.", registry=r)
        self.ttft = Histogram(
            "tuneloop_time_to_first_token_seconds", "Time from request to first token.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tpot = Histogram(
            "tuneloop_time_per_output_token_seconds", "Decode time per output token after the first.",
            buckets=_TOKEN_BUCKETS, registry=r,
        )  # fmt: skip
        self.e2e = Histogram(
            "tuneloop_e2e_request_latency_seconds", "Request latency, first byte in to last out.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.prompt_tokens = Counter("tuneloop_prompt_tokens", "Prompt tokens in.", registry=r)
        self.completion_tokens = Counter(
            "tuneloop_completion_tokens", "Generated tokens out.", registry=r
        )
        self.tool_parse_failures = Counter(
            "tuneloop_tool_parse_failures", "Model outputs with a malformed or invalid tool call.",
            registry=r,
        )  # fmt: skip
        self.schema_repairs = Counter(
            "tuneloop_schema_repairs", "Repair attempts for outputs that failed the response schema.",
            registry=r,
        )  # fmt: skip

    def observe_output(self, output) -> None:
        """Token counts and timings of one finished generation."""
        self.prompt_tokens.inc(output.prompt_tokens)
        self.completion_tokens.inc(output.completion_tokens)
        if output.time_to_first_token_s is not None:
            self.ttft.observe(output.time_to_first_token_s)
            if output.completion_tokens > 1:
                decode = max(output.latency_s - output.time_to_first_token_s, 0.0)
                self.tpot.observe(decode / (output.completion_tokens - 1))

    def on_step(self, waiting: int, active: int) -> None:
        """Scheduler callback: the queue gauges."""
        self.queue_depth.set(waiting)
        self.active.set(active)

    def render(self) -> bytes:
        return generate_latest(self.registry)
