"""Layer B on the real default model: local lm-eval tasks, offline, through tuneloop's
engine and generation cache."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest

from tuneloop.eval.cache import CachedModel, OutputCache
from tuneloop.eval.lmeval import evaluate
from tuneloop.runtime.backends.local import LocalEngine

pytestmark = pytest.mark.integration

TASKS = Path(__file__).resolve().parents[2] / "data" / "eval" / "lm_eval"


def _norm(text: str) -> str:
    return text.lower().translate(str.maketrans("", "", string.punctuation)).strip()


def test_local_tasks_on_the_default_model_rerun_from_the_cache(default_model_dir, tmp_path):
    engine = LocalEngine.from_ref(str(default_model_dir))
    model = CachedModel(engine, OutputCache(tmp_path / "outputs.db"))
    names = ["tuneloop_arithmetic", "tuneloop_general_mc"]
    tasks = evaluate(model, names, include_path=TASKS, limit=6)
    assert set(tasks) == set(names)
    assert model.misses == 6 and model.hits == 0  # only generate_until goes through generation

    arith = tasks["tuneloop_arithmetic"]
    assert arith["layer"] == "B" and arith["n"] == 6 and len(arith["samples"]) == 6
    answers = [
        json.loads(x)["answer"] for x in (TASKS / "arithmetic.jsonl").read_text().split("\n")[:6]
    ]
    for sample, target in zip(arith["samples"], answers, strict=True):
        numbers = re.findall(r"-?[0-9]+", sample["output"])
        last = float(bool(numbers) and _norm(numbers[-1]) == target)
        assert sample["scores"]["exact_match_last-number"]["value"] == last
        strict = float(_norm(sample["output"]) == target)
        assert sample["scores"]["exact_match_strict-match"]["value"] == strict
    metric = arith["metrics"]["exact_match_last-number"]
    assert metric["n"] == 6 and metric["low"] <= metric["mean"] <= metric["high"]
    assert metric["mean"] > 0  # the instruct model does sums this small

    mc = tasks["tuneloop_general_mc"]
    assert set(mc["metrics"]) == {"acc", "acc_norm"} and mc["n"] == 6

    again = evaluate(model, names, include_path=TASKS, limit=6)
    assert model.hits == 6 and model.misses == 6
    assert again == tasks
