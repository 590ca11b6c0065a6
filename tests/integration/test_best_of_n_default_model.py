"""Best-of-n on the real default model: only answers that pass json_schema are kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tuneloop.eval  # noqa: F401  (registers the built-in scorers)
from tuneloop.cli import app
from tuneloop.data.io import read_records
from tuneloop.eval.scoring import Completion, get_scorer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_best_of_n_keeps_only_schema_valid_answers(default_model_dir, tmp_path) -> None:
    """n=4 on 4 schema prompts: every kept answer re-scores as valid JSON for its schema,
    and the manifest's acceptance rate is the kept records over the prompts."""
    prompts_file = ROOT / "data/grpo/json_prompts.jsonl"
    out = tmp_path / "bon"
    result = CliRunner().invoke(app, ["sample", "best-of-n", "--model", str(default_model_dir),
                                      "--prompts", str(prompts_file), "--n", "4", "--scorer", "json_schema",
                                      "--limit", "4", "--max-new-tokens", "48", "--seed", "0", "-o", str(out)],
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "acceptance rate" in result.output

    manifest = json.loads((out / "manifest.json").read_text())
    prompts = {rec.id: rec for _, rec in read_records(prompts_file, "eval")}
    records = [rec for _, rec in read_records(out / "sft.jsonl", "conversation")]
    assert manifest["prompts"] == 4 and manifest["samples_generated"] == 16
    assert manifest["acceptance_rate"] == pytest.approx(len(records) / 4)
    score = get_scorer("json_schema")
    for record in records:
        sample = prompts[record.metadata.prompt_id]
        assert score(sample, Completion(text=record.messages[-1].content)).passed
        assert record.metadata.source == "best-of-n"
    for _, pair in read_records(out / "pairs.jsonl", "preference"):
        sample = prompts[pair.metadata.prompt_id]
        assert score(sample, Completion(text=pair.chosen[0].content)).passed
        assert not score(sample, Completion(text=pair.rejected[0].content)).passed
