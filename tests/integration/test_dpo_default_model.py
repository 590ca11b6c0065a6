"""Preference tuning on the real default model, and the shipped configs/dpo/*.yaml."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import pytest
import yaml

from tuneloop.train.config import DPOConfig, load_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs" / "dpo").glob("*.yaml"))

# A consistent preference: answer the question, do not refuse it. Refusals vary in wording
# and length so that neither "shorter" nor one memorised sentence explains the preference.
TRAIN = [
    ("What is the capital of France?", "The capital of France is Paris.",
     "I'm sorry, but I can't help with that."),
    ("What is 7 times 8?", "7 times 8 is 56.", "I cannot answer that question."),
    ("Name a primary colour.", "Red is a primary colour.", "Sorry, I am not able to help with this request."),
    ("What do bees make?", "Bees make honey.", "I'm afraid I can't assist with that."),
    ("How many days are in a week?", "A week has seven days.", "I won't answer that."),
    ("What is the boiling point of water at sea level?", "Water boils at 100 degrees Celsius at sea level.",
     "Unfortunately I cannot provide that information."),
    ("Which planet is closest to the Sun?", "Mercury is the planet closest to the Sun.",
     "I'm not able to discuss that topic."),
    ("What is the opposite of hot?", "The opposite of hot is cold.", "Sorry, I can't help."),
    ("How many legs does a spider have?", "A spider has eight legs.", "I cannot help you with that question."),
    ("What language is spoken in Spain?", "Spanish is spoken in Spain.", "I'm sorry, I can't answer."),
    ("What is 10 minus 3?", "10 minus 3 is 7.", "That is not something I can help with."),
    ("What gas do plants absorb?", "Plants absorb carbon dioxide.", "I'd rather not answer that."),
    ("What is frozen water called?", "Frozen water is called ice.", "Sorry, I cannot respond to this."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet.",
     "I'm unable to help with that request."),
    ("What is the largest ocean?", "The Pacific Ocean is the largest ocean.", "I can't provide an answer to that."),
    ("How many hours are in a day?", "A day has 24 hours.", "I'm sorry, that's not something I can do."),
]  # fmt: skip
HELD_OUT = [
    ("What is the capital of Italy?", "The capital of Italy is Rome.", "I'm sorry, but I can't help with that."),
    ("What is 6 plus 6?", "6 plus 6 is 12.", "I cannot answer that question."),
    ("What colour is grass?", "Grass is green.", "Sorry, I am not able to help with this request."),
    ("What do cows drink?", "Cows drink water.", "I'm afraid I can't assist with that."),
    ("How many months are in a year?", "A year has twelve months.", "I won't answer that."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo.", "I'm unable to help with that request."),
    ("What animal says moo?", "A cow says moo.", "Sorry, I can't help."),
    ("What is 9 minus 4?", "9 minus 4 is 5.", "That is not something I can help with."),
]  # fmt: skip
# 8 held-out pairs = 2 eval batches of 4: TRL averages per-batch means, equal to the overall
# mean only when batches are equally full.


def _write(path: Path, triples) -> Path:
    rows = [{"prompt": [{"role": "user", "content": q}], "chosen": [{"role": "assistant", "content": c}],
             "rejected": [{"role": "assistant", "content": r}]} for q, c, r in triples]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _sequence_logps(model, tokenizer, rows: list[dict]) -> tuple[list[float], list[float]]:
    """Summed log-probabilities of each row's chosen and rejected text given its prompt."""
    import torch

    out: dict[str, list[float]] = {"chosen": [], "rejected": []}
    with torch.no_grad():
        for row in rows:
            prompt_ids = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
            for side in out:
                ids = tokenizer(row["prompt"] + row[side], add_special_tokens=False)["input_ids"]
                assert ids[: len(prompt_ids)] == prompt_ids
                logits = model(torch.tensor([ids])).logits[0, :-1].float()
                logps = torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
                out[side].append(logps[len(prompt_ids) - 1 :].sum().item())
    return out["chosen"], out["rejected"]


