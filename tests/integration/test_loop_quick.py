"""`tuneloop loop configs/loop/quick.yaml` on the real default model: every stage runs
in its own process and leaves its folder, the report opens in a real browser, the exit
code is the gate's verdict, and a resume skips everything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_eval_default_model import open_in_chromium

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STAGES = [
    "01-baseline",
    "02-assistant",
    "03-data",
    "04-sft",
    "05-dpo",
    "06-export",
    "07-candidate",
    "08-report",
]


def loop(out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "tuneloop.cli",
        "loop",
        "configs/loop/quick.yaml",
        "--set",
        f"output_dir={out}",
        *extra,
    ]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)


def test_quick_loop_runs_every_stage_reports_and_resumes(default_model_dir, tmp_path: Path):
    first = loop(tmp_path)
    loop_dir = tmp_path / "quick"
    gate = json.loads((loop_dir / "07-candidate" / "gate.json").read_text())
    # The exit code is the gate's verdict, and the verdict is printed with the report path.
    assert first.returncode == (0 if gate["passed"] else 1), first.stderr[-3000:]
    assert f"gate: {'PASSED' if gate['passed'] else 'BLOCKED'}" in first.stdout
    assert "08-report/report.html" in first.stdout

    for name in STAGES:
        record = json.loads((loop_dir / name / "stage.json").read_text())
        assert record["state"] == "completed", name
        assert record["wall_s"] > 0 and record["peak_rss_mib"] > 20, name  # a real child process
    peaks = {
        name: json.loads((loop_dir / name / "stage.json").read_text())["peak_rss_mib"]
        for name in STAGES
    }
    assert (
        peaks["04-sft"] > peaks["03-data"]
    )  # each stage's own peak, not the loop's running maximum

    # Stage 2 ran the runtime and traced it; stage 3 mined those traces into valid data.
    assistant = json.loads((loop_dir / "02-assistant" / "stage.json").read_text())["summary"]
    assert assistant["runs"] == 3
    mined = json.loads((loop_dir / "03-data" / "mined" / "report.json").read_text())
    assert mined["traces"] == 3
    assert (loop_dir / "03-data" / "sft" / "train.jsonl").stat().st_size > 0
    assert json.loads((loop_dir / "03-data" / "validation.json").read_text())["ok"] is True

    # The candidate is a merged model with a card, scored against the baseline pairwise.
    assert (loop_dir / "06-export" / "model" / "config.json").is_file()
    assert "smollm2-135m-instruct" in (loop_dir / "06-export" / "model" / "README.md").read_text()
    results = json.loads((loop_dir / "07-candidate" / "results.json").read_text())
    diff = results["comparison"]["schema/json_schema"]
    assert diff["n"] == 3 and diff["low"] <= diff["difference"] <= diff["high"]

    page = open_in_chromium(loop_dir / "08-report" / "report.html")
    assert page["title"] == "tuneloop loop quick"
    assert {"Stages: time and peak memory", "What was mined", "Training curves",
            "Scorecard: candidate − baseline, by layer", "Release gate"} <= set(page["h2"])  # fmt: skip
    assert page["plots"] >= 2  # the SFT and DPO curves decoded

    # Resume: every stage is up to date; nothing re-runs and the verdict is the same.
    again = loop(tmp_path, "--resume")
    assert again.returncode == first.returncode, again.stderr[-3000:]
    assert again.stdout.count("up to date, skipped") == len(STAGES)


def test_loop_refuses_to_overwrite_and_rejects_a_bad_config(tmp_path: Path):
    (tmp_path / "quick").mkdir()
    (tmp_path / "quick" / "config.yaml").write_text("name: quick\n")
    proc = loop(tmp_path)
    assert proc.returncode == 1 and "--resume" in proc.stderr
    bad = loop(tmp_path, "--set", "assistant.limit=0")
    assert bad.returncode == 2 and "assistant.limit" in bad.stderr
