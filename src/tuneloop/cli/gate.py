"""``tuneloop gate``: a candidate's scorecard results against a release policy.

Exit codes: 0 every rule passed, 1 a rule failed, 2 bad input (a results or policy file
that cannot be read or does not validate; the message names the file and the field).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tuneloop.cli._common import fail, out


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _numbers(r) -> str:  # noqa: ANN001  (a RuleResult; imported lazily)
    parts = []
    if r.candidate_mean is not None:
        ci = (
            f" [{_num(r.candidate_low)}, {_num(r.candidate_high)}]"
            if r.candidate_low is not None
            else ""
        )
        parts.append(f"cand {_num(r.candidate_mean)}{ci}")
    if r.baseline_mean is not None:
        parts.append(f"base {_num(r.baseline_mean)}")
    if r.difference is not None:
        parts.append(
            f"diff {r.difference:+.3f} [{r.difference_low:+.3f}, {r.difference_high:+.3f}]"
        )
    if r.p_value is not None:
        parts.append(f"p {r.p_value:.3g}")
    if r.mcnemar_p is not None:
        parts.append(f"McNemar p {r.mcnemar_p:.3g}")
    if r.n_paired is not None:
        parts.append(f"n paired {r.n_paired}")
    return ", ".join(parts) or "-"


def gate(
    policy: Annotated[
        Path, typer.Option("--policy", help="Gate policy YAML (see configs/eval/gate.yaml).")
    ],
    candidate: Annotated[Path, typer.Argument(help="The candidate's results.json.")],
    baseline: Annotated[
        Path | None, typer.Argument(help="The baseline's results.json (for paired rules).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON only.")] = False,
) -> None:
    """Gate a release: check the candidate's scorecard results against a policy's rules
    (bounds, non-inferiority to a baseline, significance, zero tolerance)."""
    from tuneloop.eval.gate import GateError, evaluate_gate, load_policy, load_results

    try:
        rules = load_policy(policy)
        cand = load_results(candidate)
        base = None if baseline is None else load_results(baseline)
        report = evaluate_gate(cand, base, rules)
    except GateError as exc:
        fail(str(exc), code=2)
    failed = len(report.failed)
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        for r in report.rules:  # plain lines: CI logs grep them, and rule text holds brackets
            out.print(f"{'PASS' if r.passed else 'FAIL'}  {r.rule}", highlight=False, markup=False)
            out.print(f"      {_numbers(r)}", highlight=False, markup=False)
            if not r.passed:
                out.print(f"      {r.message}", highlight=False, markup=False, soft_wrap=True)
        verdict = (
            "gate: PASS"
            if report.passed
            else f"gate: FAIL ({failed} of {len(report.rules)} rules failed)"
        )
        out.print(verdict, highlight=False, markup=False)
    if not report.passed:
        raise typer.Exit(1)
