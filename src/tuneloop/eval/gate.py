"""The release gate: a candidate's scorecard results against a policy (and a baseline).

A policy is a list of rules, one per ``TASK/SCORER`` metric; each rule holds any of these
checks, and passes when all of them do:

* ``min`` / ``max``: the candidate's mean is within bounds (no baseline needed);
* ``non_inferiority_margin``: candidate − baseline, paired by sample id, has a lower
  confidence bound above −margin (:func:`~tuneloop.eval.stats.non_inferior`);
* ``require_significant_improvement``: the candidate is better and the paired bootstrap
  p-value (and McNemar's, when every paired score is pass/fail) is below ``alpha``;
* ``zero_tolerance``: every candidate sample passed; the failures are listed by id.

Nothing passes silently: a metric missing from the results, a baseline-needing rule
without a baseline, or no sample ids shared by both runs each fail the rule with a
message saying so::

    from tuneloop.eval.gate import evaluate_gate, load_policy, load_results

    report = evaluate_gate(load_results("new/results.json"), load_results("old/results.json"),
                           load_policy("configs/eval/gate.yaml"))  # fmt: skip
    assert report.passed, [r.message for r in report.rules if not r.passed]
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tuneloop.eval.stats import mcnemar, non_inferior, paired_bootstrap

__all__ = [
    "GateError",
    "GatePolicy",
    "GateReport",
    "GateRule",
    "RuleResult",
    "evaluate_gate",
    "load_policy",
    "load_results",
]


class GateError(ValueError):
    """Bad gate input (policy or results); the message names the file and the field."""


# --- policy --------------------------------------------------------------------------


class GateRule(BaseModel):
    """One metric and the checks it must pass; at least one check must be set."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    """``TASK/SCORER`` as in the results file, e.g. ``schema/json_schema``."""
    min: float | None = None
    """The candidate's mean must be at least this."""
    max: float | None = None
    """The candidate's mean must be at most this."""
    non_inferiority_margin: float | None = Field(default=None, ge=0)
    """Largest loss tolerated vs the baseline, in the metric's units: passes when the
    lower confidence bound of the paired improvement is above −margin. Needs a baseline."""
    require_significant_improvement: bool = False
    """The candidate must beat the baseline with paired bootstrap p < ``alpha`` (and
    McNemar p < ``alpha`` when the scores are pass/fail). Needs a baseline."""
    alpha: float = Field(default=0.05, gt=0, lt=1)
    """Significance level of ``require_significant_improvement``."""
    zero_tolerance: bool = False
    """Every candidate sample must pass; the failing sample ids are listed."""
    higher_is_better: bool = True
    """Orientation of the metric (False for e.g. latency). It sets the sign of the paired
    improvement and what a failed sample is; ``min``/``max`` bound the raw mean either way."""

    @field_validator("metric")
    @classmethod
    def _task_slash_scorer(cls, value: str) -> str:
        task, sep, scorer = value.partition("/")
        if not sep or not task or not scorer or "/" in scorer:
            raise ValueError(f"expected TASK/SCORER (e.g. schema/json_schema), got {value!r}")
        return value

    @model_validator(mode="after")
    def _has_a_check(self) -> GateRule:
        if self.min is None and self.max is None and self.non_inferiority_margin is None \
                and not self.require_significant_improvement and not self.zero_tolerance:  # fmt: skip
            raise ValueError(
                "a rule needs at least one check: min, max, non_inferiority_margin, "
                "require_significant_improvement or zero_tolerance"
            )
        return self

    @property
    def needs_baseline(self) -> bool:
        """Whether a check of this rule compares against a baseline."""
        return self.non_inferiority_margin is not None or self.require_significant_improvement

    def describe(self) -> str:
        """The rule as one line, e.g. ``schema/json_schema: mean >= 0.5, non-inferior (0.05)``."""
        parts = []
        if self.min is not None:
            parts.append(f"mean >= {self.min:g}")
        if self.max is not None:
            parts.append(f"mean <= {self.max:g}")
        if self.non_inferiority_margin is not None:
            parts.append(f"non-inferior (margin {self.non_inferiority_margin:g})")
        if self.require_significant_improvement:
            parts.append(f"significant improvement (alpha {self.alpha:g})")
        if self.zero_tolerance:
            parts.append("zero tolerance")
        if not self.higher_is_better:
            parts.append("lower is better")
        return f"{self.metric}: " + ", ".join(parts)


