"""Preference tuning: rendering to TRL's string format, and each loss for 2 steps on the tiny model."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from tuneloop.data import PreferencePair
from tuneloop.models.chat_template import render_text
from tuneloop.models.resolve import resolve_model
from tuneloop.train.config import ConfigError, DPOConfig, load_config
from tuneloop.train.preference_data import (
    pairs_to_labeled,
    read_preference_records,
    render_records,
    split_records,
)

CALC = {"type": "function", "function": {"name": "calculator", "description": "Evaluate arithmetic.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}}}}}  # fmt: skip
ANSWERS = ["Paris.", "It is 4.", "Rome.", "Hello there!", "It is 6.", "Blue.", "Seven.", "Yes, it is."]
QUESTIONS = ["What is the capital of France?", "What is 2 + 2?", "What is the capital of Italy?",
             "Say hello.", "What is 2 * 3?", "What colour is the sky?", "What is 3 + 4?",
             "Is water wet?"]  # fmt: skip


def _pair(question: str, chosen: str, rejected: str) -> dict:
    return {"prompt": [{"role": "user", "content": question}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}  # fmt: skip


def write_pairs(path, n: int = 8):
    """``n`` pairs: a short right answer preferred over a long refusal, or over a wrong
    answer of similar length (so chosen is not always the longer side)."""
    rows = []
    for i in range(n):
        q, a = QUESTIONS[i % len(QUESTIONS)], ANSWERS[i % len(ANSWERS)]
        rejected = "I cannot help with that request, sorry." if i % 2 else f"No. {i}"
        rows.append(_pair(q, a, rejected))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_dpo_config(tmp_path, tiny_model_dir, name="run", **values):
    cfg = {"name": name, "model": str(tiny_model_dir), "method": "lora", "lora_r": 4, "lora_alpha": 8,
           "train_files": [str(tmp_path / "pairs.jsonl")], "validation_fraction": 0.0,
           "output_dir": str(tmp_path / "runs"), "max_steps": 2, "batch_size": 2, "warmup_ratio": 0.0,
           "learning_rate": 1e-2, "max_length": 128, "save_steps": 2, "seed": 3, **values}  # fmt: skip
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# ----------------------------------------------------------------------- rendering


def test_prompt_plus_chosen_is_the_full_rendering(tiny_tokenizer):
    pair = PreferencePair.model_validate(_pair("What is 2 + 2?", "It is 4.", "It is 5."))
    row = render_records([("f.jsonl:1", pair)], tiny_tokenizer, kto=False, max_length=512).rows[0]
    full = render_text(tiny_tokenizer, [*_pair("What is 2 + 2?", "", "")["prompt"],
                                        {"role": "assistant", "content": "It is 4."}],
                       add_generation_prompt=False)  # fmt: skip
    assert row["prompt"] == render_text(tiny_tokenizer, [{"role": "user", "content": "What is 2 + 2?"}])
    # ChatML: the answer ends with its end-of-turn token; only the newline after it is not part of it.
    assert row["chosen"] == "It is 4.<|im_end|>" and row["rejected"] == "It is 5.<|im_end|>"
    assert full == row["prompt"] + row["chosen"] + "\n"
    assert row["record"] == "f.jsonl:1"


def test_tool_call_pairs_render_hermes_tool_calls_in_chosen(tiny_tokenizer):
    call = {"type": "function", "function": {"name": "calculator", "arguments": {"expression": "2*3"}}}
    pair = PreferencePair.model_validate({
        "prompt": [{"role": "user", "content": "What is 2*3?"}],
        "chosen": [{"role": "assistant", "tool_calls": [call]}],
        "rejected": [{"role": "assistant", "content": "It is 5."}], "tools": [CALC]})  # fmt: skip
    row = render_records([("f.jsonl:1", pair)], tiny_tokenizer, kto=False, max_length=512).rows[0]
    assert row["chosen"].startswith("<tool_call>\n") and row["chosen"].endswith("</tool_call><|im_end|>")
    assert '"name": "calculator"' in row["chosen"]
    assert "<tools>" in row["prompt"] and "<tool_call>" not in row["rejected"]


def test_multi_turn_prompt_and_left_truncated_prompt(tiny_tokenizer):
    prompt = [{"role": "user", "content": "Hello there!"}, {"role": "assistant", "content": "Hello!"},
              {"role": "user", "content": "What is 2 + 2?"}]  # fmt: skip
    pair = PreferencePair.model_validate({"prompt": prompt, "chosen": [{"role": "assistant", "content": "4"}],
                                          "rejected": [{"role": "assistant", "content": "5"}]})  # fmt: skip
    whole = render_records([("f:1", pair)], tiny_tokenizer, kto=False, max_length=512)
    cut = render_records([("f:1", pair)], tiny_tokenizer, kto=False, max_length=512, max_prompt_length=12)
    assert whole.rows[0]["prompt"].endswith(cut.rows[0]["prompt"]) and cut.truncated_prompts == 1
    assert len(tiny_tokenizer(cut.rows[0]["prompt"], add_special_tokens=False)["input_ids"]) <= 12
    assert cut.rows[0]["chosen"] == whole.rows[0]["chosen"] == "4<|im_end|>"


def test_summary_counts_tokens_and_longer_chosen(tmp_path, tiny_tokenizer):
    records = read_preference_records([write_pairs(tmp_path / "p.jsonl", 4)], labeled=False)
    summary = render_records(records, tiny_tokenizer, kto=False, max_length=512).summary()
    assert summary["records"] == 4 and summary["chosen_longer_share"] == 0.0
    assert summary["mean_prompt_tokens"] > 0 and summary["mean_rejected_tokens"] > summary["mean_chosen_tokens"]
    assert summary["answers_without_eos"] == 0  # ChatML: the end-of-turn token is the EOS


def test_pairs_to_labeled_and_kto_rows(tmp_path, tiny_tokenizer):
    pair = PreferencePair.model_validate(_pair("Say hello.", "Hello!", "No."))
    labeled = pairs_to_labeled([pair])
    assert [(e.completion[0].content, e.label) for e in labeled] == [("Hello!", True), ("No.", False)]
    split = render_records([("f:1", pair)], tiny_tokenizer, kto=True, max_length=512)
    assert [(r["completion"], r["label"]) for r in split.rows] == [("Hello!<|im_end|>", True), ("No.<|im_end|>", False)]
    assert split.summary()["desirable"] == split.summary()["undesirable"] == 1


def test_wrong_record_kind_names_the_line(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(_pair("Hi", "Hello.", "No.")) + "\n"
                    + json.dumps({"messages": [{"role": "user", "content": "Hi"}]}) + "\n")  # fmt: skip
    with pytest.raises(ValueError, match=r"mixed.jsonl:2: expected a PreferencePair"):
        read_preference_records([path], labeled=False)


def test_split_is_seeded_and_disjoint():
    records = [(f"f:{i}", i) for i in range(10)]
    train, val = split_records(records, 0.2, seed=1)
    assert split_records(records, 0.2, seed=1) == (train, val)
    assert len(val) == 2 and not {r for r, _ in train} & {r for r, _ in val}


# ----------------------------------------------------------------------- recipe


FIRST_LOSS = {
    # Policy == reference at step 1 (fresh LoRA, B = 0), so every log-ratio is 0:
    "dpo": math.log(2),  # -log sigmoid(beta * 0) = log 2
    "ipo": 25.0,  # (0 - 1 / (2 * beta))^2 with beta = 0.1
    "apo_zero": 1.0,  # (1 - sigmoid(0)) + sigmoid(0)
    "kto": 0.5,  # 1 - sigmoid(beta * (0 - KL)) with KL clamped at 0
}


@pytest.mark.parametrize("loss_type", ["dpo", "ipo", "apo_zero", "kto", "orpo", "simpo"])
def test_two_steps_per_loss_type(tmp_path, tiny_model_dir, loss_type):
    from tuneloop.train.recipes import dpo

    write_pairs(tmp_path / "pairs.jsonl")
    cfg = load_config(write_dpo_config(tmp_path, tiny_model_dir, loss_type, loss_type=loss_type), DPOConfig)
    run_dir = dpo.train(cfg)

    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"
    for name in ("config.yaml", "manifest.json", "metrics.jsonl", "results.json", "plots/loss.png",
                 "plots/rewards.png", "final/adapter_config.json"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["recipe"] == "dpo" and manifest["loss_type"] == loss_type
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 2 and math.isfinite(losses[0])
    if loss_type in FIRST_LOSS:
        assert losses[0] == pytest.approx(FIRST_LOSS[loss_type], abs=1e-4)
    if loss_type != "kto":  # KTO logs no accuracy (its examples are unpaired)
        assert all("rewards/margins" in r and "rewards/accuracies" in r for r in rows if "loss" in r)
    # LoRA B matrices start at zero: any non-zero entry means training moved the adapter.
    weights = load_file(run_dir / "final" / "adapter_model.safetensors")
    lora_b = [t for k, t in weights.items() if "lora_B" in k]
    assert lora_b and max(t.abs().max().item() for t in lora_b) > 0


def _sft_adapter(tmp_path, tiny_model_dir):
    """An 'SFT run folder' whose final/ adapter has random (non-zero) B matrices."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(tmp_path / "sft-run" / "final")
    return tmp_path / "sft-run"


