"""Fine-tune the real default model (LoRA, 3 steps), merge it, and chat with the merged folder."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tuneloop.train.merge import DEFAULT_ATOL, merge_run

pytestmark = pytest.mark.integration

CONVERSATIONS = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("What is the capital of Italy?", "The capital of Italy is Rome."),
    ("What is 2 + 2?", "2 + 2 = 4."),
    ("Name a primary colour.", "Red is a primary colour."),
    ("Say hello.", "Hello! How can I help you today?"),
    ("What is the largest planet?", "Jupiter is the largest planet in the Solar System."),
]


def test_lora_run_merges_within_tolerance_and_chats(default_model_dir, tmp_path):
    from tuneloop.train.config import SFTConfig
    from tuneloop.train.recipes import sft

    train_file = tmp_path / "train.jsonl"
    train_file.write_text("".join(
        json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n"
        for q, a in CONVERSATIONS))  # fmt: skip
    config = SFTConfig(
        name="merge-it", train_files=[str(train_file)], output_dir=tmp_path / "runs", method="lora",
        max_steps=3, learning_rate=1e-4, lora_r=8, lora_alpha=16, batch_size=2,
        validation_fraction=0.0, max_length=128, save_steps=100,
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        real = sft.check_data

        def check(*args, **kwargs):  # the data layer's checks, unless it is not complete yet
            try:
                return real(*args, **kwargs)
            except ImportError:
                return None

        mp.setattr(sft, "check_data", check)
        run = sft.train(config)

    result = merge_run(run, tmp_path / "merged")
    p = result.parity
    print(f"\nparity on {result.base_model}: merged vs base+adapter max|dlogit| {p['adapter_max_abs_diff']:.3g}, "
          f"adapter effect {p['adapter_effect_max_abs_diff']:.3g}, reload {p['reload_max_abs_diff']:.3g}")  # fmt: skip
    assert p["adapter_max_abs_diff"] <= DEFAULT_ATOL and p["reload_max_abs_diff"] <= DEFAULT_ATOL
    assert p["adapter_effect_max_abs_diff"] > 0
    assert p["stop_tokens"] == ["<|im_end|>"]

    chat = subprocess.run(
        [sys.executable, "-m", "tuneloop.cli", "chat", "--model", str(result.out_dir),
         "-p", "What is the capital of France?", "--max-tokens", "16"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.strip()
    print(f"merged model says: {chat.stdout.strip()!r}")