class GatePolicy(BaseModel):
    """The release gate's rules and the statistics settings they share."""

    model_config = ConfigDict(extra="forbid")

    rules: list[GateRule] = Field(min_length=1)
    """Every rule must pass for the gate to pass."""
    confidence: float = Field(default=0.95, gt=0, lt=1)
    """Two-sided coverage of the paired-bootstrap intervals."""
    seed: int = 0
    """Seed of the bootstrap resampling, so a gate decision is reproducible."""
    n_resamples: int = Field(default=2000, ge=1)
    """Bootstrap resamples per paired comparison."""


def _field_errors(path: Path | str, exc: ValidationError) -> str:
    lines = []
    for e in exc.errors():
        field = ".".join(str(x) for x in e["loc"]) or "<top level>"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"{path}: {field}: {msg.removeprefix('Value error, ')}")
    return "\n".join(lines)


def load_policy(path: str | Path) -> GatePolicy:
    """A :class:`GatePolicy` from YAML; :class:`GateError` names the file and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GateError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise GateError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise GateError(f"{path}: expected a mapping with a 'rules' list")
    try:
        return GatePolicy.model_validate(data)
    except ValidationError as exc:
        raise GateError(_field_errors(path, exc)) from None


# --- results -------------------------------------------------------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)


class _SampleScore(_Loose):
    value: float = Field(allow_inf_nan=False)
    passed: bool | None = None


class _Sample(_Loose):
    id: str
    scores: dict[str, _SampleScore] = {}


class _Metric(_Loose):
    mean: float | None = None  # None (or NaN): the scorecard had no values to average
    low: float | None = None
    high: float | None = None
    n: int | None = None


class _Task(_Loose):
    metrics: dict[str, _Metric] = {}
    samples: list[_Sample] = []
    security: dict[str, Any] | None = None


class _Results(_Loose):
    tasks: dict[str, _Task]


def _parse(data: Any, source: str) -> _Results:
    if not isinstance(data, dict):
        raise GateError(f"{source}: expected a JSON object with a 'tasks' mapping")
    try:
        return _Results.model_validate(data)
    except ValidationError as exc:
        raise GateError(_field_errors(source, exc)) from None


def load_results(path: str | Path) -> dict:
    """A scorecard's ``results.json`` as a dict, checked for the fields the gate reads.

    :class:`GateError` names the file and the field (e.g. ``tasks.schema.samples.3.id``).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GateError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise GateError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    _parse(data, str(path))
    return data


# --- report --------------------------------------------------------------------------


class RuleResult(BaseModel):
    """What one rule found; numbers are None where a check did not apply or ran on nothing."""

    rule: str
    """The rule as one line (:meth:`GateRule.describe`)."""
    metric: str
    """``TASK/SCORER``."""
    passed: bool
    """Whether every check of the rule passed."""
    missing: bool = False
    """The metric is absent from the candidate (or the needed baseline) results."""
    candidate_mean: float | None = None
    """The candidate's mean (from ``metrics``, else from the samples)."""
    candidate_low: float | None = None
    """Lower bound of the candidate mean's interval, as the scorecard reported it."""
    candidate_high: float | None = None
    """Upper bound of that interval."""
    baseline_mean: float | None = None
    """The baseline's mean, as the scorecard reported it."""
    difference: float | None = None
    """Mean paired improvement (candidate − baseline; flipped for lower-is-better)."""
    difference_low: float | None = None
    """Lower bound of the paired-bootstrap interval of the improvement."""
    difference_high: float | None = None
    """Upper bound of that interval."""
    p_value: float | None = None
    """Paired-bootstrap two-sided p-value of the improvement."""
    mcnemar_p: float | None = None
    """McNemar p-value, when every paired score is pass/fail."""
    n_paired: int | None = None
    """Sample ids scored in both runs."""
    unmatched_candidate: int = 0
    """Candidate sample ids the baseline lacks (left out of the paired checks)."""
    unmatched_baseline: int = 0
    """Baseline sample ids the candidate lacks."""
    failing_ids: list[str] = []
    """Zero tolerance: the candidate samples that did not pass."""
    message: str = ""
    """What passed or failed, in words."""


class GateReport(BaseModel):
    """The gate's verdict: one :class:`RuleResult` per policy rule, in policy order."""

    passed: bool
    """True when every rule passed."""
    rules: list[RuleResult]
    """One result per rule."""
    candidate: str | None = None
    """The candidate model's name, from its results."""
    baseline: str | None = None
    """The baseline model's name, or None when gated without one."""

    @property
    def failed(self) -> list[RuleResult]:
        """The rules that failed."""
        return [r for r in self.rules if not r.passed]