@pytest.mark.parametrize("method", ["lora", "full"])
def test_sft_adapter_is_merged_and_is_the_reference(tmp_path, tiny_model_dir, method):
    """With ``adapter:`` the reference is base+SFT adapter: at step 1 the policy equals it,
    so the DPO loss is exactly log 2. Had the reference been the bare base model, the
    SFT adapter's random B matrices would make the log-ratios non-zero."""
    from tuneloop.train.recipes import dpo

    write_pairs(tmp_path / "pairs.jsonl")
    sft_run = _sft_adapter(tmp_path, tiny_model_dir)
    cfg = load_config(write_dpo_config(tmp_path, tiny_model_dir, max_steps=1, method=method,
                                       adapter=str(sft_run)), DPOConfig)  # fmt: skip
    run_dir = dpo.train(cfg)
    first = next(json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines())
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert json.loads((run_dir / "manifest.json").read_text())["adapter"].endswith("final")
    # ...and the policy really is the SFT model: its weights are base + adapter, merged.
    model, peft_config, _ = dpo.load_policy(cfg, resolve_model(cfg.model), sft_run / "final")
    base, _, _ = dpo.load_policy(cfg, resolve_model(cfg.model), None)
    name = "model.layers.0.self_attn.q_proj.weight"
    assert (peft_config is None) == (method == "full")
    assert not torch.allclose(model.get_parameter(name), base.get_parameter(name))
    assert all(p.requires_grad for p in model.parameters()) == (method == "full")


