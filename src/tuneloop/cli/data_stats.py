"""``tuneloop data stats FILE``: counts, turns, tool use and length distributions of a JSONL file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tuneloop.cli._common import fail, out, user_errors


def stats(
    file: Annotated[Path, typer.Argument(help="JSONL file of canonical records.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write an HTML page with histograms here.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Measure lengths in this model's tokens (default: whitespace words).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Records by kind, turns per record, tool usage and length distributions per role."""
    from tuneloop.data.stats import compute_stats, write_stats_html

    try:
        tokenizer = None
        if model:
            from tuneloop.models import load_tokenizer, resolve_model

            tokenizer = load_tokenizer(resolve_model(model))
        result = compute_stats(file, tokenizer, model)
        if output is not None:
            write_stats_html(result, output)
    except user_errors() as exc:
        fail(str(exc))
    summary = result.summary()
    if as_json:
        out.print_json(json.dumps(summary))
        return
    table = Table("", "count", "mean", "p50", "p95", "max", title=f"{file}: {summary['records']} records; lengths in {summary['length_unit']}")  # fmt: skip
    rows = [("turns per record", summary["turns"]), ("record length", summary["record_length"])]
    rows += [(f"{role} turn length", d) for role, d in summary["lengths_by_role"].items()]
    for name, d in rows:
        table.add_row(name, *(str(d.get(k, "-")) for k in ("count", "mean", "p50", "p95", "max")))
    out.print(table)
    out.print("kinds: " + ", ".join(f"{k} {v}" for k, v in summary["kinds"].items()))
    tools = summary["tools"]
    calls = ", ".join(f"{k} {v}" for k, v in tools["calls_per_tool"].items()) or "none"
    out.print(f"tools: {tools['records_with_tools']} records declare tools, "
              f"{tools['records_with_tool_calls']} call them; calls per tool: {calls}")  # fmt: skip
    langs = summary["languages"]
    out.print("languages: " + (", ".join(f"{k} {v}" for k, v in langs.items()) if langs is not None
                               else "not counted (install langdetect to count them)"))  # fmt: skip
    if output is not None:
        out.print(f"wrote {output}")
