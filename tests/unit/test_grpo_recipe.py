"""GRPO on the tiny random model: 2 steps, rewards from the scorer registry, the run
folder and its per-reward metrics; and the json_shape reward worked out by hand."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

import tuneloop.eval  # noqa: F401  (registers the scorers)
from tuneloop.data.records import EvalSample
from tuneloop.eval.scoring import Completion, get_scorer
from tuneloop.train.config import ConfigError, GRPOConfig
from tuneloop.train.recipes import grpo

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}  # fmt: skip


def write_prompts(path, n: int = 4):
    rows = [{"id": f"p{i}", "input": [{"role": "user", "content": f"Describe pet {i} as JSON."}],
             "schema": SCHEMA} for i in range(n)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def config(tmp_path, tiny_model_dir, **values) -> GRPOConfig:
    base = {"name": "g", "model": str(tiny_model_dir), "method": "lora", "lora_r": 4, "lora_alpha": 8,
            "lora_dropout": 0.0, "train_files": [str(write_prompts(tmp_path / "p.jsonl"))],
            "output_dir": str(tmp_path / "runs"), "rewards": [{"scorer": "json_shape"}, {"scorer": "json_schema"}],
            "num_generations": 2, "batch_size": 2, "max_completion_length": 8, "overlong_buffer": 4,
            "max_steps": 2, "learning_rate": 5e-2, "warmup_ratio": 0.0, "save_steps": 2, "seed": 1}  # fmt: skip
    return GRPOConfig.model_validate({**base, **values})


def test_grpo_two_steps_on_the_tiny_model_changes_the_adapter_and_logs_each_reward(
    tmp_path, tiny_model_dir
):
    run = grpo.train(config(tmp_path, tiny_model_dir))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(math.isfinite(r["loss"]) for r in steps)
    for name in ("json_shape", "json_schema", "overlong_penalty"):
        assert all(f"rewards/{name}/mean" in r and f"rewards/{name}/std" in r for r in steps)
    assert all("frac_reward_zero_std" in r and "completions/mean_length" in r for r in steps)
    # LoRA B starts at zero: any non-zero entry means the optimiser moved the adapter.
    weights = load_file(run / "final" / "adapter_model.safetensors")
    lora_b = [t for k, t in weights.items() if "lora_B" in k]
    assert lora_b and any(torch.count_nonzero(t) for t in lora_b)
    for name in ("config.yaml", "manifest.json", "status.json", "results.json"):
        assert (run / name).is_file()
    assert json.loads((run / "status.json").read_text())["state"] == "completed"
    results = json.loads((run / "results.json").read_text())
    assert results["scorer_errors"] == {"json_shape": 0, "json_schema": 0, "overlong_penalty": 0}


def test_a_group_that_does_not_divide_the_batch_is_a_config_error(tmp_path, tiny_model_dir):
    with pytest.raises(ValueError, match="multiple of num_generations"):
        config(tmp_path, tiny_model_dir, num_generations=3)


def test_an_unknown_scorer_is_a_config_error_naming_rewards(tmp_path, tiny_model_dir):
    with pytest.raises(ConfigError, match="rewards"):
        grpo.prepare(config(tmp_path, tiny_model_dir, rewards=[{"scorer": "nope"}]))


@pytest.mark.parametrize(("text", "value", "passed"), [
    ('{"name": "Miso", "age": 3}', 1.0, True),            # 1 + 1 + 1 + 1
    ('Sure: {"name": "Miso"}', 0.25, False),               # 0 + 0.5 + 0.5 + 0
    ('{"type": "object", "properties": {}}', 0.5, False),  # the schema echoed: 1 + 1 + 0 + 0
    ('{"name": "Miso", "ag', 0.375, False),                # cut off: 1 + 0 + 0.5 (text) + 0
    ('{"name": "Miso", "age": "3"}', 0.75, False),         # wrong type: 1 + 1 + 1 + 0
    ("no JSON at all", 0.0, False),
])  # fmt: skip
def test_json_shape_partial_credit_by_hand(text, value, passed):
    """json_shape = (starts with { + parses (0.5 if embedded) + share of required keys + valid) / 4."""
    sample = EvalSample.model_validate(
        {"id": "s", "input": [{"role": "user", "content": "x"}], "schema": SCHEMA}
    )
    score = get_scorer("json_shape")(sample, Completion(text=text))
    assert score.value == pytest.approx(value)
    assert score.passed is passed
