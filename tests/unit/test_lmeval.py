"""Layer B: lm-eval tasks through ``TuneloopLM``, offline, on local YAML tasks.

lm-eval is imported unconditionally: ``make setup`` installs the ``lmeval`` extra, so a
missing package fails these tests instead of skipping them.
"""

from __future__ import annotations

import json
import math
import re
import string
from pathlib import Path
from types import SimpleNamespace

import lm_eval  # noqa: F401  (fail, never skip, without the extra)
import pytest

from tuneloop.eval.cache import CachedModel, OutputCache
from tuneloop.eval.lmeval import (
    TuneloopLM,
    evaluate,
    import_results,
    run_lm_eval,
    to_task_entries,
)
from tuneloop.runtime.backends.fake import FakeModel
from tuneloop.runtime.backends.local import LocalEngine

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "data" / "eval" / "lm_eval"
ANSWERS = {
    row["question"]: row["answer"]
    for row in map(json.loads, (TASKS / "arithmetic.jsonl").read_text().splitlines())
}


def _norm(text: str) -> str:
    """lm-eval's exact_match with ignore_case and ignore_punctuation."""
    return text.lower().translate(str.maketrans("", "", string.punctuation)).strip()


def _last_number(text: str) -> str:
    found = re.findall(r"-?[0-9]+", text)
    return found[-1] if found else "[invalid]"


def _check_shape(entry: dict, n: int, metrics: set[str]) -> None:
    assert set(entry) == {"layer", "n", "errors", "metrics", "categories", "samples"}
    assert (entry["layer"], entry["n"], entry["errors"], entry["categories"]) == ("B", n, 0, {})
    assert set(entry["metrics"]) == metrics
    for m in entry["metrics"].values():
        assert set(m) == {"mean", "low", "high", "n"} and m["n"] == n
        assert m["low"] <= m["mean"] <= m["high"]
    assert len(entry["samples"]) == n
    for sample in entry["samples"]:
        assert set(sample) == {"id", "category", "output", "scores"}
        assert sample["category"] is None and set(sample["scores"]) == metrics
        for score in sample["scores"].values():
            assert set(score) == {"value", "passed", "explanation"}
    for name, m in entry["metrics"].items():
        values = [s["scores"][name]["value"] for s in entry["samples"]]
        assert math.isclose(m["mean"], sum(values) / n)


@pytest.fixture(scope="module")
def tiny_engine(tiny_model_dir):
    return LocalEngine.from_ref(str(tiny_model_dir))


def test_generate_task_end_to_end_with_the_tiny_model(tiny_engine):
    tasks = evaluate(tiny_engine, ["tuneloop_arithmetic"], include_path=TASKS, limit=4)
    entry = tasks["tuneloop_arithmetic"]
    _check_shape(entry, 4, {"exact_match_strict-match", "exact_match_last-number"})
    assert [s["id"] for s in entry["samples"]] == ["arith-001", "arith-002", "arith-003",
                                                   "arith-004"]  # fmt: skip
    targets = list(ANSWERS.values())[:4]
    for sample, target in zip(entry["samples"], targets, strict=True):
        out = sample["output"]
        strict = float(_norm(out) == _norm(target))
        last = float(_norm(_last_number(out)) == _norm(target))
        assert sample["scores"]["exact_match_strict-match"]["value"] == strict
        assert sample["scores"]["exact_match_last-number"]["value"] == last


