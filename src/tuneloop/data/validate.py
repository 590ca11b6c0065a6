"""Validate training data files before any GPU time is spent on them.

``validate_files(paths, config)`` reads every line of every file (a bad line is a
finding, not the end of the run), runs the record checks on each record, then the
set-level checks (duplicates, system prompts, length bias, contamination) across all
of them, and returns a :class:`~tuneloop.data.findings.Report`. The checks live in
:mod:`tuneloop.data.checks`, one concept per module; ``ALL_CHECKS`` lists their ids.

    from tuneloop.data.validate import ValidateConfig, validate_files

    report = validate_files(["train.jsonl"], ValidateConfig(eval_sets=["eval.jsonl"]))
    if not report.ok:
        for f in report.findings:
            print(f.where, f.check, f.message)

Checks needing the model's chat template run only when ``config.render`` is given:
the CLI passes ``functools.partial(tuneloop.models.render_for_training, tokenizer)``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from tuneloop.data.checks import ALL_CHECKS
from tuneloop.data.checks.contamination import CONTAMINATION, check_contamination
from tuneloop.data.checks.duplicates import check_duplicates
from tuneloop.data.checks.item import Context, Item
from tuneloop.data.checks.leakage import check_label_leakage
from tuneloop.data.checks.pii import check_pii
from tuneloop.data.checks.preference import Lengths, check_length_bias, check_pair
from tuneloop.data.checks.rendering import CHECKS as RENDER_CHECKS
from tuneloop.data.checks.rendering import Render, TokenStats, check_rendering
from tuneloop.data.checks.schema import read_items
from tuneloop.data.checks.system_prompt import check_system_prompts
from tuneloop.data.checks.tools import check_tool_calls
from tuneloop.data.checks.turns import check_turns
from tuneloop.data.findings import Report, Severity
from tuneloop.data.io import DataError

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``, called as records are checked."""


@dataclass
class ValidateConfig:
    """What to check beyond the record checks, and how severe each finding is."""

    render: Render | None = None
    """``render(messages, tools, max_length)``: the chat template with loss masks (see
    :mod:`tuneloop.data.checks.rendering`). None skips the rendering checks."""
    max_len: int | None = None
    """Sequence length training will truncate to; answers cut by it are reported."""
    eval_sets: list[str | Path] = field(default_factory=list)
    """Eval files the training data must not overlap (``contamination``)."""
    near_dup_threshold: float = 0.85
    """Estimated Jaccard similarity from which two records are near-duplicates."""
    ngram_n: int = 13
    """Word n-gram length for contamination (13, as in GPT-3's decontamination)."""
    severities: dict[str, Severity] = field(default_factory=dict)
    """Check id -> severity overrides, e.g. ``{"near_duplicate": "error"}``."""
    progress: Progress | None = None
    """Optional progress callback (the CLI draws a bar with it)."""


def parse_severities(specs: Sequence[str]) -> dict[str, Severity]:
    """``["near_duplicate=error", ...]`` as a dict; ValueError names the bad item."""
    out: dict[str, Severity] = {}
    for spec in specs:
        check, sep, level = spec.partition("=")
        if not sep:
            raise ValueError(f"--severity {spec!r}: expected CHECK=LEVEL")
        out[check.strip()] = level.strip().lower()  # type: ignore[assignment]
    _check_severities(out)
    return out


def _check_severities(severities: dict[str, str]) -> None:
    levels = get_args(Severity)
    for check, level in severities.items():
        if check not in ALL_CHECKS:
            raise ValueError(f"unknown check {check!r}; known: {', '.join(ALL_CHECKS)}")
        if level not in levels:
            raise ValueError(
                f"severity of {check!r} must be one of {', '.join(levels)}, not {level!r}"
            )


def _active_checks(config: ValidateConfig) -> list:
    skip = set()
    if config.render is None:
        skip |= {c.id for c in RENDER_CHECKS}
    if not config.eval_sets:
        skip.add(CONTAMINATION.id)
    return [
        dataclasses.replace(c, severity=config.severities.get(c.id, c.severity))
        for cid, c in ALL_CHECKS.items()
        if cid not in skip
    ]


def validate_files(paths: Sequence[str | Path], config: ValidateConfig | None = None) -> Report:
    """Run every applicable check over ``paths`` (one training set) and return the report.

    Raises :class:`DataError` when a file (or eval set) does not exist and ValueError for
    unknown check ids or levels in ``config.severities``; everything wrong *inside* the
    files is a finding.
    """
    config = config or ValidateConfig()
    _check_severities(config.severities)
    for path in [*paths, *config.eval_sets]:
        if not Path(path).is_file():
            raise DataError(path, None, "no such file")
    report = Report()
    report.register(*_active_checks(config))
    ctx = Context(report, dict(config.severities))

    items: list[Item] = []
    files: dict[str, dict[str, Any]] = {}
    for path in paths:
        got, lines = read_items(path, ctx)
        items += got
        kinds = dict(Counter(i.kind for i in got))
        files[str(Path(path))] = {
            "lines": lines,
            "records": len(got),
            "invalid": lines - len(got),
            "kinds": kinds,
        }
    report.records = sum(f["lines"] for f in files.values())

    tokens, pii_kinds = TokenStats(), Counter()
    lengths: dict[str, Lengths] = {}
    for done, item in enumerate(items, start=1):
        check_turns(item, ctx)
        check_tool_calls(item, ctx)
        check_label_leakage(item, ctx)
        check_pii(item, ctx, pii_kinds)
        check_pair(item, ctx, lengths)
        if config.render is not None:
            check_rendering(item, ctx, config.render, config.max_len, tokens)
        if config.progress:
            config.progress("checking records", done, len(items))

    stats: dict[str, Any] = {"files": files}
    stats["duplicates"] = check_duplicates(items, ctx, config.near_dup_threshold)
    stats["system_prompts"] = check_system_prompts(items, ctx)
    if lengths:
        stats["length_bias"] = check_length_bias(lengths, ctx)
    if config.eval_sets:
        stats["contamination"] = check_contamination(items, config.eval_sets, ctx, config.ngram_n)
    if config.render is not None:
        stats["rendering"] = tokens.to_dict(config.max_len)
    stats["pii"] = dict(pii_kinds)
    report.stats = stats
    _sort_findings(report, [str(Path(p)) for p in [*paths, *config.eval_sets]])
    return report


def _sort_findings(report: Report, files: list[str]) -> None:
    """File by file, line by line; set-level findings (no line) after a file's lines."""
    order = {f: i for i, f in enumerate(files)}
    checks = {cid: i for i, cid in enumerate(ALL_CHECKS)}
    report.findings.sort(
        key=lambda f: (
            order.get(f.file, len(order)),
            f.line is None,
            f.line or 0,
            checks.get(f.check, 0),
        )
    )
