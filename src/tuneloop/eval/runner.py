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
from tuneloop.eval.stats import bootstrap_ci
from tuneloop.eval.tasks import Scorecard, TaskSpec, load_samples, sample_category, solve
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


def run_task(task: TaskSpec, model: ChatModel) -> dict[str, Any]:
    """One task's entry of ``results.json``.

    A scorer raising ValueError on a sample (bad sample data) is recorded on that
    sample as value 0, passed null, explanation ``"error: ..."``; it counts in
    ``errors`` (one per sample and scorer) and is left out of the metric, so the other
    samples still score. Metrics whose every sample errored have null mean/low/high.
    """
    samples = load_samples(task)
    completions = solve(task, model, samples)
    values: dict[str, list[float]] = {name: [] for name in task.scorers}
    by_cat: dict[str, dict[str, list[float]]] = {}
    rows, errors = [], 0
    graded: list[tuple[EvalSample, Score]] = []
    for sample, completion in zip(samples, completions, strict=True):
        category = sample_category(sample)
        scores: dict[str, dict[str, Any]] = {}
        for k, name in enumerate(task.scorers):
            score = _score_one(name, sample, completion)
            if score is None:
                errors += 1
                why = completion.metadata["scorer_errors"][name]
                scores[name] = {"value": 0.0, "passed": None, "explanation": f"error: {why}"}
                if k == 0:
                    graded.append((sample, Score(value=0.0, passed=False, explanation=why)))
                continue
            scores[name] = {"value": float(score.value), "passed": score.passed,
                            "explanation": score.explanation}  # fmt: skip
            values[name].append(float(score.value))
            if category is not None:
                by_cat.setdefault(category, {}).setdefault(name, []).append(float(score.value))
            if k == 0:
                graded.append((sample, score))
        rows.append({"id": sample.id, "category": category, "output": completion.text,
                     "scores": scores})  # fmt: skip
    entry: dict[str, Any] = {
        "layer": task.layer,
        "n": len(samples),
        "errors": errors,
        "metrics": {name: _metric(v) for name, v in values.items()},
        "categories": {
            cat: {name: _metric(v) for name, v in per.items()}
            for cat, per in sorted(by_cat.items())
        },
        "samples": rows,
    }
    if task.layer == "security":
        # An errored case counts as failed: the gate must never pass on a case it
        # could not grade.
        entry["security"] = security.summarize(graded)
    return entry


def run_scorecard(
    scorecard: Scorecard, model: ChatModel, *, out_dir: str | Path, cache: OutputCache | None
) -> dict[str, Any]:
    """Run every task and write the run folder; returns what ``results.json`` holds::

        {"scorecard", "model": {"name", "fingerprint"}, "created",
         "cache": {"hits", "misses", "uncacheable"},
         "tasks": {TASK: {"layer", "n", "errors",
                          "metrics": {SCORER: {"mean", "low", "high", "n"}},
                          "categories": {CAT: {SCORER: {"mean", "low", "high", "n"}}},
                          "samples": [{"id", "category", "output",
                                       "scores": {SCORER: {"value", "passed", "explanation"}}}],
                          "security": {...}}}}   # layer "security" only

    With a cache the model is wrapped in :class:`CachedModel`, so an unchanged re-run
    generates nothing. Without one every conversation counts as ``uncacheable``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    fingerprint = model_fingerprint(model)
    runner: Any = CachedModel(model, cache) if cache is not None else model
    tasks = {task.name: run_task(task, runner) for task in scorecard.tasks}
    total = sum(t["n"] for t in tasks.values())
    if isinstance(runner, CachedModel):
        counts = {"hits": runner.hits, "misses": runner.misses, "uncacheable": runner.uncacheable}
    else:
        counts = {"hits": 0, "misses": 0, "uncacheable": total}
    results = {
        "scorecard": scorecard.name,
        "model": {"name": getattr(model, "name", type(model).__name__), "fingerprint": fingerprint},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cache": counts,
        "tasks": tasks,
    }
    _write_text(out_dir / "results.json", json.dumps(results, indent=2, ensure_ascii=False,
                                                     allow_nan=False))  # fmt: skip
    _write_text(out_dir / "config.yaml", yaml.safe_dump(scorecard.model_dump(mode="json"),
                                                        sort_keys=False, allow_unicode=True))  # fmt: skip
    _write_text(out_dir / "manifest.json", json.dumps(_manifest(results, started), indent=2))
    _write_text(out_dir / "report.html", render_report(results))
    return results


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _version(package: str) -> str | None:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return None


def _manifest(results: dict[str, Any], started: float) -> dict[str, Any]:
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


def _task_html(name: str, task: dict[str, Any]) -> str:
    e = html.escape
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
            _table(["task", "metric", "mean [95% CI]"], summary)]  # fmt: skip
    body += [_task_html(name, task) for name, task in results["tasks"].items()]
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>Scorecard '
            f"{e(results['scorecard'])}</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>")  # fmt: skip