def test_scripted_model_answers_score_as_recomputed_and_stops_are_honoured():
    """The answer "The answer is N." followed by "\\n\\nQuestion: ..." is cut at the
    task's ``until`` ("\\n\\n"); strict match fails on every item (extra words), the
    last-number filter passes every item: means 0 and 1, zero-width CIs."""

    def answer(messages, config):
        question = messages[-1]["content"]
        return f"The answer is {ANSWERS[question]}.\n\nQuestion: what next?"

    model = FakeModel(answer, repeat_last=True)
    entry = evaluate(model, ["tuneloop_arithmetic"], include_path=TASKS, limit=6)[
        "tuneloop_arithmetic"
    ]
    _check_shape(entry, 6, {"exact_match_strict-match", "exact_match_last-number"})
    assert all("\n" not in s["output"] and s["output"].startswith("The answer is")
               for s in entry["samples"])  # fmt: skip
    assert entry["metrics"]["exact_match_last-number"] == {"mean": 1.0, "low": 1.0,
                                                            "high": 1.0, "n": 6}  # fmt: skip
    assert entry["metrics"]["exact_match_strict-match"]["mean"] == 0.0
    messages, config = model.calls[0]
    assert messages[-1]["role"] == "user"  # the chat history lm-eval built, not a string
    assert config.max_new_tokens == 24 and config.stop == ["\n\n", "Question:"]
    assert config.temperature == 0.0


def test_multiple_choice_task_with_the_tiny_model(tiny_engine):
    entry = evaluate(tiny_engine, ["tuneloop_general_mc"], include_path=TASKS, limit=3)[
        "tuneloop_general_mc"
    ]
    _check_shape(entry, 3, {"acc", "acc_norm"})
    rows = [json.loads(x) for x in (TASKS / "general_mc.jsonl").read_text().splitlines()[:3]]
    for sample, row in zip(entry["samples"], rows, strict=True):
        assert sample["output"] in row["choices"]  # the likeliest choice
        right = float(sample["output"] == row["choices"][row["label"]])
        assert sample["scores"]["acc"]["value"] == right


def test_loglikelihood_batched_matches_one_at_a_time(tiny_engine):
    """Right-padded batches give the same log-probs as an unpadded forward per pair."""
    import torch

    lm = TuneloopLM(tiny_engine, batch_size=4)
    pairs = [("Question: 2 + 2?\nAnswer:", " 4"), ("Hi", " there friend"), ("", "Hello"),
             ("A much longer context that pads the others in the batch.", " yes")]  # fmt: skip
    got = lm.loglikelihood([SimpleNamespace(args=p) for p in pairs])
    for (ctx, cont), (logprob, greedy) in zip(pairs, got, strict=True):
        c, k = lm._encode_pair(ctx, cont)
        ids = torch.tensor([c + k])
        with torch.inference_mode():
            lp = torch.log_softmax(tiny_engine.model(input_ids=ids).logits[0, :-1].float(), -1)
        steps = lp[len(c) - 1 :]
        want = float(steps.gather(1, torch.tensor(k)[:, None]).sum())
        assert logprob == pytest.approx(want, abs=1e-4)
        assert greedy == bool((steps.argmax(-1) == torch.tensor(k)).all())
    rolling = lm.loglikelihood_rolling([SimpleNamespace(args=("Hello there, friend.",))])
    assert rolling[0] < 0


def test_chat_template_renders_with_the_tokenizer_and_round_trips(tiny_engine, tmp_path):
    from tuneloop.models.chat_template import render_text

    lm = TuneloopLM(CachedModel(tiny_engine, OutputCache(tmp_path / "cache.db")))
    history = [{"role": "user", "content": "What is 2 + 2?"}]
    text = lm.apply_chat_template(history)
    assert text == render_text(tiny_engine.tokenizer, history)
    assert lm._messages(text) == history
    assert lm.chat_template(True) == tiny_engine.tokenizer.chat_template
    assert lm.tokenizer_name


