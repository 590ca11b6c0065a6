"""SFT recipe on the tiny random model: a few steps, everything a run promises."""

from __future__ import annotations

import json
import math
from collections import deque
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerControl, TrainerState, TrainingArguments

from tests.helpers.train_fixtures import (
    metrics,
    train_losses,
    tuneloop,
    write_config,
    write_conversations,
)
from tuneloop.train.callbacks import AnomalyMonitor
from tuneloop.train.config import SFTConfig, load_config
from tuneloop.train.recipes import sft

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path, tiny_model_dir, **overrides) -> SFTConfig:
    if not (tmp_path / "train.jsonl").exists():
        write_conversations(tmp_path / "train.jsonl", 24)
    values = dict(name="tiny", model=str(tiny_model_dir), train_files=[str(tmp_path / "train.jsonl")],
                  output_dir=tmp_path / "runs", max_steps=3, batch_size=4, learning_rate=1e-2,
                  lora_r=4, lora_alpha=8, eval_steps=2, save_steps=2, max_length=128, seed=0)  # fmt: skip
    values.update(overrides)
    return SFTConfig(**values)


def test_lora_run_trains_and_writes_the_documented_folder(tmp_path, tiny_model_dir):
    run_dir = sft.train(_config(tmp_path, tiny_model_dir))
    for name in ("config.yaml", "manifest.json", "metrics.jsonl", "results.json", "status.json",
                 "plots/loss.png", "plots/grad_norm.png", "plots/lr.png",
                 "final/adapter_model.safetensors", "final/tokenizer.json"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert set(manifest["git"]) == {"commit", "dirty"}
    assert manifest["packages"]["trl"] and manifest["packages"]["torch"]
    assert manifest["data_files"][0]["sha256"] and manifest["seed"] == 0
    assert manifest["model_facts"]["trainable_parameters"] < manifest["model_facts"]["total_parameters"]
    rows = metrics(run_dir)
    train_rows = [r for r in rows if "loss" in r]
    assert all(k in train_rows[0] for k in ("loss", "grad_norm", "learning_rate", "tokens_per_s"))
    assert any("eval_loss" in r for r in rows)
    # LoRA B starts at zero: after training it must have moved.
    weights = load_file(run_dir / "final" / "adapter_model.safetensors")
    b = [v for k, v in weights.items() if "lora_B" in k]
    assert b and all(torch.isfinite(v).all() for v in b) and any(v.abs().max() > 0 for v in b)


def test_first_loss_matches_the_random_init(tmp_path, tiny_model_dir):
    """First loss of the untrained tiny model, worked out by hand.

    The final RMSNorm gives hidden states of unit RMS; the tied output embedding is
    N(0, s^2) with s = initializer_range = 0.3, so each logit is ~N(0, sigma^2) with
    sigma^2 = hidden * s^2 = 64 * 0.09 = 5.76, independent of the (next) target token.
    For V Gaussian logits E[logsumexp] ~ ln V + sigma^2 / 2, and E[target logit] = 0:
    loss ~ ln 512 + 2.88 = 6.238 + 2.880 = 9.118. Tolerance 0.3 covers the sampling
    spread of a 4-sequence batch (observed 9.11).
    """
    from transformers import AutoConfig, AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(tiny_model_dir))
    cfg = AutoConfig.from_pretrained(tiny_model_dir)
    expected = math.log(vocab) + cfg.hidden_size * cfg.initializer_range**2 / 2
    run_dir = sft.train(_config(tmp_path, tiny_model_dir, max_steps=2, validation_fraction=0.0))
    first = train_losses(run_dir)[0]
    assert math.isfinite(first)
    assert first == pytest.approx(expected, abs=0.3)


