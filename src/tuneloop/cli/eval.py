"""``tuneloop eval``: run a scorecard YAML against a model and write the run folder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from tuneloop.cli._common import fail, out, user_errors


def _ci(metric: dict) -> str:
    if metric["mean"] is None or math.isnan(metric["mean"]):
        return "–"
    return f"{metric['mean']:.3f} [{metric['low']:.3f}, {metric['high']:.3f}]"


def eval_cmd(
    scorecard: Annotated[
        Path, typer.Argument(help="Scorecard YAML (e.g. configs/eval/default.yaml).")
    ],
    model: Annotated[str, typer.Option("--model", "-m", help="Model reference.")],
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", help="Baseline model: runs the scorecard too, pairwise "
                     "tasks compare the two, and results.json gets paired differences."),
    ] = None,
    judge: Annotated[
        str | None,
        typer.Option("--judge", help="Judge model for layer C (default: the baseline, else "
                     "the model itself)."),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Evaluate a model on an OpenAI-compatible server."),
    ] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="TUNELOOP_API_KEY")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Run folder (default: runs/eval/<scorecard>-<time>)."),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="Generation cache (default: $TUNELOOP_HOME/eval-cache.db)."),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Generate everything anew.")] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Samples per task (overrides every task).")
    ] = None,
) -> None:
    """Run a scorecard: generate, score, and write results.json and report.html."""
    import time

    from tuneloop.eval.cache import OutputCache
    from tuneloop.eval.runner import run_scorecard
    from tuneloop.eval.tasks import ScorecardError, load_scorecard
    from tuneloop.models.home import tuneloop_home

    if cache is not None and no_cache:
        fail("--cache and --no-cache exclude each other")
    try:
        card = load_scorecard(scorecard).with_limit(limit)
    except ScorecardError as exc:
        fail(str(exc))
    output = output or Path("runs/eval") / f"{card.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    store = None if no_cache else OutputCache(cache or tuneloop_home() / "eval-cache.db")
    def load(ref: str):
        if base_url:
            from tuneloop.runtime.backends.openai_http import OpenAIChatModel

            return OpenAIChatModel(base_url, model=ref, api_key=api_key)
        from tuneloop.runtime.backends.local import LocalEngine

        return LocalEngine.from_ref(ref)

    try:
        llm = load(model)
        base = load(baseline) if baseline else None
        judge_model = load(judge) if judge else None
        started = time.perf_counter()
        results = run_scorecard(card, llm, out_dir=output, cache=store, baseline=base,
                                judge=judge_model)  # fmt: skip
    except (ValueError, *user_errors()) as exc:
        fail(str(exc))
    finally:
        if store is not None:
            store.close()
    wall = time.perf_counter() - started
    out.print(f"{'task':<12} {'metric':<16} {'mean [95% CI]':<26} n", highlight=False)
    for name, task in results["tasks"].items():
        for metric, value in task["metrics"].items():
            out.print(f"{name:<12} {metric:<16} {_ci(value):<26} {value['n']}", highlight=False)
        if task["errors"]:
            out.print(f"{name:<12} ({task['errors']} scorer error(s))", highlight=False)
        if "skipped" in task:
            out.print(f"{name:<12} skipped: {task['skipped']}", highlight=False)
        if "pairwise" in task and task["pairwise"].get("lc_win_rate"):
            lc = task["pairwise"]["lc_win_rate"]
            out.print(f"{name:<12} length-controlled win rate {lc['mean']:.1f}% "
                      f"[{lc['low']:.1f}, {lc['high']:.1f}]", highlight=False)  # fmt: skip
        if "security" in task:
            sec = task["security"]
            out.print(f"{name:<12} security gate: {sec['gate']} ({sec['passed']}/{sec['total']} passed)",
                      highlight=False)  # fmt: skip
    for metric, c in results.get("comparison", {}).items():
        if c["difference"] is not None:
            out.print(f"vs baseline {metric:<28} {c['difference']:+.3f} "
                      f"[{c['low']:+.3f}, {c['high']:+.3f}] n={c['n']}", highlight=False)  # fmt: skip
    c = results["cache"]
    out.print(f"cache: {c['hits']} hits, {c['misses']} misses, {c['uncacheable']} uncacheable; "
              f"{wall:.1f}s", highlight=False)  # fmt: skip
    out.print(f"results: {output / 'results.json'}", highlight=False, soft_wrap=True)
    out.print(f"report:  {output / 'report.html'}", highlight=False, soft_wrap=True)