def test_generate_task_through_an_openai_compatible_endpoint():
    """``OpenAIChatModel`` against the loopback stub: lm-eval's chat history arrives as
    messages, with the task's stop strings and token budget."""
    from tests.helpers.openai_stub import OpenAIStub
    from tuneloop.runtime.backends.openai_http import OpenAIChatModel

    def reply(body):
        return ANSWERS[body["messages"][-1]["content"]] + "\n\nQuestion: more?"

    with OpenAIStub(reply) as stub:
        model = OpenAIChatModel(stub.url, "stub-model")
        entry = evaluate(model, ["tuneloop_arithmetic"], include_path=TASKS, limit=3)[
            "tuneloop_arithmetic"
        ]
        body = stub.requests[-1].body
    _check_shape(entry, 3, {"exact_match_strict-match", "exact_match_last-number"})
    assert entry["metrics"]["exact_match_strict-match"]["mean"] == 1.0
    assert body["messages"][-1]["role"] == "user"
    assert body["stop"] == ["\n\n", "Question:"] and body["max_tokens"] == 24


def test_loglikelihood_on_a_remote_model_names_the_task_type():
    lm = TuneloopLM(FakeModel("x"))
    with pytest.raises(NotImplementedError, match="loglikelihood.*LocalEngine"):
        lm.loglikelihood([SimpleNamespace(args=("a", " b"))])
    with pytest.raises(NotImplementedError, match="perplexity"):
        lm.loglikelihood_rolling([SimpleNamespace(args=("a",))])


def _save_like_the_cli(output: dict, folder: Path) -> None:
    """Write ``output`` as ``lm_eval --output_path folder --log_samples`` does."""
    from lm_eval.loggers import EvaluationTracker

    tracker = EvaluationTracker(output_path=str(folder))
    tracker.general_config_tracker.model_name_sanitized = "model"
    samples = output.pop("samples")
    tracker.save_results_aggregated(results=output, samples=samples)
    for task, rows in samples.items():
        tracker.save_results_samples(task_name=task, samples=rows)
    output["samples"] = samples


def test_import_results_reads_what_the_cli_writes(tmp_path):
    """The files lm-eval's CLI writes (its EvaluationTracker) import to the same entries;
    without the samples file the CI comes from the reported stderr."""

    def answer(messages, config):
        q = messages[-1]["content"]
        return "I think 3" if "64 - 16" in q else ANSWERS[q]  # item 8 of 8 wrong

    lm = TuneloopLM(FakeModel(answer, repeat_last=True))
    output = run_lm_eval(lm, ["tuneloop_arithmetic"], include_path=TASKS, limit=8)
    _save_like_the_cli(output, tmp_path)

    imported = import_results(tmp_path)
    assert imported == to_task_entries(output)
    entry = imported["tuneloop_arithmetic"]
    assert entry["metrics"]["exact_match_strict-match"]["mean"] == pytest.approx(7 / 8)

    for f in tmp_path.rglob("samples_*.jsonl"):
        f.unlink()
    bare = import_results(next(tmp_path.rglob("results_*.json")))["tuneloop_arithmetic"]
    assert bare["samples"] == [] and bare["n"] == 8
    m = bare["metrics"]["exact_match_strict-match"]
    stderr = math.sqrt(7 / 8 * 1 / 8 / 7)  # sample stderr of eight 0/1 values, seven ones
    assert m["mean"] == pytest.approx(7 / 8)
    assert m["high"] - m["mean"] == pytest.approx(1.959964 * stderr, rel=1e-4)


def test_import_results_of_a_multiple_choice_task(tiny_engine, tmp_path):
    """The samples file stores arguments as ``{"gen_args_0": {"arg_0", "arg_1"}}`` and
    log-likelihoods as strings; the imported answers and metrics match the live run."""
    output = run_lm_eval(TuneloopLM(tiny_engine), ["tuneloop_general_mc"], include_path=TASKS,
                         limit=3)  # fmt: skip
    _save_like_the_cli(output, tmp_path)
    live = to_task_entries(output)["tuneloop_general_mc"]
    imported = import_results(tmp_path)["tuneloop_general_mc"]
    assert imported["metrics"] == live["metrics"]
    assert [s["output"] for s in imported["samples"]] == [s["output"] for s in live["samples"]]
