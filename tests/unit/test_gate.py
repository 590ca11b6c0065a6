"""The release gate: hand-built results dicts in, rule verdicts and exit codes out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuneloop.cli import app
from tuneloop.eval.gate import GateError, GatePolicy, evaluate_gate, load_policy, load_results

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "configs" / "eval" / "gate.yaml"
TASKS = {  # task -> scorer of the default scorecard
    "schema": "json_schema",
    "schema_runtime": "json_schema",
    "tool_use": "tool_call",
    "grounding": "grounding",
    "refusal": "refusal",
    "ifeval": "ifeval_loose",
    "security": "security",
}


def task(scorer: str, passes: list[bool], prefix: str = "s", security: bool = False) -> dict:
    """One task's results: sample ``{prefix}{i}`` passed iff ``passes[i]``."""
    samples = [
        {"id": f"{prefix}{i}", "category": None, "output": "",
         "scores": {scorer: {"value": float(ok), "passed": ok, "explanation": ""}}}
        for i, ok in enumerate(passes)
    ]  # fmt: skip
    mean = sum(passes) / len(passes) if passes else float("nan")
    out = {"layer": "capability", "n": len(passes), "errors": 0, "categories": {},
           "metrics": {scorer: {"mean": mean, "low": mean, "high": mean, "n": len(passes)}},
           "samples": samples}  # fmt: skip
    if security:
        failed = [s["id"] for s in samples if not s["scores"][scorer]["passed"]]
        out["security"] = {"total": len(passes), "passed": sum(passes), "failed": len(failed),
                           "by_category": {}, "by_owasp": {}, "zero_tolerance_failures": failed,
                           "gate": "block" if failed else "pass"}  # fmt: skip
    return out


def results(tasks: dict[str, dict], name: str = "m") -> dict:
    return {"scorecard": "default", "model": {"name": name, "fingerprint": None},
            "created": "2025-01-01T00:00:00+00:00", "cache": {}, "tasks": tasks}  # fmt: skip


def scorecard(passes: list[bool], **overrides: list[bool]) -> dict:
    """Results for every default task, each with ``passes`` unless overridden."""
    return results({t: task(s, overrides.get(t, passes), security=t == "security")
                    for t, s in TASKS.items()})  # fmt: skip


def policy(*rules: dict, **settings) -> GatePolicy:
    return GatePolicy.model_validate({"rules": list(rules), **settings})


def gate_cli(tmp_path: Path, cand: dict, base: dict | None, policy_path: Path, *extra: str):
    (tmp_path / "cand.json").write_text(json.dumps(cand))
    args = ["gate", str(tmp_path / "cand.json")]
    if base is not None:
        (tmp_path / "base.json").write_text(json.dumps(base))
        args.append(str(tmp_path / "base.json"))
    return CliRunner().invoke(app, [*args, "--policy", str(policy_path), *extra])


MIXED = [True, True, False, True, False, True, True, False, True, True]  # mean 0.7


def test_shipped_policy_loads_and_passes_results_against_themselves():
    """Identical runs: every paired difference is 0, so each interval is [0, 0] and
    0 > -margin for every margin > 0; the mins (0.25, 0.05) sit below 0.7."""
    rules = load_policy(SHIPPED)
    assert {r.metric for r in rules.rules} == {f"{t}/{s}" for t, s in TASKS.items()}
    report = evaluate_gate(scorecard(MIXED), scorecard(MIXED), rules)
    assert report.passed, [r.message for r in report.failed]
    for r in report.rules:
        assert (r.difference, r.difference_low, r.difference_high) == (0, 0, 0)
        assert r.n_paired == 10 and r.unmatched_candidate == r.unmatched_baseline == 0


def test_broken_schema_candidate_fails_that_rule_and_the_cli_exits_1(tmp_path):
    """All JSON invalid: improvement -0.7 on every resample of the 7 passing ids' pairs
    is far below -0.05, so only schema/json_schema fails."""
    cand = scorecard(MIXED, schema=[False] * 10)
    report = evaluate_gate(cand, scorecard(MIXED), load_policy(SHIPPED))
    assert not report.passed
    assert [r.metric for r in report.failed] == ["schema/json_schema"]
    assert report.failed[0].difference == pytest.approx(-0.7)
    assert "inferior" in report.failed[0].message

    res = gate_cli(tmp_path, cand, scorecard(MIXED), SHIPPED)
    assert res.exit_code == 1, res.output
    assert "FAIL  schema/json_schema" in res.output
    assert "gate: FAIL (1 of 7 rules failed)" in res.output

    ok = gate_cli(tmp_path, scorecard(MIXED), scorecard(MIXED), SHIPPED)
    assert ok.exit_code == 0, ok.output
    assert "gate: PASS" in ok.output


