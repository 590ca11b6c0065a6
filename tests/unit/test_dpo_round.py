"""On-policy DPO rounds: config, the shipped YAML, and one round on the tiny model with resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tuneloop.cli import app
from tuneloop.eval.scoring import Score, scorer
from tuneloop.train.config import ConfigError, DPORoundConfig, load_round_config
from tuneloop.train.recipes import dpo_round

ROOT = Path(__file__).resolve().parents[2]


@scorer("test_checksum")
def checksum(sample, completion) -> Score:
    """A deterministic, arbitrary grade of any text: distinct random answers almost surely
    differ, so the tiny random model's samples always have a score gap."""
    return Score(value=(sum(map(ord, completion.text)) % 97) / 96)


def write_round_config(tmp_path: Path, model: Path, **values) -> Path:
    questions = ["Say hi.", "Name a colour.", "Count to three.", "Pick a fruit."]
    prompts = [
        {"id": f"q{i}", "input": [{"role": "user", "content": q}]} for i, q in enumerate(questions)
    ]
    heldout = [{"id": "h0", "input": [{"role": "user", "content": "Name an animal."}]},
               {"id": "h1", "input": [{"role": "user", "content": "Say bye."}]}]  # fmt: skip
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    (tmp_path / "heldout.jsonl").write_text("".join(json.dumps(p) + "\n" for p in heldout))
    cfg = {"name": "rounds", "model": str(model), "output_dir": str(tmp_path / "runs"),
           "prompts": [str(tmp_path / "prompts.jsonl")], "heldout_prompts": [str(tmp_path / "heldout.jsonl")],
           "rounds": 1, "samples_per_prompt": 2, "scorers": [{"scorer": "test_checksum"}],
           "min_score_gap": 1e-6, "max_new_tokens": 8, "temperature": 1.0, "seed": 3,
           "dpo": {"max_steps": 2, "batch_size": 2, "lora_r": 4, "lora_alpha": 8, "learning_rate": 1e-3,
                   "max_length": 128},
           **values}  # fmt: skip
    path = tmp_path / "rounds.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_set_reaches_the_nested_dpo_block(tmp_path, tiny_model_dir) -> None:
    path = write_round_config(tmp_path, tiny_model_dir)
    cfg = load_round_config(path, ["rounds=3", "dpo.max_steps=5", "dpo.beta=0.2"])
    assert (cfg.rounds, cfg.dpo.max_steps, cfg.dpo.beta, cfg.dpo.lora_r) == (3, 5, 0.2, 4)
    with pytest.raises(ConfigError, match="dpo.max_steps"):
        load_round_config(path, ["dpo.max_steps=0"])
    with pytest.raises(ConfigError, match="samples_per_prompt"):
        load_round_config(path, ["samples_per_prompt=1"])


def test_round_dpo_config_starts_from_the_previous_policy(tmp_path, tiny_model_dir) -> None:
    cfg = load_round_config(write_round_config(tmp_path, tiny_model_dir))
    dpo = dpo_round.round_dpo_config(
        cfg, 2, "runs/x/rounds/01/merged", tmp_path / "rounds/02/pairs.jsonl"
    )
    assert dpo.model == "runs/x/rounds/01/merged" and dpo.output_dir == tmp_path / "rounds/02"
    assert (dpo.max_steps, dpo.lora_r, dpo.seed, dpo.validation_fraction) == (2, 4, 5, 0.0)


def test_shipped_config_dry_run(default_model_dir) -> None:
    result = CliRunner().invoke(app, ["train", "dpo-round", str(ROOT / "configs/dpo-round/smollm2-json.yaml"),
                                      "--dry-run"], catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output[result.output.index("{") :])
    assert plan["heldout"] == 8 and plan["rounds"] == 2
    assert plan["samples_per_round"] == plan["prompts"] * 4
    cfg = DPORoundConfig.model_validate(
        yaml.safe_load((ROOT / "configs/dpo-round/smollm2-json.yaml").read_text())
    )
    assert [s.scorer for s in cfg.scorers] == ["json_shape"]


def test_one_round_on_the_tiny_model_then_resume_skips_it(
    tmp_path, tiny_model_dir, monkeypatch
) -> None:
    """R=1, k=2, 2 DPO steps: round 0 evaluates the start, round 1 samples, pairs, trains,
    merges and evaluates; the folder has its documented files; --resume redoes nothing."""
    cfg = load_round_config(write_round_config(tmp_path, tiny_model_dir))
    run = dpo_round.train(cfg)

    for name in ("config.yaml", "manifest.json", "status.json", "metrics.jsonl", "results.json"):
        assert (run / name).is_file(), name
    assert json.loads((run / "status.json").read_text())["state"] == "completed"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [0, 1]
    for row in rows:
        assert 0.0 <= row["heldout_mean"] <= 1.0 and 0.0 <= row["heldout_pass_rate"] <= 1.0
    assert rows[1]["pairs"] + rows[1]["skipped_prompts"] == 4 and rows[1]["pairs"] >= 1
    assert rows[1]["gen_tokens_per_s"] > 0
    pairs = [json.loads(line) for line in (run / "rounds/01/pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == rows[1]["pairs"]
    assert all(p["metadata"]["chosen_score"] > p["metadata"]["rejected_score"] for p in pairs)
    assert (run / "rounds/01/dpo/final/adapter_config.json").is_file()
    assert (run / "rounds/01/merged/config.json").is_file()
    assert (run / "final").resolve() == (run / "rounds/01/merged").resolve()
    assert json.loads((run / "results.json").read_text())["rounds"] == rows

    def no_work(*args, **kwargs):
        raise AssertionError("a finished round was redone")

    monkeypatch.setattr(dpo_round, "run_round", no_work)
    monkeypatch.setattr(dpo_round, "_load_engine", no_work)
    assert dpo_round.train(cfg, resume=True) == run
    assert [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] == rows


def test_new_run_refuses_an_existing_folder(tmp_path, tiny_model_dir) -> None:
    from tuneloop.train.runs import RunDirError

    cfg = load_round_config(write_round_config(tmp_path, tiny_model_dir))
    (tmp_path / "runs/rounds").mkdir(parents=True)
    (tmp_path / "runs/rounds/status.json").write_text("{}")
    with pytest.raises(RunDirError, match="--resume"):
        dpo_round.train(cfg)
