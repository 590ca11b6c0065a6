"""The CLI on the real default model, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def tuneloop(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tuneloop.cli", *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_second_pull_does_no_work(default_model_dir):
    result = tuneloop("models", "pull", "smollm2-135m-instruct")
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    assert str(default_model_dir) in result.stdout.replace("\n", "")


def test_chat_answers_paris(default_model_dir):
    result = tuneloop("chat", "-p", "What is the capital of France?")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout


def test_interactive_chat_keeps_history(default_model_dir):
    result = subprocess.run(
        [sys.executable, "-m", "tuneloop.cli", "chat", "--max-tokens", "24"],
        input="What is the capital of France?\nAnd of Italy?\n", capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert result.stdout.count("\n") >= 2  # two answers


def test_models_info_json(default_model_dir):
    result = tuneloop("models", "info", "smollm2-135m-instruct", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    # SmolLM2-135M: 30 layers, 9 query heads sharing 3 KV heads, hidden 576, tied embeddings.
    assert (info["layers"], info["heads"], info["kv_heads"], info["hidden_size"]) == (30, 9, 3, 576)
    assert 130e6 < info["parameters"] < 140e6
    assert info["vocab_size"] == 49152 and info["context_length"] == 8192
    assert info["dtype"] == "float32" and info["chat_template"] is True
    assert info["eos_tokens"] == ["<|im_end|>"]


def test_env_lists_versions():
    import torch

    result = tuneloop("env")
    assert result.returncode == 0, result.stderr
    assert torch.__version__ in result.stdout and "transformers" in result.stdout


def test_bad_model_reference_is_one_clear_line(tmp_path):
    result = tuneloop("chat", "--model", str(tmp_path / "missing"), "-p", "hi")
    assert result.returncode == 1
    assert "unknown model" in result.stderr and "Traceback" not in result.stderr


def test_unknown_embedded_pull_fails():
    result = tuneloop("models", "pull", "no-such-model")
    assert result.returncode == 1 and "unknown embedded model" in result.stderr


def test_models_plan_json_has_every_component(default_model_dir):
    result = tuneloop("models", "plan", "smollm2-135m-instruct", "--method", "lora", "--seq-len", "512",
                      "--batch", "4", "--json", "--memory-gb", "0.5")  # fmt: skip
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    parts = plan["components"]
    for name in ("weights", "kv_cache", "activations", "logits", "gradients", "optimizer_states", "lora_params"):
        assert parts[name]["bytes"] >= 0, name
    # fp32 weights of a ~135M-parameter model: 4 bytes each
    assert parts["weights"]["bytes"] == pytest.approx(4 * 134.5e6, rel=0.01)
    assert parts["gradients"]["bytes"] < parts["weights"]["bytes"] / 10  # LoRA: few trainable params
    assert plan["total"]["bytes"] == sum(p["bytes"] for p in parts.values())
    assert plan["fits"] is False  # 4+ GiB does not fit 0.5 GiB