def test_json_output(tmp_path):
    res = gate_cli(tmp_path, scorecard(MIXED), scorecard(MIXED), SHIPPED, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["passed"] is True and len(data["rules"]) == len(TASKS) and data["candidate"] == "m"


def test_min_and_max():
    """Mean 0.7: min 0.5 and max 0.8 pass; min 0.75 and max 0.6 fail."""
    cand = results({"schema": task("json_schema", MIXED)})
    ok = evaluate_gate(cand, None, policy({"metric": "schema/json_schema", "min": 0.5, "max": 0.8}))
    assert ok.passed and ok.rules[0].candidate_mean == pytest.approx(0.7)
    low = evaluate_gate(cand, None, policy({"metric": "schema/json_schema", "min": 0.75}))
    assert not low.passed and "< min 0.75" in low.rules[0].message
    high = evaluate_gate(cand, None, policy({"metric": "schema/json_schema", "max": 0.6}))
    assert not high.passed and "> max 0.6" in high.rules[0].message


def test_zero_tolerance_lists_failing_ids():
    cand = results({"security": task("security", MIXED, security=True)})
    report = evaluate_gate(
        cand, None, policy({"metric": "security/security", "zero_tolerance": True})
    )
    assert not report.passed
    assert report.rules[0].failing_ids == ["s2", "s4", "s7"]
    assert "3 sample(s) failed: s2, s4, s7" in report.rules[0].message
    clean = results({"security": task("security", [True] * 5, security=True)})
    assert evaluate_gate(
        clean, None, policy({"metric": "security/security", "zero_tolerance": True})
    ).passed


def test_zero_tolerance_counts_the_security_pack_verdict():
    """A case the pack blocked on counts even when its sample score is missing."""
    cand = results({"security": task("security", [True] * 3, security=True)})
    cand["tasks"]["security"]["security"]["zero_tolerance_failures"] = ["inj-9"]
    report = evaluate_gate(
        cand, None, policy({"metric": "security/security", "zero_tolerance": True})
    )
    assert not report.passed and report.rules[0].failing_ids == ["inj-9"]


def test_significant_improvement_40_of_50_vs_20_of_50():
    """Candidate passes ids 0-39, baseline 0-19: 20 discordant pairs all in the
    candidate's favour (b=20, c=0), difference +0.4. Exact McNemar: 2 / 2^20 ≈ 1.9e-6;
    no bootstrap resample of 50 pairs with 20 ones has mean <= 0 in practice, p = 0."""
    rule = {"metric": "tool_use/tool_call", "require_significant_improvement": True}
    better = results({"tool_use": task("tool_call", [i < 40 for i in range(50)])})
    worse = results({"tool_use": task("tool_call", [i < 20 for i in range(50)])})
    report = evaluate_gate(better, worse, policy(rule))
    r = report.rules[0]
    assert report.passed, r.message
    assert r.difference == pytest.approx(0.4) and r.p_value < 0.05
    assert r.mcnemar_p == pytest.approx(2 / 2**20)
    same = evaluate_gate(worse, worse, policy(rule))
    assert not same.passed and "not significant" in same.rules[0].message
    assert same.rules[0].p_value == 1.0
    backwards = evaluate_gate(worse, better, policy(rule))
    assert not backwards.passed


def test_unmatched_ids_are_reported_and_left_out():
    """Candidate s0-s9, baseline s5-s14: 5 paired (s5-s9), 5 unmatched on each side."""
    cand = results({"schema": task("json_schema", [True] * 10)})
    base_samples = task("json_schema", [True] * 15)
    base_samples["samples"] = base_samples["samples"][5:]
    base = results({"schema": base_samples})
    report = evaluate_gate(
        cand, base, policy({"metric": "schema/json_schema", "non_inferiority_margin": 0.05})
    )
    r = report.rules[0]
    assert report.passed
    assert (r.n_paired, r.unmatched_candidate, r.unmatched_baseline) == (5, 5, 5)
    assert "5 candidate / 5 baseline sample id(s) unmatched" in r.message


def test_no_ids_in_common_fails():
    cand = results({"schema": task("json_schema", [True] * 4, prefix="a")})
    base = results({"schema": task("json_schema", [True] * 4, prefix="b")})
    report = evaluate_gate(
        cand, base, policy({"metric": "schema/json_schema", "non_inferiority_margin": 0.05})
    )
    assert not report.passed and report.rules[0].n_paired == 0
    assert "no sample ids in common" in report.rules[0].message


def test_missing_task_or_scorer_fails_the_rule_not_the_gate_run():
    cand = results({"schema": task("json_schema", MIXED)})
    rules = policy({"metric": "ifeval/ifeval_loose", "min": 0.1}, {"metric": "schema/exact_match", "min": 0.1},
                   {"metric": "schema/json_schema", "min": 0.1})  # fmt: skip
    report = evaluate_gate(cand, None, rules)
    missing_task, missing_scorer, fine = report.rules
    assert missing_task.missing and missing_task.message.startswith("missing: task 'ifeval'")
    assert missing_scorer.missing and "scorer 'exact_match'" in missing_scorer.message
    assert fine.passed and not report.passed


def test_metric_missing_from_baseline_fails():
    cand = results({"schema": task("json_schema", MIXED)})
    base = results({"grounding": task("grounding", MIXED)})
    report = evaluate_gate(
        cand, base, policy({"metric": "schema/json_schema", "non_inferiority_margin": 0.1})
    )
    assert not report.passed and report.rules[0].missing
    assert "(baseline)" in report.rules[0].message


def test_baseline_rule_without_baseline_fails(tmp_path):
    report = evaluate_gate(scorecard(MIXED), None, load_policy(SHIPPED))
    assert not report.passed and len(report.failed) == len(TASKS)
    assert all("needs --baseline" in r.message for r in report.failed)
    res = gate_cli(tmp_path, scorecard(MIXED), None, SHIPPED)
    assert res.exit_code == 1 and "needs --baseline" in res.output


def test_bad_policy_exits_2_naming_file_and_field(tmp_path):
    bad = tmp_path / "gate.yaml"
    bad.write_text("rules:\n  - metric: schema/json_schema\n    min: 0.5\n    minn: 0.6\n")
    with pytest.raises(GateError, match=r"gate\.yaml: rules\.0\.minn: unknown key"):
        load_policy(bad)
    res = gate_cli(tmp_path, scorecard(MIXED), None, bad)
    assert res.exit_code == 2
    assert "gate.yaml" in res.output and "rules.0.minn: unknown key" in res.output


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("rules: []\n", "rules: List should have at least 1 item"),
        ("rules:\n  - metric: schema\n    min: 0.1\n", "rules.0.metric: expected TASK/SCORER"),
        ("rules:\n  - metric: schema/json_schema\n", "rules.0: a rule needs at least one check"),
        ("rules: [\n", "not valid YAML"),
    ],
)
def test_policy_errors(tmp_path, text, match):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(GateError, match=match):
        load_policy(path)


