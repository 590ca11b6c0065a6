"""Run a scorecard: solve every task, score every sample, write the run folder.

::

    card = load_scorecard("configs/eval/default.yaml")
    results = run_scorecard(card, model, out_dir=Path("runs/eval"), cache=OutputCache(db))

The run folder holds ``results.json`` (the shape the release gate reads, see
:func:`run_scorecard`), ``report.html`` (self-contained), ``config.yaml`` (the resolved
scorecard) and ``manifest.json`` (model, versions, time, sample counts).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import platform
import time
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import yaml

from tuneloop.data.io import atomic_path
from tuneloop.data.records import EvalSample
from tuneloop.eval import security
from tuneloop.eval.cache import CachedModel, OutputCache, model_fingerprint
from tuneloop.eval.scoring import Completion, Score, get_scorer
from tuneloop.eval.solvers import solve, task_messages
from tuneloop.eval.stats import bootstrap_ci, paired_bootstrap, pass_at_k, pass_hat_k
from tuneloop.eval.tasks import Scorecard, TaskSpec, load_samples, sample_category
from tuneloop.runtime.types import ChatModel


def _num(x: float) -> float | None:
    """JSON has no NaN: an empty statistic is written as null."""
    return None if math.isnan(x) else float(x)


def _metric(values: list[float]) -> dict[str, Any]:
    ci = bootstrap_ci(values)
    return {"mean": _num(ci.estimate), "low": _num(ci.low), "high": _num(ci.high), "n": ci.n}


def _score_one(name: str, sample: EvalSample, completion: Completion) -> Score | None:
    """The scorer's verdict; None when the scorer rejects the sample (ValueError)."""
    try:
        return get_scorer(name)(sample, completion)
    except ValueError as exc:
        completion.metadata.setdefault("scorer_errors", {})[name] = str(exc)
        return None


def _score_attempts(
    task: TaskSpec, sample: EvalSample, completions: list[Completion]
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], int, Score | None]:
    """Scores of one sample over its attempts: the merged row scores (mean value;
    passed only when every attempt passed), the per-attempt rows, the scorer error
    count, and the first scorer's merged verdict (for the security summary)."""
    per_attempt: list[dict[str, dict[str, Any]]] = []
    errors = 0
    for completion in completions:
        scores: dict[str, dict[str, Any]] = {}
        for name in task.scorers:
            score = _score_one(name, sample, completion)
            if score is None:
                errors += 1
                why = completion.metadata["scorer_errors"][name]
                scores[name] = {"value": 0.0, "passed": None, "explanation": f"error: {why}",
                                "error": True}  # fmt: skip
            else:
                scores[name] = {"value": float(score.value), "passed": score.passed,
                                "explanation": score.explanation}  # fmt: skip
        per_attempt.append(scores)
    merged: dict[str, dict[str, Any]] = {}
    for name in task.scorers:
        got = [a[name] for a in per_attempt]
        if any(g.get("error") for g in got):
            first_error = next(g for g in got if g.get("error"))
            merged[name] = dict(first_error)
            continue
        passes = [g["passed"] for g in got]
        passed = None if None in passes else all(passes)
        explanation = got[0]["explanation"]
        if len(got) > 1 and passed is not None:
            explanation += f" ({sum(passes)}/{len(got)} attempts passed)"
        merged[name] = {"value": sum(g["value"] for g in got) / len(got), "passed": passed,
                        "explanation": explanation}  # fmt: skip
    verdict = None
    if task.scorers:
        first = merged[task.scorers[0]]
        verdict = Score(value=first["value"], passed=bool(first["passed"]),
                        explanation=first["explanation"])  # fmt: skip
    rows = [{"output": c.text, "scores": {k: {f: v for f, v in sc.items() if f != "error"}
                                          for k, sc in a.items()}}
            for c, a in zip(completions, per_attempt, strict=True)]  # fmt: skip
    return merged, rows, errors, verdict