def test_precomputed_reference_log_probs(tmp_path, tiny_model_dir):
    from tuneloop.train.recipes import dpo

    write_pairs(tmp_path / "pairs.jsonl")
    cfg = load_config(write_dpo_config(tmp_path, tiny_model_dir, max_steps=1, precompute_ref_log_probs=True),
                      DPOConfig)  # fmt: skip
    run_dir = dpo.train(cfg)
    first = next(json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines())
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-5)


# ----------------------------------------------------------------------- CLI and bad input


def _cli(*args):
    from tuneloop.cli import app

    return CliRunner().invoke(app, ["train", "dpo", *map(str, args)])


def test_dry_run_prints_data_and_memory_notes(tmp_path, tiny_model_dir):
    write_pairs(tmp_path / "pairs.jsonl")
    result = _cli(write_dpo_config(tmp_path, tiny_model_dir), "--dry-run", "--set", "method=full")
    assert result.exit_code == 0, result.output
    for text in ("resolved config", "mean prompt tokens", "chosen longer share", "trainable_parameters",
                 "frozen reference copy"):  # fmt: skip
        assert text in result.output, text
    assert not (tmp_path / "runs").exists()


def test_resume_continues_from_the_latest_checkpoint(tmp_path, tiny_model_dir):
    write_pairs(tmp_path / "pairs.jsonl")
    cfg = write_dpo_config(tmp_path, tiny_model_dir, max_steps=1, save_steps=1)
    assert _cli(cfg).exit_code == 0
    result = _cli(cfg, "--resume", str(tmp_path / "runs" / "run"), "--set", "max_steps=2")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "run"
    assert json.loads((run_dir / "results.json").read_text())["resumed_from"].endswith("checkpoint-1")
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert 2 in steps and json.loads((run_dir / "status.json").read_text())["state"] == "completed"


@pytest.mark.parametrize("problem", ["unknown_key", "missing_file", "kto_batch_1", "bad_adapter"])
def test_bad_input_fails_before_a_run_folder_exists(tmp_path, tiny_model_dir, problem):
    write_pairs(tmp_path / "pairs.jsonl")
    values = {"unknown_key": {"bogus_key": 1}, "missing_file": {"train_files": [str(tmp_path / "nope.jsonl")]},
              "kto_batch_1": {"loss_type": "kto", "batch_size": 1},
              "bad_adapter": {"adapter": str(tmp_path)}}[problem]  # fmt: skip
    result = _cli(write_dpo_config(tmp_path, tiny_model_dir, **values))
    assert result.exit_code == 1, result.output
    expected = {"unknown_key": "bogus_key: unknown key", "missing_file": "nope.jsonl",
                "kto_batch_1": "kto needs at least 2", "bad_adapter": "adapter:"}[problem]  # fmt: skip
    assert expected in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_unknown_loss_type_is_a_config_error(tmp_path, tiny_model_dir):
    with pytest.raises(ConfigError, match="loss_type"):
        load_config(write_dpo_config(tmp_path, tiny_model_dir, loss_type="rlhf"), DPOConfig)