# --- evaluation ----------------------------------------------------------------------


def _scores(task: _Task, scorer: str) -> dict[str, _SampleScore]:
    """Sample id -> score; repeated ids (several epochs) keep the mean value."""
    grouped: dict[str, list[_SampleScore]] = {}
    for sample in task.samples:
        if scorer in sample.scores:
            grouped.setdefault(sample.id, []).append(sample.scores[scorer])
    merged = {}
    for sid, scores in grouped.items():
        passes = [s.passed for s in scores]
        passed = None if None in passes else all(passes)
        merged[sid] = _SampleScore(value=sum(s.value for s in scores) / len(scores), passed=passed)
    return merged


def _lookup(results: _Results, metric: str) -> tuple[_Metric | None, dict[str, _SampleScore], str]:
    """The metric summary, the per-sample scores, and why they are missing ('' if not)."""
    task_name, _, scorer = metric.partition("/")
    task = results.tasks.get(task_name)
    if task is None:
        return None, {}, f"task {task_name!r} not in results"
    summary, scores = task.metrics.get(scorer), _scores(task, scorer)
    if summary is None and not scores:
        return None, {}, f"scorer {scorer!r} not in task {task_name!r}"
    if (summary is None or _finite(summary.mean) is None) and scores:
        values = [s.value for s in scores.values()]
        summary = _Metric(mean=sum(values) / len(values), n=len(values))
    return summary, scores, ""


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _outcome(score: _SampleScore) -> bool | None:
    """Pass/fail of a sample: its verdict, else a 0/1 value (an errored sample scores 0)."""
    if score.passed is not None:
        return score.passed
    return score.value == 1 if score.value in (0.0, 1.0) else None


def _sample_failed(score: _SampleScore, higher_is_better: bool) -> bool:
    if score.passed is not None:
        return not score.passed
    return score.value < 1 if higher_is_better else score.value > 0


def _check_bounds(rule: GateRule, mean: float | None, notes: list[str]) -> bool:
    ok = True
    if rule.min is not None and not (mean is not None and mean >= rule.min):
        ok = False
        notes.append(f"mean {_fmt(mean)} < min {rule.min:g}")
    if rule.max is not None and not (mean is not None and mean <= rule.max):
        ok = False
        notes.append(f"mean {_fmt(mean)} > max {rule.max:g}")
    return ok


def _check_zero_tolerance(
    rule: GateRule, task: _Task, scores: dict[str, _SampleScore], result: RuleResult, notes: list
) -> bool:
    failing = [sid for sid, s in scores.items() if _sample_failed(s, rule.higher_is_better)]
    if task.security:  # the security pack's own verdict counts too
        failing += [str(i) for i in task.security.get("zero_tolerance_failures") or []]
    result.failing_ids = list(dict.fromkeys(failing))
    if not scores and not task.security:
        notes.append("zero tolerance: no samples to check")
        return False
    if result.failing_ids:
        shown = ", ".join(result.failing_ids[:10]) + (
            " ..." if len(result.failing_ids) > 10 else ""
        )
        notes.append(f"zero tolerance: {len(result.failing_ids)} sample(s) failed: {shown}")
        return False
    return True


def _check_paired(
    rule: GateRule,
    cand: dict[str, _SampleScore],
    base: dict[str, _SampleScore],
    policy: GatePolicy,
    result: RuleResult,
    notes: list[str],
) -> bool:
    ids = [sid for sid in cand if sid in base]
    result.n_paired = len(ids)
    result.unmatched_candidate = len(cand) - len(ids)
    result.unmatched_baseline = len(base) - len(ids)
    if result.unmatched_candidate or result.unmatched_baseline:
        notes.append(f"{result.unmatched_candidate} candidate / {result.unmatched_baseline} "
                     "baseline sample id(s) unmatched, left out")  # fmt: skip
    if not ids:
        notes.append("no sample ids in common with the baseline: nothing to compare")
        return False
    c, b = [cand[i].value for i in ids], [base[i].value for i in ids]
    stats = {
        "confidence": policy.confidence,
        "seed": policy.seed,
        "n_resamples": policy.n_resamples,
    }
    ok = True
    if rule.non_inferiority_margin is not None:
        ni = non_inferior(
            c, b, rule.non_inferiority_margin, higher_is_better=rule.higher_is_better, **stats
        )
        result.difference, result.difference_low, result.difference_high = (
            ni.difference,
            ni.low,
            ni.high,
        )
        if not ni.passed:
            ok = False
            notes.append(f"inferior: improvement CI low {ni.low:+.3f} <= -margin "
                         f"{-rule.non_inferiority_margin:+.3f}")  # fmt: skip
    if rule.require_significant_improvement:
        ok &= _check_significance(rule, ids, cand, base, stats, result, notes)
    return ok


