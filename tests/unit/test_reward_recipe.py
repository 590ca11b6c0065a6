"""Reward models: pair statistics, 2 steps on the tiny model, reloading, GRPO reward, CLI and config errors."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from pydantic import ValidationError
from safetensors.torch import load_file
from typer.testing import CliRunner

from tests.unit.test_dpo_recipe import write_pairs
from tuneloop.train.config import ConfigError, GRPOConfig, RewardConfig, RewardSpec, load_config
from tuneloop.train.reward_model import (
    RewardModel,
    encode,
    pairwise_summary,
    use_distinct_pad_token,
)


def write_reward_config(tmp_path, tiny_model_dir, name="run", **values):
    cfg = {"name": name, "model": str(tiny_model_dir), "method": "lora", "lora_r": 4, "lora_alpha": 8,
           "train_files": [str(tmp_path / "pairs.jsonl")], "validation_fraction": 0.25,
           "output_dir": str(tmp_path / "runs"), "max_steps": 2, "batch_size": 2, "warmup_ratio": 0.0,
           "learning_rate": 1e-2, "max_length": 128, "save_steps": 2, "seed": 3, **values}  # fmt: skip
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _cli(*args):
    from tuneloop.cli import app

    return CliRunner().invoke(app, [*map(str, args)])


# ----------------------------------------------------------------------- components


def test_pairwise_summary_by_hand():
    """Margins 1-0=1, 0-2=-2, 3-0=3, 0.5-0.5=0 -> accuracy 2/4 (the tie counts as wrong),
    mean (1-2+3+0)/4 = 0.5; sorted [-2, 0, 1, 3] -> p50 = (0+1)/2 = 0.5, p25 = -2 + 0.75*2 = -0.5."""
    s = pairwise_summary([1.0, 0.0, 3.0, 0.5], [0.0, 2.0, 0.0, 0.5])
    assert s["pairs"] == 4 and s["accuracy"] == 0.5 and s["ties"] == 1
    assert s["margin"]["mean"] == pytest.approx(0.5) and s["margin"]["p50"] == pytest.approx(0.5)
    assert s["margin"]["p25"] == pytest.approx(-0.5)
    assert pairwise_summary([], [])["accuracy"] is None


def test_encode_is_the_chat_rendering_with_a_distinct_pad(tiny_tokenizer):
    from tuneloop.models.chat_template import render_text

    tok = tiny_tokenizer.__class__.from_pretrained(tiny_tokenizer.name_or_path)
    use_distinct_pad_token(tok)
    assert tok.pad_token != tok.eos_token  # else the score is read one token early
    prompt = [{"role": "user", "content": "What is 2 + 2?"}]
    ids, cut = encode(tok, prompt, "It is 4.")
    assert tok.decode(ids) == render_text(tok, prompt) + "It is 4.<|im_end|>" and not cut
    assert encode(tok, "What is 2 + 2?", [{"role": "assistant", "content": "It is 4."}])[0] == ids
    short, cut = encode(tok, prompt, "It is 4.", max_length=5)
    assert cut and short == ids[-5:]  # the answer's end is kept


# ----------------------------------------------------------------------- recipe


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_model_dir):
    from tuneloop.train.recipes import reward

    tmp_path = tmp_path_factory.mktemp("reward")
    write_pairs(tmp_path / "pairs.jsonl", 8)
    cfg = load_config(write_reward_config(tmp_path, tiny_model_dir), RewardConfig)
    return reward.train(cfg), tmp_path


def test_two_steps_write_the_documented_run_folder(lora_run):
    run_dir, _ = lora_run
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"
    for name in ("config.yaml", "manifest.json", "metrics.jsonl", "results.json", "held_out_scores.json",
                 "plots/loss.png", "plots/margins.png", "final/adapter_config.json",
                 "final/adapter_model.safetensors", "final/reward_model.json", "checkpoint-2/trainer_state.json"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["recipe"] == "reward" and manifest["data"]["validation"]["records"] == 2
    losses = [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]  # fmt: skip
    # Step 1: random score head, ~equal rewards -> loss near -log sigmoid(0) = log 2.
    assert (
        len(losses) == 2
        and all(math.isfinite(x) for x in losses)
        and abs(losses[0] - math.log(2)) < 0.5
    )
    held_out = json.loads((run_dir / "results.json").read_text())["held_out"]
    assert held_out["pairs"] == 2 and 0.0 <= held_out["accuracy"] <= 1.0
    assert set(held_out["margin"]) == {"mean", "std", "p5", "p25", "p50", "p75", "p95"}
    # The adapter and the score head were trained and saved (LoRA B starts at zero).
    weights = load_file(run_dir / "final" / "adapter_model.safetensors")
    assert max(t.abs().max().item() for k, t in weights.items() if "lora_B" in k) > 0
    assert any("score" in k for k in weights)
    adapter = json.loads((run_dir / "final" / "adapter_config.json").read_text())
    assert adapter["task_type"] == "SEQ_CLS" and "score" in adapter["modules_to_save"]


def test_reloaded_run_scores_like_the_trained_model(lora_run):
    from tuneloop.train.preference_data import read_preference_records

    run_dir, tmp_path = lora_run
    scores = json.loads((run_dir / "held_out_scores.json").read_text())
    records = dict(read_preference_records([tmp_path / "pairs.jsonl"], labeled=False))
    pairs = [records[r] for r in scores["record"]]
    for path in (run_dir, run_dir / "final"):  # a run folder, or its adapter folder
        rm = RewardModel.load(path)
        assert rm.score([p.prompt for p in pairs], [p.chosen for p in pairs]) == pytest.approx(
            scores["chosen"], abs=1e-5
        )
        assert rm.score([p.prompt for p in pairs], [p.rejected for p in pairs], batch_size=1) == pytest.approx(
            scores["rejected"], abs=1e-5)  # fmt: skip


def test_reward_function_takes_conversational_and_string_rows(lora_run):
    rm = RewardModel.load(lora_run[0])
    fn = rm.reward_function(weight=2.0)
    assert fn.__name__ == "reward_model"
    conv = fn(prompts=[[{"role": "user", "content": "Say hello."}]],
              completions=[[{"role": "assistant", "content": "Hello!"}]], id=["x"])  # fmt: skip
    text = fn(["Say hello."], ["Hello!"])
    assert conv == pytest.approx(text) and conv[0] == pytest.approx(
        2.0 * rm.score(["Say hello."], ["Hello!"])[0]
    )
    assert fn.errors == 0


def test_full_method_saves_a_loadable_classifier(tmp_path, tiny_model_dir):
    from tuneloop.train.recipes import reward

    write_pairs(tmp_path / "pairs.jsonl", 6)
    cfg = load_config(write_reward_config(tmp_path, tiny_model_dir, method="full", max_steps=1, save_steps=1),
                      RewardConfig)  # fmt: skip
    run_dir = reward.train(cfg)
    scores = json.loads((run_dir / "held_out_scores.json").read_text())
    config = json.loads((run_dir / "final" / "config.json").read_text())
    assert (
        config["architectures"][0].endswith("ForSequenceClassification")
        and config["pad_token_id"] is not None
    )
    rm = RewardModel.load(run_dir / "final")
    line = int(scores["record"][0].rpartition(":")[2])
    row = json.loads((tmp_path / "pairs.jsonl").read_text().splitlines()[line - 1])
    assert rm.score([row["prompt"]], [row["chosen"]])[0] == pytest.approx(
        scores["chosen"][0], abs=1e-5
    )


def test_resume_continues_from_the_latest_checkpoint(tmp_path, tiny_model_dir):
    write_pairs(tmp_path / "pairs.jsonl", 8)
    cfg = write_reward_config(tmp_path, tiny_model_dir, max_steps=1, save_steps=1)
    first = _cli("train", "reward", cfg)
    assert first.exit_code == 0, first.output
    assert "held-out accuracy:" in first.output and "run folder:" in first.output
    result = _cli(
        "train", "reward", cfg, "--resume", tmp_path / "runs" / "run", "--set", "max_steps=2"
    )
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "runs" / "run" / "results.json").read_text())
    assert results["resumed_from"].endswith("checkpoint-1")


def test_dry_run_prints_config_and_data(tmp_path, tiny_model_dir):
    write_pairs(tmp_path / "pairs.jsonl", 8)
    result = _cli("train", "reward", write_reward_config(tmp_path, tiny_model_dir), "--dry-run")
    assert result.exit_code == 0, result.output
    for text in (
        "resolved config",
        "center_rewards_coefficient",
        "mean chosen tokens",
        "trainable_parameters",
    ):
        assert text in result.output, text
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------- CLI: reward score


def test_score_cli_writes_rewards(lora_run, tmp_path):
    run_dir, data = lora_run
    rows = tmp_path / "in.jsonl"
    rows.write_text((data / "pairs.jsonl").read_text().splitlines()[0] + "\n"
                    + json.dumps({"prompt": "Say hello.", "response": "Hello!"}) + "\n"
                    + json.dumps({"prompt": [{"role": "user", "content": "Hi"}], "completion": "Hi!"}) + "\n")  # fmt: skip
    result = _cli(
        "reward",
        "score",
        "--model",
        run_dir,
        "-i",
        rows,
        "-o",
        tmp_path / "out.jsonl",
        "--batch-size",
        2,
    )
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert (
        {"chosen_reward", "rejected_reward"} <= set(out[0])
        and "reward" in out[1]
        and "reward" in out[2]
    )
    assert out[1]["reward"] == pytest.approx(
        RewardModel.load(run_dir).score(["Say hello."], ["Hello!"])[0], abs=1e-5
    )


@pytest.mark.parametrize("bad, expected", [
    ('{"prompt": "Hi"}', ":2: response: missing"),
    ("{not json", ":2: <line>: not valid JSON"),
    ('{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "x"}]}',
     ":2: rejected: Field required"),
    ('{"prompt": 3, "response": "x"}', ":2: prompt: expected a string"),
])  # fmt: skip
def test_score_cli_bad_rows_name_the_line_and_leave_no_output(lora_run, tmp_path, bad, expected):
    rows = tmp_path / "in.jsonl"
    rows.write_text(json.dumps({"prompt": "Say hello.", "response": "Hello!"}) + "\n" + bad + "\n")
    result = _cli(
        "reward", "score", "--model", lora_run[0], "-i", rows, "-o", tmp_path / "out.jsonl"
    )
    assert result.exit_code == 1
    assert f"in.jsonl{expected}" in result.output and "Traceback" not in result.output
    assert list(tmp_path.glob("*out.jsonl*")) == []


def test_score_cli_rejects_a_non_reward_model(tiny_model_dir, tmp_path):
    rows = tmp_path / "in.jsonl"
    rows.write_text(json.dumps({"prompt": "Hi", "response": "Hello!"}) + "\n")
    result = _cli(
        "reward", "score", "--model", tiny_model_dir, "-i", rows, "-o", tmp_path / "out.jsonl"
    )
    assert result.exit_code == 1 and "not a reward model" in result.output
    assert not (tmp_path / "out.jsonl").exists()


# ----------------------------------------------------------------------- config errors


@pytest.mark.parametrize("values, field", [
    ({"method": "qlora"}, "method"), ({"learning_rate": -1}, "learning_rate"),
    ({"center_rewards_coefficient": -0.1}, "center_rewards_coefficient"), ({"bogus": 1}, "bogus: unknown key"),
])  # fmt: skip
def test_config_errors_name_the_field(tmp_path, tiny_model_dir, values, field):
    with pytest.raises(ConfigError, match=field):
        load_config(write_reward_config(tmp_path, tiny_model_dir, **values), RewardConfig)


def test_bad_margin_key_names_the_line(tmp_path, tiny_model_dir):
    write_pairs(tmp_path / "pairs.jsonl", 4)
    result = _cli(
        "train", "reward", write_reward_config(tmp_path, tiny_model_dir, margin_key="gap")
    )
    assert (
        result.exit_code == 1
        and "pairs.jsonl:" in result.output
        and "metadata.gap" in result.output
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "spec", [{"weight": 1.0}, {"scorer": "exact_match", "reward_model": "runs/rm"}]
)
def test_reward_spec_needs_exactly_one_source(spec):
    with pytest.raises(ValidationError, match="exactly one of scorer or reward_model"):
        RewardSpec.model_validate(spec)


def test_grpo_reward_model_entries(tmp_path, lora_run):
    from tuneloop.train.recipes.grpo import reward_functions

    base = {"name": "g", "train_files": ["x.jsonl"], "batch_size": 4}
    cfg = GRPOConfig.model_validate(
        {**base, "rewards": [{"reward_model": str(lora_run[0]), "weight": 0.5}]}
    )
    funcs, weights = reward_functions(cfg)
    assert [f.__name__ for f in funcs] == ["reward_model"] and weights == [0.5]
    assert len(funcs[0](["Say hello."], ["Hello!"])) == 1
    bad = GRPOConfig.model_validate({**base, "rewards": [{"reward_model": str(tmp_path / "nope")}]})
    with pytest.raises(ConfigError, match="rewards: .*nope"):
        reward_functions(bad)


def test_lora_top_layers_adapts_only_the_top_layers(tmp_path, tiny_model_dir, tiny_tokenizer):
    from tuneloop.models.resolve import resolve_model
    from tuneloop.train.recipes.reward import load_reward_model

    write_pairs(tmp_path / "pairs.jsonl", 4)
    cfg = load_config(
        write_reward_config(tmp_path, tiny_model_dir, lora_top_layers=1), RewardConfig
    )
    model, facts = load_reward_model(cfg, resolve_model(cfg.model), tiny_tokenizer)
    top = model.config.num_hidden_layers - 1
    lora = {
        n.split(".layers.")[1].split(".")[0] for n, _ in model.named_parameters() if "lora_" in n
    }
    assert lora == {str(top)} and facts["trainable_parameters"] > 0
    with pytest.raises(ConfigError, match="lora_top_layers"):
        load_reward_model(
            cfg.model_copy(update={"lora_top_layers": top + 2}),
            resolve_model(cfg.model),
            tiny_tokenizer,
        )
