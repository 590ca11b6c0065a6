"""Model cards from run folders, and the merge / export CLI run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_merge import train_tiny_run
from tuneloop.train.export import write_model_card
from tuneloop.train.merge import merge_run


def tuneloop(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess; a wide terminal, so rich does not wrap long paths."""
    return subprocess.run([sys.executable, "-m", "tuneloop.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "COLUMNS": "1000"})  # fmt: skip


@pytest.fixture(scope="module")
def run(tiny_model_dir, tmp_path_factory) -> Path:
    return train_tiny_run(tiny_model_dir, tmp_path_factory.mktemp("export"), "card-run")


@pytest.fixture(scope="module")
def model(run, tmp_path_factory) -> Path:
    return merge_run(run, tmp_path_factory.mktemp("model") / "merged").out_dir


def test_card_has_base_method_data_metrics_and_parity(run, model, tmp_path):
    manifest = json.loads((run / "manifest.json").read_text())
    results = json.loads((run / "results.json").read_text())
    merge = json.loads((model / "merge.json").read_text())
    data_card = tmp_path / "manifest.json"
    data_card.write_text(json.dumps({"created": "2026-11-22", "total_records": 8, "sources": [
        {"path": "a.jsonl", "records": 5, "sha256": "aa11"}, {"path": "b.jsonl", "records": 3, "sha256": "bb22"}]}))  # fmt: skip
    evals = tmp_path / "results.json"
    evals.write_text(json.dumps({"exact_match": 0.625, "pass_at_1": 0.5}))
    card = write_model_card(model, run, data_card=data_card, eval_results=evals).read_text()

    assert card.startswith("---\n") and "# card-run" in card
    assert f"`{manifest['model']}`" in card and "| method | lora |" in card and "| lora_r | 4 |" in card
    sha = manifest["data_files"][0]["sha256"]
    assert len(sha) == 64 and sha in card
    assert f"| train/train_loss | {results['train']['train_loss']:.6g} |" in card
    assert f"{merge['parity']['adapter_max_abs_diff']:.6g}" in card and "`<\\|im_end\\|>`" in card
    assert manifest["git"]["commit"] is None or manifest["git"]["commit"] in card
    assert "| transformers |" in card and "cpu_count" in card
    assert "| a.jsonl | 5 | aa11 |" in card and "total_records: 8" in card
    assert "| exact_match | 0.625 |" in card


def test_card_links_nested_eval_results_and_finds_run_from_merge_json(model, tmp_path):
    nested = tmp_path / "eval" / "results.json"
    nested.parent.mkdir()
    nested.write_text(json.dumps({"layers": {"tasks": {"acc": 0.5}}, "n": 3}))
    card = write_model_card(model, eval_results=nested).read_text()
    assert f"[results.json]({nested})" in card and "| acc |" not in card
    assert "## Training data" in card and "## Merge parity check" in card  # run found via merge.json


def test_cli_merge_prints_parity_and_bad_run_fails_in_one_line(run, tmp_path):
    result = tuneloop("merge", run, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert "merged vs base+adapter max |dlogit|" in result.stdout and "tolerance 0.001" in result.stdout
    assert (tmp_path / "out" / "merge.json").is_file()

    bad = tuneloop("merge", tmp_path / "no-such-run", "-o", tmp_path / "out2")
    assert bad.returncode == 1
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "no such run folder" in lines[0]
    assert not (tmp_path / "out2").exists()


def test_cli_export_run_writes_merged_folder_with_card(run, tmp_path):
    result = tuneloop("export", run, "-o", tmp_path / "hf")
    assert result.returncode == 0, result.stderr
    assert "model card:" in result.stdout
    assert (tmp_path / "hf" / "README.md").is_file() and (tmp_path / "hf" / "model.safetensors").is_file()

    gguf = tuneloop("export", run, "-o", tmp_path / "gguf", "--format", "gguf")
    assert gguf.returncode != 0 and not (tmp_path / "gguf").exists()


def test_cli_export_model_folder_writes_card_in_place(model, tmp_path):
    (model / "README.md").unlink(missing_ok=True)
    result = tuneloop("export", model)
    assert result.returncode == 0, result.stderr
    assert "## Merge parity check" in (model / "README.md").read_text()
    neither = tuneloop("export", tmp_path)
    assert neither.returncode == 1 and "neither a run folder" in neither.stderr