def _check_significance(
    rule: GateRule,
    ids: list[str],
    cand: dict[str, _SampleScore],
    base: dict[str, _SampleScore],
    stats: dict[str, Any],
    result: RuleResult,
    notes: list[str],
) -> bool:
    first, second = (cand, base) if rule.higher_is_better else (base, cand)
    pb = paired_bootstrap([first[i].value for i in ids], [second[i].value for i in ids], **stats)
    result.difference, result.difference_low, result.difference_high = (
        pb.difference,
        pb.low,
        pb.high,
    )
    result.p_value = pb.p_value
    ok = pb.difference > 0 and pb.p_value < rule.alpha
    pass_fail = [(_outcome(first[i]), _outcome(second[i])) for i in ids]
    if all(x is not None and y is not None for x, y in pass_fail):
        mc = mcnemar([x for x, _ in pass_fail], [y for _, y in pass_fail])
        result.mcnemar_p = mc.p_value
        ok = ok and mc.p_value < rule.alpha
    if not ok:
        p = f"p {pb.p_value:.3g}" + (
            f", McNemar p {result.mcnemar_p:.3g}" if result.mcnemar_p is not None else ""
        )
        notes.append(
            f"improvement {pb.difference:+.3f} not significant ({p}, alpha {rule.alpha:g})"
        )
    return ok


def _evaluate_rule(
    rule: GateRule, cand: _Results, base: _Results | None, policy: GatePolicy
) -> RuleResult:
    result = RuleResult(rule=rule.describe(), metric=rule.metric, passed=False)
    summary, scores, why = _lookup(cand, rule.metric)
    if summary is None:
        result.missing = True
        result.message = f"missing: {why} (candidate)"
        return result
    result.candidate_mean = _finite(summary.mean)
    result.candidate_low, result.candidate_high = _finite(summary.low), _finite(summary.high)
    notes: list[str] = []
    ok = _check_bounds(rule, result.candidate_mean, notes)
    if rule.zero_tolerance:
        ok &= _check_zero_tolerance(
            rule, cand.tasks[rule.metric.partition("/")[0]], scores, result, notes
        )
    if rule.needs_baseline:
        ok &= _compare(rule, scores, base, policy, result, notes)
    result.passed = bool(ok)
    result.message = "; ".join(notes) if notes else "ok"
    return result


def _compare(
    rule: GateRule,
    scores: dict[str, _SampleScore],
    base: _Results | None,
    policy: GatePolicy,
    result: RuleResult,
    notes: list[str],
) -> bool:
    if base is None:
        notes.append("needs --baseline (a paired comparison without a baseline cannot pass)")
        return False
    base_summary, base_scores, why = _lookup(base, rule.metric)
    if base_summary is None:
        result.missing = True
        notes.append(f"missing: {why} (baseline)")
        return False
    result.baseline_mean = _finite(base_summary.mean)
    return _check_paired(rule, scores, base_scores, policy, result, notes)


def _model_name(results: _Results) -> str | None:
    model = (results.model_extra or {}).get("model")
    return model.get("name") if isinstance(model, dict) else None


def evaluate_gate(candidate: dict, baseline: dict | None, policy: GatePolicy) -> GateReport:
    """Check every rule of ``policy`` on the candidate's results (against the baseline's).

    Both are ``results.json`` dicts as the scorecard writes them. A malformed one raises
    :class:`GateError`; a missing metric or baseline only fails the rules that need it.
    """
    cand = _parse(candidate, "candidate results")
    base = None if baseline is None else _parse(baseline, "baseline results")
    rules = [_evaluate_rule(rule, cand, base, policy) for rule in policy.rules]
    return GateReport(
        passed=all(r.passed for r in rules),
        rules=rules,
        candidate=_model_name(cand),
        baseline=None if base is None else _model_name(base),
    )


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"
