"""``tuneloop mine``: traces (and their feedback) to SFT, preference and KTO data."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from tuneloop.cli._common import err, fail, out, user_errors

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class LengthPolicy(str, Enum):
    drop = "drop"
    flag = "flag"
    keep = "keep"


def parse_since(text: str, now: float | None = None) -> float:
    """Unix time from ``2h`` / ``1d`` / ``30m`` (before ``now``) or an ISO 8601 date.

    A date without a timezone is read as UTC. ValueError names the bad value.
    """
    now = time.time() if now is None else now
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected an ISO date or a duration like 2h, 1d"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def mine(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder to write the mined data into.")
    ],
    db: Annotated[
        Path | None, typer.Option("--db", help="Trace store (default: $TUNELOOP_HOME/traces.db).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only traces started after this: ISO date or 2h, 1d, 30m."),
    ] = None,
    eval_sets: Annotated[
        list[Path] | None,
        typer.Option(
            "--eval-sets", help="Eval JSONL files mined records must not overlap (repeatable)."
        ),
    ] = None,
    length_policy: Annotated[
        LengthPolicy,
        typer.Option(
            "--length-policy", help="Pairs whose chosen side is too long: drop, flag or keep."
        ),
    ] = LengthPolicy.drop,
    max_length_ratio: Annotated[
        float,
        typer.Option(
            "--max-length-ratio",
            min=0.01,
            help="Chosen longer than this x rejected (chars) counts as length-biased.",
        ),
    ] = 1.5,
    no_dedup: Annotated[
        bool, typer.Option("--no-dedup", help="Keep exact and near-duplicate records.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty output folder.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON only.")] = False,
) -> None:
    """Mine traces for training data: corrections and repaired answers become SFT examples
    and preference pairs, ratings KTO examples; failures go to an annotation queue."""
    from tuneloop.tracing.mine import MineConfig, MinedTrace, MineError
    from tuneloop.tracing.mine import mine as mine_traces
    from tuneloop.tracing.store import TraceStore, default_store_path

    if output.exists() and not output.is_dir():
        fail(f"{output}: not a folder")
    if output.is_dir() and any(output.iterdir()) and not force:
        fail(f"{output} is not empty; pass --force to write into it")
    for path in eval_sets or []:
        if not path.is_file():
            fail(f"{path}: no such file")
    db = db or default_store_path()
    if not db.is_file():
        fail(f"{db}: no trace store (run the assistant with tracing on, or pass --db)")
    try:
        since_dt = None
        if since:
            since_dt = datetime.fromtimestamp(parse_since(since), tz=timezone.utc)
        config = MineConfig(max_length_ratio=max_length_ratio, length_policy=length_policy.value,
                            eval_sets=list(eval_sets or []), dedup=not no_dedup)  # fmt: skip
        store = TraceStore(db)
        summaries = store.list_traces(since=since_dt)
        traces = (
            MinedTrace(
                trace_id=s.trace_id,
                events=store.run_events(s.trace_id),
                feedback=store.feedback_for(s.trace_id),
            )  # fmt: skip
            for s in summaries
        )
        report = mine_traces(traces, output, config)
    except (ValueError, MineError, *user_errors()) as exc:
        fail(str(exc))
    for warning in getattr(store, "warnings", []):
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    counts = ", ".join(f"{k}: {v}" for k, v in report.counts.items())
    drops = ", ".join(f"{k}: {v}" for k, v in report.dropped.items())
    lb = report.length_bias
    out.print(f"mined {report.traces} trace(s) into {output}: {counts}", highlight=False)
    out.print(f"dropped: {drops}", highlight=False)
    out.print(f"pairs: chosen longer in {lb.chosen_longer_share:.0%}, mean length ratio "
              f"{lb.mean_length_ratio:.2f}", highlight=False)  # fmt: skip