def test_bad_results_file_exits_2_naming_file_and_field(tmp_path):
    cand = scorecard(MIXED)
    del cand["tasks"]["schema"]["samples"][3]["id"]
    res = gate_cli(tmp_path, cand, None, SHIPPED)
    assert res.exit_code == 2
    assert "cand.json: tasks.schema.samples.3.id: Field required" in res.output
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(GateError, match=r"broken\.json:1: not valid JSON"):
        load_results(tmp_path / "broken.json")
    res = CliRunner().invoke(app, ["gate", str(tmp_path / "nope.json"), "--policy", str(SHIPPED)])
    assert res.exit_code == 2 and "nope.json: cannot read" in res.output


def test_lower_is_better_flips_the_improvement():
    """Latency-like scores: candidate 1.0 everywhere, baseline 2.0 → improvement +1."""

    def lat(v: float) -> dict:
        t = task("latency", [True] * 4)
        for s in t["samples"]:
            s["scores"]["latency"] = {"value": v, "passed": None, "explanation": ""}
        t["metrics"]["latency"]["mean"] = v
        return results({"perf": t})

    rule = {"metric": "perf/latency", "non_inferiority_margin": 0.1, "higher_is_better": False}
    assert evaluate_gate(lat(1.0), lat(2.0), policy(rule)).rules[0].difference == pytest.approx(1.0)
    assert not evaluate_gate(lat(2.0), lat(1.0), policy(rule)).passed


def test_runner_shapes_null_means_and_errored_samples():
    """The runner writes a null mean for an empty metric and value 0 / passed null for an
    errored sample: the mean falls back to the samples, (1 + 0) / 2 = 0.5, and the errored
    sample counts as failed for zero tolerance and as a fail for McNemar."""
    t = task("json_schema", [True, True])
    t["metrics"]["json_schema"] = {"mean": None, "low": None, "high": None, "n": 0}
    t["samples"][1]["scores"]["json_schema"] = {
        "value": 0.0,
        "passed": None,
        "explanation": "error: x",
    }
    cand = results({"schema": t})
    rules = policy({"metric": "schema/json_schema", "min": 0.5, "zero_tolerance": True})
    r = evaluate_gate(cand, None, rules).rules[0]
    assert r.candidate_mean == pytest.approx(0.5) and r.failing_ids == ["s1"]
    sig = policy({"metric": "schema/json_schema", "require_significant_improvement": True})
    assert evaluate_gate(cand, cand, sig).rules[0].mcnemar_p == 1.0