def _pass_k(task: TaskSpec, attempt_rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``pass@k`` and ``pass^k`` of one sample from the first scorer's per-attempt passes."""
    scorer_name = task.scorers[0]
    passes = [bool(a["scores"][scorer_name]["passed"]) for a in attempt_rows]
    n, c = len(passes), sum(passes)
    out = {}
    for k in task.pass_k:
        out[f"pass@{k}"] = {"value": pass_at_k(n, c, k), "passed": None,
                            "explanation": f"{c}/{n} attempts passed {scorer_name}"}  # fmt: skip
        out[f"pass^{k}"] = {"value": pass_hat_k(n, c, k), "passed": None,
                            "explanation": f"{c}/{n} attempts passed {scorer_name}"}  # fmt: skip
    return out


def run_task(
    task: TaskSpec,
    model: ChatModel,
    *,
    baseline: ChatModel | None = None,
    judge: ChatModel | None = None,
) -> dict[str, Any]:
    """One task's entry of ``results.json``.

    A scorer raising ValueError on a sample (bad sample data) is recorded on that
    sample as value 0, passed null, explanation ``"error: ..."``; it counts in
    ``errors`` (one per sample, attempt and scorer) and is left out of the metric, so
    the other samples still score. Metrics whose every sample errored have null
    mean/low/high. With ``attempts`` > 1 each sample's value is its mean over the
    attempts, and ``pass@k`` / ``pass^k`` metrics come from the first scorer.
    Layer B goes to lm-eval (:mod:`tuneloop.eval.lmeval`); layer C to the judge
    (:func:`run_judged_task`), which needs ``judge`` (and ``baseline`` for pairwise).
    """
    if task.layer == "B":
        return run_lm_eval_task(task, model)
    samples = load_samples(task)
    if task.layer == "C":
        return run_judged_task(task, samples, model, baseline=baseline, judge=judge)
    attempts = [solve(task, model, samples, attempt=i) for i in range(task.attempts)]
    metric_names = list(task.scorers)
    if task.attempts > 1:
        metric_names += [f"{p}{k}" for k in task.pass_k for p in ("pass@", "pass^")]
    values: dict[str, list[float]] = {name: [] for name in metric_names}
    by_cat: dict[str, dict[str, list[float]]] = {}
    rows, errors = [], 0
    graded: list[tuple[EvalSample, Score]] = []
    for j, sample in enumerate(samples):
        category = sample_category(sample)
        completions = [attempt[j] for attempt in attempts]
        scores, attempt_rows, n_errors, verdict = _score_attempts(task, sample, completions)
        errors += n_errors
        if task.attempts > 1 and not scores[task.scorers[0]].get("error"):
            scores.update(_pass_k(task, attempt_rows))
        for name, score in scores.items():
            if score.pop("error", False):
                continue
            values[name].append(float(score["value"]))
            if category is not None:
                by_cat.setdefault(category, {}).setdefault(name, []).append(float(score["value"]))
        if verdict is not None:
            graded.append((sample, verdict))
        row: dict[str, Any] = {"id": sample.id, "category": category,
                               "output": completions[0].text, "scores": scores}  # fmt: skip
        if completions[0].tool_calls:
            row["tool_calls"] = completions[0].tool_calls
        if task.attempts > 1:
            row["attempts"] = attempt_rows
        rows.append(row)
    entry = _entry(task, len(samples), errors, values, by_cat, rows)
    if task.layer == "security":
        # An errored case counts as failed: the gate must never pass on a case it
        # could not grade.
        entry["security"] = security.summarize(graded)
    return entry


def _entry(task: TaskSpec, n: int, errors: int, values: dict[str, list[float]],
           by_cat: dict[str, dict[str, list[float]]], rows: list[dict]) -> dict[str, Any]:  # fmt: skip
    return {
        "layer": task.layer,
        "n": n,
        "errors": errors,
        "metrics": {name: _metric(v) for name, v in values.items()},
        "categories": {
            cat: {name: _metric(v) for name, v in per.items()}
            for cat, per in sorted(by_cat.items())
        },
        "samples": rows,
    }


# ----------------------------------------------------------------------- layers B and C


def run_lm_eval_task(task: TaskSpec, model: ChatModel) -> dict[str, Any]:
    """Layer B: the spec's lm-eval tasks through ``model``, merged into one entry.

    Metrics are named ``LM_TASK/METRIC`` (the gate names them ``TASK/LM_TASK/METRIC``)
    and sample ids ``LM_TASK/DOC_ID``.
    """
    try:
        from tuneloop.eval import lmeval
    except ImportError as exc:
        entry = _entry(task, 0, 0, {}, {}, [])
        entry["skipped"] = f"lm-eval is not installed (pip install 'tuneloop[lmeval]'): {exc}"
        return entry
    spec = task.lm_eval
    assert spec is not None
    entries = lmeval.evaluate(model, spec.tasks, include_path=spec.include_path,
                              limit=task.limit, num_fewshot=spec.num_fewshot,
                              apply_chat_template=spec.apply_chat_template)  # fmt: skip
    merged: dict[str, Any] = {"layer": "B", "n": 0, "errors": 0, "metrics": {},
                              "categories": {}, "samples": []}  # fmt: skip
    for lm_task, entry in entries.items():
        merged["n"] += entry["n"]
        merged["errors"] += entry.get("errors", 0)
        merged["metrics"].update({f"{lm_task}/{m}": v for m, v in entry["metrics"].items()})
        for row in entry["samples"]:
            scores = {f"{lm_task}/{m}": v for m, v in row["scores"].items()}
            merged["samples"].append({**row, "id": f"{lm_task}/{row['id']}", "scores": scores})
    return merged


def run_judged_task(
    task: TaskSpec,
    samples: list[EvalSample],
    model: ChatModel,
    *,
    baseline: ChatModel | None,
    judge: ChatModel | None,
) -> dict[str, Any]:
    """Layer C. ``rubric``: the judge grades each answer (metric ``rubric``, 0..1).
    ``pairwise``: the judge compares the model's answer with the baseline's in both
    orders (metric ``win_rate``, 1 win / 0.5 tie / 0 loss per sample, plus a
    ``pairwise`` summary with the length-controlled win rate). Without a baseline a
    pairwise task is skipped: its entry says why and has no metrics."""
    from tuneloop.eval.judge import (
        PairItem,
        PairwiseJudge,
        RubricItem,
        RubricJudge,
        pairwise_summary,
    )

    spec = task.judge
    assert spec is not None
    if judge is None or (spec.mode == "pairwise" and baseline is None):
        why = "no baseline model (pass --baseline)" if judge is not None else "no judge model"
        entry = _entry(task, 0, 0, {}, {}, [])
        entry["skipped"] = why
        return entry
    completions = solve(task, model, samples)
    questions = [task_messages(task, s) for s in samples]
    rows = []
    if spec.mode == "rubric":
        rubric_judge = RubricJudge(judge, rubric=spec.rubric, max_new_tokens=spec.max_new_tokens)
        items = [RubricItem(id=s.id, question=q, answer=c.text, reference=s.reference,
                            rubric=(s.metadata.model_extra or {}).get("rubric"))
                 for s, q, c in zip(samples, questions, completions, strict=True)]  # fmt: skip
        grades = rubric_judge.grade_many(items)
        # An unreadable judge output says nothing about the answer: it is an error of
        # the sample (counted, shown), not a score of 0.
        invalid = [bool(g.metadata.get("invalid")) for g in grades]
        values = {"rubric": [g.value for g, bad in zip(grades, invalid, strict=True) if not bad]}
        for s, c, g, bad in zip(samples, completions, grades, invalid, strict=True):
            why = f"error: {g.explanation}" if bad else g.explanation
            rows.append({"id": s.id, "category": sample_category(s), "output": c.text,
                         "scores": {"rubric": {"value": g.value, "passed": None,
                                               "explanation": why}}})  # fmt: skip
        return _entry(task, len(samples), sum(invalid), values, _by_category(rows), rows)
    assert baseline is not None
    theirs = solve(task, baseline, samples)
    pair_judge = PairwiseJudge(judge, max_new_tokens=spec.max_new_tokens)
    items = [PairItem(id=s.id, question=q, answer_a=a.text, answer_b=b.text, reference=s.reference)
             for s, q, a, b in zip(samples, questions, completions, theirs, strict=True)]  # fmt: skip
    verdicts = pair_judge.judge_many(items)
    for s, a, b, v in zip(samples, completions, theirs, verdicts, strict=True):
        rows.append({"id": s.id, "category": sample_category(s), "output": a.text,
                     "baseline_output": b.text,
                     "scores": {"win_rate": {"value": v.outcome, "passed": None,
                                             "explanation": f"{v.winner} (orders: {v.first}, "
                                                            f"{v.second})"}}})  # fmt: skip
    entry = _entry(task, len(samples), 0, {"win_rate": [v.outcome for v in verdicts]},
                   _by_category(rows), rows)  # fmt: skip
    entry["pairwise"] = pairwise_summary(verdicts, [len(c.text) for c in completions],
                                         [len(c.text) for c in theirs])  # fmt: skip
    return entry


def _by_category(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        if row["category"] is not None:
            for name, score in row["scores"].items():
                if score["explanation"].startswith("error: "):
                    continue
                out.setdefault(row["category"], {}).setdefault(name, []).append(score["value"])
    return out


def run_scorecard(
    scorecard: Scorecard,
    model: ChatModel,
    *,
    out_dir: str | Path,
    cache: OutputCache | None,
    baseline: ChatModel | None = None,
    judge: ChatModel | None = None,
) -> dict[str, Any]:
    """Run every task and write the run folder; returns what ``results.json`` holds::

        {"scorecard", "model": {"name", "fingerprint"}, "created",
         "cache": {"hits", "misses", "uncacheable"},
         "judge": {"name", "fingerprint"} | None,
         "tasks": {TASK: {"layer", "n", "errors",
                          "metrics": {SCORER: {"mean", "low", "high", "n"}},
                          "categories": {CAT: {SCORER: {"mean", "low", "high", "n"}}},
                          "samples": [{"id", "category", "output",
                                       "scores": {SCORER: {"value", "passed", "explanation"}}}],
                          "security": {...},    # layer "security" only
                          "pairwise": {...},    # layer C pairwise only
                          "skipped": "why"}},   # a task that could not run
         "comparison": {...}}                   # with a baseline only

    With a cache every model (and the baseline and judge) is wrapped in
    :class:`CachedModel`, so an unchanged re-run generates nothing. Without one every
    conversation counts as ``uncacheable``.

    With a ``baseline`` the baseline runs the same scorecard first (its run folder is
    ``out_dir/baseline``), pairwise tasks compare the two, and ``comparison`` holds the
    paired difference candidate − baseline of every metric (see :func:`compare`).
    ``judge`` grades layer C (default: the baseline, else the model itself).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    fingerprint = model_fingerprint(model)

    def wrap(m: ChatModel | None) -> Any:
        return CachedModel(m, cache) if cache is not None and m is not None else m

    runner, base_runner = wrap(model), wrap(baseline)
    judge = judge or baseline or model
    judge_runner = wrap(judge)
    baseline_results = None
    if baseline is not None:
        plain = [t for t in scorecard.tasks if t.layer != "C"]
        if plain:
            baseline_card = scorecard.model_copy(update={"tasks": plain})
            baseline_results = run_scorecard(baseline_card, baseline, out_dir=out_dir / "baseline",
                                             cache=cache, judge=judge)  # fmt: skip
    tasks, timings = {}, {}
    for task in scorecard.tasks:
        task_started = time.perf_counter()
        tasks[task.name] = run_task(task, runner, baseline=base_runner, judge=judge_runner)
        timings[task.name] = round(time.perf_counter() - task_started, 3)
    total = sum(t["n"] for t in tasks.values())
    counts = {"hits": 0, "misses": 0, "uncacheable": 0}
    for r in {id(x): x for x in (runner, base_runner, judge_runner) if x is not None}.values():
        if isinstance(r, CachedModel):
            counts = {"hits": counts["hits"] + r.hits, "misses": counts["misses"] + r.misses,
                      "uncacheable": counts["uncacheable"] + r.uncacheable}  # fmt: skip
    if cache is None:
        counts["uncacheable"] = total
    results: dict[str, Any] = {
        "scorecard": scorecard.name,
        "model": {"name": _name(model), "fingerprint": fingerprint},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cache": counts,
        "tasks": tasks,
    }
    if any(t.layer == "C" for t in scorecard.tasks):
        results["judge"] = {"name": _name(judge),
                            "fingerprint": model_fingerprint(judge, strict=False)}  # fmt: skip
    if baseline_results is not None:
        results["baseline"] = {**baseline_results["model"], "results": "baseline/results.json"}
        results["comparison"] = compare(results, baseline_results)
    _write_text(out_dir / "results.json", json.dumps(results, indent=2, ensure_ascii=False,
                                                     allow_nan=False))  # fmt: skip
    _write_text(out_dir / "config.yaml", yaml.safe_dump(scorecard.model_dump(mode="json"),
                                                        sort_keys=False, allow_unicode=True))  # fmt: skip
    _write_text(out_dir / "manifest.json", json.dumps(_manifest(results, started, timings),
                                                         indent=2))  # fmt: skip
    _write_text(out_dir / "report.html", render_report(results))
    return results


def _name(model: Any) -> str:
    return str(getattr(model, "name", type(model).__name__))


def compare(candidate: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Paired differences candidate − baseline, per ``TASK/METRIC`` both results have::

        {"schema/json_schema": {"candidate", "baseline", "difference", "low", "high",
                                "p_value", "n"}}

    Samples pair by id (values of repeated ids averaged); a metric with no shared
    sample ids is left out. Intervals are paired-bootstrap 95%.
    """
    out: dict[str, Any] = {}
    for task_name, task in candidate["tasks"].items():
        other = baseline["tasks"].get(task_name)
        if other is None:
            continue
        for metric in task["metrics"]:
            mine, theirs = _per_sample(task, metric), _per_sample(other, metric)
            shared = sorted(set(mine) & set(theirs))
            if not shared:
                continue
            a = [mine[i] for i in shared]
            b = [theirs[i] for i in shared]
            paired = paired_bootstrap(a, b)
            out[f"{task_name}/{metric}"] = {
                "candidate": sum(a) / len(a), "baseline": sum(b) / len(b),
                "difference": _num(paired.difference), "low": _num(paired.low),
                "high": _num(paired.high), "p_value": _num(paired.p_value), "n": paired.n,
            }  # fmt: skip
    return out


def _per_sample(task: dict[str, Any], metric: str) -> dict[str, float]:
    grouped: dict[str, list[float]] = {}
    for row in task["samples"]:
        score = row["scores"].get(metric)
        if score is not None and not str(score.get("explanation", "")).startswith("error: "):
            grouped.setdefault(row["id"], []).append(float(score["value"]))
    return {sid: sum(v) / len(v) for sid, v in grouped.items()}


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _version(package: str) -> str | None:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return None


def _manifest(results: dict[str, Any], started: float, timings: dict[str, float]) -> dict[str, Any]:
    return {
        "scorecard": results["scorecard"],
        "model": results["model"],
        "created": results["created"],
        "wall_s": round(time.time() - started, 3),
        "versions": {
            "python": platform.python_version(),
            **{p: _version(p) for p in ("tuneloop", "torch", "transformers", "numpy")},
        },
        "cache": results["cache"],
        "samples": {name: task["n"] for name, task in results["tasks"].items()},
        "errors": {name: task["errors"] for name, task in results["tasks"].items()},
        "task_wall_s": timings,
    }


# ----------------------------------------------------------------------- the report


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return (
        f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'
    )


def _metric_plot(name: str, metrics: dict[str, dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    names = [m for m, v in metrics.items() if v["mean"] is not None]
    if not names:
        return "<p>no scored samples</p>"
    means = [metrics[m]["mean"] for m in names]
    below = [max(0.0, metrics[m]["mean"] - metrics[m]["low"]) for m in names]
    above = [max(0.0, metrics[m]["high"] - metrics[m]["mean"]) for m in names]
    fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(names), 2.6))
    ax.bar(names, means, yerr=[below, above], capsize=4, color="#4c72b0")
    ax.set_ylim(0, max(1.0, max(means) * 1.1))
    ax.set_title(f"{name}: mean with 95% CI")
    return _png(fig)


def _length_plot(name: str, samples: list[dict[str, Any]]) -> str:
    import matplotlib.pyplot as plt

    lengths = [len(s["output"]) for s in samples]
    fig, ax = plt.subplots(figsize=(4, 2.4))
    ax.hist(lengths or [0], bins=min(20, max(1, len(lengths))), color="#55a868")
    ax.set_xlabel("answer length (characters)")
    ax.set_title(f"{name}: answer lengths")
    return _png(fig)


def _fmt(m: dict[str, Any]) -> str:
    if m["mean"] is None:
        return f"– (n={m['n']})"
    return f"{m['mean']:.3f} [{m['low']:.3f}, {m['high']:.3f}] (n={m['n']})"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table; every cell is escaped here, so callers pass raw text."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _pairwise_html(summary: dict[str, Any]) -> str:
    wr, lc = summary.get("win_rate") or {}, summary.get("lc_win_rate") or {}

    def pct(d: dict[str, Any]) -> str:
        if d.get("mean") is None:
            return "–"
        return f"{d['mean']:.1f}% [{d.get('low', float('nan')):.1f}, {d.get('high', float('nan')):.1f}]"

    rows = [["wins / losses / ties", f"{summary.get('wins')} / {summary.get('losses')} / "
             f"{summary.get('ties')}"], ["win rate", pct(wr)],
            ["length-controlled win rate", pct(lc)],
            ["position consistency", f"{summary.get('position_consistency', float('nan')):.2f}"]]  # fmt: skip
    return "<h3>pairwise (judged in both orders)</h3>" + _table(["", "value"], rows)


def _comparison_html(results: dict[str, Any]) -> str:
    comparison = results.get("comparison") or {}
    if not comparison:
        return ""

    def f(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    rows = [[metric, f(c["candidate"]), f(c["baseline"]),
             f"{f(c['difference'])} [{f(c['low'])}, {f(c['high'])}]", f(c["p_value"]), str(c["n"])]
            for metric, c in comparison.items()]  # fmt: skip
    base = results.get("baseline", {})
    return (f"<h2>Candidate vs baseline <small>{html.escape(str(base.get('name')))}</small></h2>"
            + _table(["metric", "candidate", "baseline", "difference [paired 95% CI]", "p", "n"],
                     rows))  # fmt: skip


def _task_html(name: str, task: dict[str, Any]) -> str:
    e = html.escape
    if "skipped" in task:
        return f"<h2>{e(name)} <small>layer {e(task['layer'])}</small></h2><p>skipped: {e(task['skipped'])}</p>"
    parts = [f"<h2>{e(name)} <small>layer {e(task['layer'])}, n={task['n']}, "
             f"errors={task['errors']}</small></h2>",
             _metric_plot(name, task["metrics"]), _length_plot(name, task["samples"])]  # fmt: skip
    parts.append(
        _table(["metric", "mean [95% CI]"], [[m, _fmt(v)] for m, v in task["metrics"].items()])
    )
    if task["categories"]:
        scorers = list(task["metrics"])
        rows = [[cat] + [_fmt(per[s]) if s in per else "–" for s in scorers]
                for cat, per in task["categories"].items()]  # fmt: skip
        parts.append("<h3>by category</h3>" + _table(["category", *scorers], rows))
    if "pairwise" in task:
        parts.append(_pairwise_html(task["pairwise"]))
    if "security" in task:
        sec = task["security"]
        rows = [[k, str(v["total"]), str(v["passed"]), str(v["failed"])]
                for k, v in sec["by_owasp"].items()]  # fmt: skip
        parts.append(f"<h3>security by OWASP id (gate: {e(sec['gate'])})</h3>"
                     + _table(["OWASP", "total", "passed", "failed"], rows))  # fmt: skip
    rows = []
    for s in task["samples"]:
        verdicts = "; ".join(
            f"{k}={v['value']:g} {v['explanation']}" for k, v in s["scores"].items()
        )
        output = s["output"] if len(s["output"]) <= 600 else s["output"][:600] + "…"
        rows.append([s["id"], s["category"] or "", output, verdicts])
    parts.append("<details><summary>samples</summary>"
                 + _table(["id", "category", "output", "scores"], rows) + "</details>")  # fmt: skip
    return "\n".join(parts)


_CSS = """body{font-family:sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;
vertical-align:top;font-size:13px}td{white-space:pre-wrap}small{color:#666;font-weight:normal}"""


def render_report(results: dict[str, Any]) -> str:
    """``report.html`` for a ``results.json`` dict: self-contained (plots inlined as PNG),
    every piece of model text and sample data HTML-escaped."""
    import matplotlib

    matplotlib.use("Agg")
    e = html.escape
    model = results["model"]
    summary = [[name, m, _fmt(v)] for name, t in results["tasks"].items()
               for m, v in t["metrics"].items()]  # fmt: skip
    cache = ", ".join(f"{k} {v}" for k, v in results["cache"].items())
    body = [f"<h1>Scorecard {e(results['scorecard'])}</h1>",
            f"<p>model {e(str(model['name']))} (fingerprint {e(str(model['fingerprint']))}), "
            f"{e(results['created'])}; cache: {e(cache)}</p>",
            _table(["task", "metric", "mean [95% CI]"], summary), _comparison_html(results)]  # fmt: skip
    body += [_task_html(name, task) for name, task in results["tasks"].items()]
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>Scorecard '
            f"{e(results['scorecard'])}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>")  # fmt: skip
