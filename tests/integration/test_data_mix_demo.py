"""The shipped demo mix (configs/data/demo.yaml) over the reference datasets in data/,
built as a user builds it, with the real default model's tokenizer for token statistics."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _needs_reference_data() -> None:
    if not list((ROOT / "data/sft").glob("*.jsonl")):
        pytest.skip("data/sft/*.jsonl (the reference datasets) not written yet")
    if not list((ROOT / "data/eval").glob("*.jsonl")):
        pytest.skip("data/eval/**/*.jsonl (the demo config's eval sets) not written yet")


def test_demo_mix_writes_splits_and_a_matching_manifest(default_model_dir, tmp_path):
    _needs_reference_data()
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "tuneloop.cli", "data", "mix", "configs/data/demo.yaml", "--set", f"output_dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for split in ("train", "validation"):
        entry = manifest["outputs"][split]
        data = (out / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data.splitlines()) == entry["records"] > 0
        assert manifest["token_stats"][split]["tokens"] > 0
    for source in manifest["sources"]:
        for f in source["files"]:
            assert hashlib.sha256((ROOT / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert manifest["split"]["records_in_both_splits"] == 0
    assert (out / "DATA_CARD.md").is_file()