def test_dpo_lora_raises_the_held_out_reward_margin(tmp_path, default_model_dir):
    """The implicit DPO reward of an answer is beta * (log pi(y|x) - log pi_ref(y|x)); its
    chosen-minus-rejected margin on held-out pairs is 0 before training (pi = pi_ref) and
    must be clearly positive after a few steps, with most held-out pairs ranked right."""
    import torch
    from peft import PeftModel

    from tuneloop.models.resolve import load_model, load_tokenizer, resolve_model
    from tuneloop.train.preference_data import read_preference_records, render_records
    from tuneloop.train.recipes import dpo

    torch.manual_seed(0)
    cfg = DPOConfig(
        name="dpo-it", model=str(default_model_dir), method="lora", lora_r=8, lora_alpha=16, lora_dropout=0.0,
        train_files=[str(_write(tmp_path / "train.jsonl", TRAIN))],
        validation_files=[str(_write(tmp_path / "held_out.jsonl", HELD_OUT))],
        output_dir=tmp_path / "runs", loss_type="dpo", beta=0.1, learning_rate=1e-4, max_steps=6,
        batch_size=4, warmup_ratio=0.0, lr_scheduler="constant", max_length=256, eval_steps=6,
        save_steps=6, seed=0,
    )  # fmt: skip
    run_dir = dpo.train(cfg)

    resolved = resolve_model(cfg.model)
    tokenizer = load_tokenizer(resolved)
    held_out = render_records(read_preference_records([tmp_path / "held_out.jsonl"], False), tokenizer,
                              kto=False, max_length=256).rows  # fmt: skip
    base = load_model(resolved)
    before_c, before_r = _sequence_logps(base, tokenizer, held_out)
    tuned = PeftModel.from_pretrained(base, str(run_dir / "final")).eval()
    after_c, after_r = _sequence_logps(tuned, tokenizer, held_out)
    margins = [cfg.beta * ((ac - bc) - (ar - br))
               for ac, bc, ar, br in zip(after_c, before_c, after_r, before_r, strict=True)]  # fmt: skip
    mean_margin = sum(margins) / len(margins)
    accuracy = sum(m > 0 for m in margins) / len(margins)
    trl_eval = json.loads((run_dir / "results.json").read_text())["eval"]
    print(f"held-out implicit reward margin: before 0.0 (pi = pi_ref), after {mean_margin:.4f}; "
          f"pairs ranked right {accuracy:.2f}; TRL eval_rewards/margins {trl_eval['eval_rewards/margins']:.4f}, "
          f"eval_rewards/accuracies {trl_eval['eval_rewards/accuracies']:.2f}; "
          f"log p(chosen) - log p(rejected): before {sum(before_c) - sum(before_r):.2f}, "
          f"after {sum(after_c) - sum(after_r):.2f} (summed over {len(margins)} pairs)")  # fmt: skip
    # Measured (seed 0): margin 0.546, 8/8 pairs ranked right, log-prob gap 175.2 -> 218.9.
    assert mean_margin > 0.2 and accuracy >= 7 / 8
    # Our margin is TRL's own eval metric, recomputed independently.
    assert mean_margin == pytest.approx(trl_eval["eval_rewards/margins"], abs=0.01)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_shipped_config_loads(config):
    cfg = load_config(config, DPOConfig)
    assert cfg.name == config.stem and cfg.max_length == 512 and 5e-6 <= cfg.learning_rate <= 5e-5
    assert cfg.method == "lora" and 8 <= cfg.lora_r <= 16 and 2 <= cfg.batch_size <= 4


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_shipped_config_dry_run(config, default_model_dir):
    from tests.helpers.train_fixtures import tuneloop

    data = yaml.safe_load(config.read_text())
    patterns = data["train_files"] + data.get("eval_sets", [])
    missing = [p for p in patterns if not glob.glob(os.path.join(ROOT, p))]
    if missing:
        pytest.skip(f"reference data not written yet: {', '.join(missing)} match no file")
    result = tuneloop("train", "dpo", str(config), "--dry-run", cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "chosen longer share" in result.stdout or "desirable" in result.stdout
    assert "trainable_parameters" in result.stdout and "reference" in result.stdout
