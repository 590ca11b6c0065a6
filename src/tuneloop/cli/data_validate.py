"""``tuneloop data validate``: blocking checks on training data, one row per check."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tuneloop.cli._common import err, fail, out, user_errors

_STATUS_STYLE = {"pass": "green", "warn": "yellow", "FAIL": "bold red"}
_SHOW_LOCATIONS = 3
_SHOW_FINDINGS = 5


def _render_function(model_ref: str):
    """``render(messages, tools, max_length)`` bound to the model's tokenizer."""
    from tuneloop.models import load_tokenizer, render_for_training, resolve_model

    with err.status(f"loading tokenizer of {model_ref}..."):
        tokenizer = load_tokenizer(resolve_model(model_ref))
    if not tokenizer.chat_template:
        fail(f"{model_ref}: the tokenizer has no chat template, so rendering cannot be checked")
    return functools.partial(render_for_training, tokenizer)


def _print_report(report) -> None:
    table = Table("check", "severity", "status", "count", "locations", title="data validation")
    for row in report.summary():
        locs = row["locations"]
        shown = ", ".join(locs[:_SHOW_LOCATIONS]) + (f" (+{len(locs) - _SHOW_LOCATIONS} more)" if len(locs) > _SHOW_LOCATIONS else "")  # fmt: skip
        style = _STATUS_STYLE[row["status"]]
        table.add_row(
            row["check"], row["severity"], f"[{style}]{row['status']}[/]", str(row["count"]), shown
        )
    out.print(table)
    for row in report.summary():
        found = [f for f in report.findings if f.check == row["check"]]
        if not found:
            continue
        out.print(f"[bold]{row['check']}[/] ({row['severity']}): {row['description']}")
        for f in found[:_SHOW_FINDINGS]:
            field = f" {f.field}:" if f.field else ""
            out.print(f"  {f.where}:{field} {f.message}", highlight=False, markup=False)
        if len(found) > _SHOW_FINDINGS:
            out.print(f"  ... {len(found) - _SHOW_FINDINGS} more (--json lists all)")
    stats = Table("statistic", "", "value", show_header=False, box=None, title="statistics")
    for key, value in report.stats.items():
        nested = (
            isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values())
        )
        for sub, v in value.items() if nested else [("", value)]:
            stats.add_row(key, sub, json.dumps(v) if isinstance(v, (dict, list)) else str(v))
    out.print(stats)
    errors = sum(f.severity == "error" for f in report.findings)
    warnings = sum(f.severity == "warning" for f in report.findings)
    verdict = "[bold green]OK[/]" if report.ok else "[bold red]FAILED[/]"
    out.print(f"{verdict}: {report.records} records, {errors} errors, {warnings} warnings")


def validate(
    files: Annotated[list[Path], typer.Argument(help="JSONL files forming one training set.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model whose chat template renders the data (enables the rendering checks).",
        ),
    ] = None,
    max_len: Annotated[
        int | None,
        typer.Option(
            "--max-len", min=1, help="Training sequence length: report answers it truncates."
        ),
    ] = None,
    eval_sets: Annotated[
        list[Path] | None,
        typer.Option(
            "--eval-sets", help="Eval JSONL files the data must not overlap (repeatable)."
        ),
    ] = None,
    near_dup_threshold: Annotated[
        float,
        typer.Option(
            "--near-dup-threshold",
            min=0.01,
            max=1.0,
            help="Estimated Jaccard from which records are near-duplicates.",
        ),
    ] = 0.85,
    severity: Annotated[
        list[str] | None,
        typer.Option("--severity", help="Re-grade a check: CHECK=error|warning|info (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON only.")] = False,
) -> None:
    """Check training data before spending compute on it; exit 1 on any error finding.

    Checks: schema, turn order, rendering with the model's chat template (--model),
    duplicates, contamination (--eval-sets), label leakage, system prompts, PII, tool
    calls and preference pairs. Each finding names its check id and file:line.
    """
    from tuneloop.data.validate import ValidateConfig, parse_severities, validate_files

    try:
        severities = parse_severities(severity or [])
    except ValueError as exc:
        fail(str(exc))
    config = ValidateConfig(
        max_len=max_len, eval_sets=list(eval_sets or []),
        near_dup_threshold=near_dup_threshold, severities=severities,
    )  # fmt: skip
    try:
        for path in [*files, *config.eval_sets]:
            if not Path(path).is_file():
                fail(f"{path}: no such file")
        if model:
            config.render = _render_function(model)
        if as_json:
            report = validate_files(files, config)
        else:
            progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=err, transient=True)  # fmt: skip
            task = progress.add_task("checking records", total=None)
            config.progress = lambda stage, done, total: progress.update(
                task, description=stage, completed=done, total=total
            )
            with progress:
                report = validate_files(files, config)
    except user_errors() as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(1)
