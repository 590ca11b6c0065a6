"""``tuneloop eval`` on the real default model, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def tuneloop_eval(out: Path, cache: Path) -> subprocess.CompletedProcess:
    args = ["eval", "configs/eval/default.yaml", "--model", "smollm2-135m-instruct",
            "-o", str(out), "--limit", "3", "--cache", str(cache)]  # fmt: skip
    return subprocess.run([sys.executable, "-m", "tuneloop.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


def open_in_chromium(path: Path) -> dict:
    """Load a report in headless Chromium: its title, headings and how many plots rendered."""
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("no chromium on PATH: install chromium (make test does it)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(path.resolve().as_uri())
            return {
                "title": page.title(),
                "h2": page.locator("h2").all_inner_texts(),
                # A plot counts when the browser decoded it (naturalWidth > 0).
                "plots": page.evaluate("[...document.images].filter(i => i.naturalWidth > 0).length"),
            }
        finally:
            browser.close()


def test_default_scorecard_runs_and_reruns_from_the_cache(default_model_dir, tmp_path: Path):
    first = tuneloop_eval(tmp_path / "a", tmp_path / "cache.db")
    assert first.returncode == 0, first.stderr
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert set(results["tasks"]) == {"schema", "schema_runtime", "tool_use", "grounding", "refusal", "ifeval",
                                     "security", "agent", "suites", "pairwise", "rubric"}  # fmt: skip
    ran = {k: t for k, t in results["tasks"].items() if "skipped" not in t}
    assert all(task["n"] == 3 for task in ran.values())
    # Pairwise needs --baseline; the run says so instead of failing.
    assert "baseline" in results["tasks"]["pairwise"]["skipped"]
    # The agent task: 2 attempts per sample, executed tool calls recorded, pass@k reported.
    agent = results["tasks"]["agent"]
    assert {"agent_success", "pass@1", "pass@2", "pass^2"} <= set(agent["metrics"])
    assert all(len(s["attempts"]) == 2 for s in agent["samples"])
    assert any(s.get("tool_calls") for s in agent["samples"])
    assert results["cache"]["misses"] >= 18 and results["cache"]["hits"] == 0
    assert "security gate" in first.stdout
    report = open_in_chromium(tmp_path / "a" / "report.html")
    assert report["title"] == "Scorecard default"
    assert any(h.startswith("agent") for h in report["h2"])
    assert report["plots"] >= len(ran) + 1  # a length histogram per task, metric bars
    suites = results["tasks"]["suites"]  # layer B through lm-eval, per-sample scores kept
    assert suites["layer"] == "B" and len(suites["samples"]) == 3
    assert "tuneloop_arithmetic/exact_match_last-number" in suites["metrics"]
    second = tuneloop_eval(tmp_path / "b", tmp_path / "cache.db")
    assert second.returncode == 0, second.stderr
    again = json.loads((tmp_path / "b" / "results.json").read_text())
    assert again["cache"]["misses"] == 0
    assert again["cache"]["hits"] == results["cache"]["misses"]
    assert {k: t["samples"] for k, t in again["tasks"].items()} == {
        k: t["samples"] for k, t in results["tasks"].items()
    }


def test_pairwise_against_itself_is_all_ties_on_the_real_model(default_model_dir, tmp_path: Path):
    """Model and baseline are the same weights, so both answers are the same text and the
    two orders show the judge the very same prompt: whatever it says, the pair is a
    tie. The baseline's run folder and the paired differences (all 0) are written."""
    (tmp_path / "card.yaml").write_text(
        "name: judged\ntasks:\n"
        f"  - name: pairwise\n    layer: C\n    files: [{ROOT}/data/eval/judged/open.jsonl]\n"
        "    judge: {mode: pairwise, max_new_tokens: 48}\n    max_new_tokens: 48\n    limit: 2\n"
        f"  - name: refusal\n    layer: A\n    files: [{ROOT}/data/eval/refusal.jsonl]\n"
        "    scorers: [refusal]\n    max_new_tokens: 48\n    limit: 2\n"
    )
    args = ["eval", str(tmp_path / "card.yaml"), "--model", "smollm2-135m-instruct",
            "--baseline", "smollm2-135m-instruct", "-o", str(tmp_path / "out"),
            "--cache", str(tmp_path / "cache.db")]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "tuneloop.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    pairwise = results["tasks"]["pairwise"]
    assert [s["scores"]["win_rate"]["value"] for s in pairwise["samples"]] == [0.5, 0.5]
    assert all(s["output"] == s["baseline_output"] for s in pairwise["samples"])
    assert pairwise["pairwise"]["ties"] == 2
    assert results["judge"]["name"] == "smollm2-135m-instruct"
    assert results["comparison"]["refusal/refusal"]["difference"] == 0.0
    assert (tmp_path / "out" / "baseline" / "results.json").is_file()
