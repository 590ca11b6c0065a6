"""``tuneloop eval`` on the real default model, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
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


def test_default_scorecard_runs_and_reruns_from_the_cache(default_model_dir, tmp_path: Path):
    first = tuneloop_eval(tmp_path / "a", tmp_path / "cache.db")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "a" / "report.html").is_file()
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert set(results["tasks"]) == {"schema", "tool_use", "grounding", "refusal", "ifeval",
                                     "security"}  # fmt: skip
    assert all(task["n"] == 3 for task in results["tasks"].values())
    assert results["cache"]["misses"] == 18 and results["cache"]["hits"] == 0
    assert "security gate" in first.stdout

    second = tuneloop_eval(tmp_path / "b", tmp_path / "cache.db")
    assert second.returncode == 0, second.stderr
    again = json.loads((tmp_path / "b" / "results.json").read_text())
    assert again["cache"]["misses"] == 0
    assert again["cache"]["hits"] == 18
    assert {k: t["samples"] for k, t in again["tasks"].items()} == {
        k: t["samples"] for k, t in results["tasks"].items()
    }
