"""The shipped GRPO config resolves: prompts, rewards from the
scorer registry, and TRL's GRPO settings, checked by --dry-run without training."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_grpo_example_config_dry_run_lists_rewards_and_prompts(default_model_dir) -> None:
    proc = subprocess.run([sys.executable, "-m", "tuneloop.cli", "train", "grpo",
                           "configs/grpo/smollm2-json.yaml", "--dry-run"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"json_schema"' in proc.stdout and '"overlong_penalty"' in proc.stdout


def test_grpo_config_with_an_unknown_reward_fails_naming_the_field(tmp_path: Path) -> None:
    text = (ROOT / "configs/grpo/smollm2-json.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("scorer: json_schema", "scorer: no_such_scorer", 1))
    proc = subprocess.run([sys.executable, "-m", "tuneloop.cli", "train", "grpo", str(bad),
                           "--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode != 0
    assert "no_such_scorer" in proc.stderr + proc.stdout
