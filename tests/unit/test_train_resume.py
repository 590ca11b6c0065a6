"""System test: a run killed with SIGKILL resumes to the same weights as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from safetensors.torch import load_file

from tests.helpers.train_fixtures import tuneloop, tuneloop_popen, write_config, write_conversations

pytestmark = pytest.mark.slow


def _config(tmp_path, tiny_model_dir, name):
    return write_config(
        tmp_path / f"{name}.yaml", name=name, model=str(tiny_model_dir), method="lora",
        train_files=[str(tmp_path / "train.jsonl")], validation_fraction=0.0,
        output_dir=str(tmp_path / "runs"), max_steps=30, save_steps=5, save_total_limit=None,
        batch_size=2, learning_rate=1e-3, lora_r=4, lora_alpha=8, lora_dropout=0.1, seed=7,
        max_length=128,
    )  # fmt: skip


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path, tiny_model_dir):
    write_conversations(tmp_path / "train.jsonl", 48)
    whole = tuneloop("train", "sft", _config(tmp_path, tiny_model_dir, "whole"))
    assert whole.returncode == 0, whole.stderr[-3000:]

    cfg = _config(tmp_path, tiny_model_dir, "killed")
    run_dir = tmp_path / "runs" / "killed"
    proc = tuneloop_popen("train", "sft", cfg)
    deadline = time.time() + 300
    while not (run_dir / "checkpoint-10" / "trainer_state.json").exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline, "no checkpoint-10 within 300 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert json.loads((run_dir / "status.json").read_text())["state"] == "running"
    assert not (run_dir / "final").exists()  # really killed mid-way

    resumed = tuneloop("train", "sft", cfg, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["resumed_from"] and "checkpoint-" in results["resumed_from"]
    a = load_file(tmp_path / "runs" / "whole" / "final" / "adapter_model.safetensors")
    b = load_file(run_dir / "final" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    # Same ops in the same order on CPU, RNG and data order restored from the
    # checkpoint: the weights match bit for bit in practice; 1e-6 leaves room for a
    # different summation order in a BLAS kernel, far below a single lr=1e-3 step.
    assert worst <= 1e-6, f"max abs weight difference {worst}"


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, tiny_model_dir):
    write_conversations(tmp_path / "train.jsonl", 8)
    cfg = _config(tmp_path, tiny_model_dir, "fresh")
    result = tuneloop("train", "sft", cfg, "--resume")
    assert result.returncode == 1
    assert "no run folder" in result.stderr and "Traceback" not in result.stderr


def test_existing_run_folder_is_not_overwritten(tmp_path, tiny_model_dir):
    write_conversations(tmp_path / "train.jsonl", 8)
    (tmp_path / "runs" / "taken").mkdir(parents=True)
    (tmp_path / "runs" / "taken" / "keep.txt").write_text("precious")
    result = tuneloop("train", "sft", _config(tmp_path, tiny_model_dir, "taken"))
    assert result.returncode == 1 and "already exists" in result.stderr
    assert (tmp_path / "runs" / "taken" / "keep.txt").read_text() == "precious"