def test_full_method_trains_every_parameter(tmp_path, tiny_model_dir):
    run_dir = sft.train(_config(tmp_path, tiny_model_dir, method="full", max_steps=2, validation_fraction=0.0))
    facts = json.loads((run_dir / "manifest.json").read_text())["model_facts"]
    assert facts["trainable_parameters"] == facts["total_parameters"]
    before = load_file(Path(tiny_model_dir) / "model.safetensors")
    after = load_file(run_dir / "final" / "model.safetensors")
    changed = [k for k in before if k in after and not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2


def test_padding_free_gives_the_same_losses_as_padding(tmp_path, tiny_model_dir):
    """Per-sequence attention: concatenated sequences must not attend to each other,
    so every batch's loss equals the padded one (up to float summation order).

    lr is tiny on purpose: Adam turns float noise in near-zero LoRA gradients into
    lr-sized steps, which would compare optimiser noise, not the attention masks. A
    leak across documents changes the loss by far more than 1e-4 (other tokens' context).
    """
    common = dict(validation_fraction=0.0, learning_rate=1e-7, max_steps=4)
    a = sft.train(_config(tmp_path, tiny_model_dir, name="pf", batching="padding_free", **common))
    b = sft.train(_config(tmp_path, tiny_model_dir, name="pad", batching="padding", **common))
    assert train_losses(a) == pytest.approx(train_losses(b), abs=1e-4)


def _log(monitor, step, **logs):
    args = TrainingArguments(output_dir="/tmp/unused", logging_steps=1, report_to="none")
    state, control = TrainerState(), TrainerControl()
    state.global_step = step
    monitor.on_log(args, state, control, logs=logs)
    return control


def test_anomaly_monitor_names_step_and_batch_and_can_stop():
    records = deque()
    monitor = AnomalyMonitor(spike_factor=3.0, grad_norm_threshold=10.0, stop=True, batch_records=records)
    for step in range(1, 7):
        assert not _log(monitor, step, loss=2.0, grad_norm=1.0).should_training_stop
    records.extend(["train.jsonl:7", "train.jsonl:9"])
    control = _log(monitor, 7, loss=7.5, grad_norm=1.0)  # 7.5 > 3 x 2.0
    assert control.should_training_stop and control.should_save
    event = monitor.events[-1]
    assert event["step"] == 7 and event["batch_records"] == ["train.jsonl:7", "train.jsonl:9"]
    assert "loss spike" in event["problems"][0]
    _log(monitor, 8, loss=2.0, grad_norm=float("nan"))
    assert "gradient norm nan" in monitor.events[-1]["problems"][0]


def test_unknown_config_key_names_file_and_field(tmp_path):
    cfg = write_config(tmp_path / "bad.yaml", name="x", train_files=["a.jsonl"], learning_rat=1e-4)
    result = tuneloop("train", "sft", cfg)
    assert result.returncode == 1
    assert "bad.yaml: learning_rat: unknown key" in result.stderr and "Traceback" not in result.stderr


def test_invalid_data_fails_before_a_run_folder_exists(tmp_path, tiny_model_dir):
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}] * 2
    (tmp_path / "dup.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = write_config(tmp_path / "c.yaml", name="dup", model=str(tiny_model_dir),
                       train_files=[str(tmp_path / "dup.jsonl")], output_dir=str(tmp_path / "runs"))  # fmt: skip
    result = tuneloop("train", "sft", cfg)
    assert result.returncode == 1
    assert "exact_duplicate" in result.stderr and "dup.jsonl:2" in result.stderr
    assert not (tmp_path / "runs" / "dup").exists()


def test_missing_data_file_is_a_clear_error(tmp_path, tiny_model_dir):
    cfg = write_config(tmp_path / "c.yaml", name="m", model=str(tiny_model_dir),
                       train_files=[str(tmp_path / "nope.jsonl")], output_dir=str(tmp_path / "runs"))  # fmt: skip
    result = tuneloop("train", "sft", cfg)
    assert result.returncode == 1 and "no such file" in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "sft").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_sft_configs_load(path):
    config = load_config(path, SFTConfig, ["max_steps=1"])
    assert config.model == "smollm2-135m-instruct" and config.max_steps == 1
    assert config.train_files and config.eval_sets


def test_eval_steps_defaults_to_save_steps_and_mismatch_is_an_error(tmp_path):
    from tuneloop.train.config import ConfigError

    cfg = write_config(tmp_path / "a.yaml", train_files=["a.jsonl"], save_steps=5)
    assert load_config(cfg, SFTConfig).eval_every == 5
    bad = write_config(tmp_path / "b.yaml", train_files=["a.jsonl"], save_steps=10, eval_steps=20)
    with pytest.raises(ConfigError, match="save_steps \\(10\\) must be a multiple of eval_steps \\(20\\)"):
        load_config(bad, SFTConfig)


@pytest.mark.parametrize("max_steps, eval_steps, evals", [(4, 2, [0, 2, 4]), (3, 2, [0, 2, 3])])
def test_final_eval_reuses_an_evaluation_logged_at_the_last_step(
    tmp_path, tiny_model_dir, max_steps, eval_steps, evals
):
    run_dir = sft.train(_config(tmp_path, tiny_model_dir, max_steps=max_steps, eval_steps=eval_steps))
    logged = [r for r in metrics(run_dir) if "eval_loss" in r]
    # A pass before training and per eval step, plus one at the end only when none was logged there.
    assert [r["step"] for r in logged] == evals
    final = json.loads((run_dir / "results.json").read_text())["eval"]
    assert final["eval_loss"] == pytest.approx(logged[-1]["eval_loss"])
