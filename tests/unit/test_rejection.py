"""Best-of-n: selection, acceptance, pairs and bad inputs, on the scripted FakeModel."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import tuneloop.eval  # noqa: F401  (registers the built-in scorers)
from tuneloop.cli import app
from tuneloop.data.io import DataError
from tuneloop.eval.scoring import Completion, get_scorer
from tuneloop.runtime.backends.fake import FakeModel
from tuneloop.train.rejection import (
    BestOfNConfig,
    Candidate,
    PairRule,
    best_of,
    check_prompts,
    read_prompts,
    run_best_of_n,
    select_pair,
)

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}

# prompt -> the n=3 scripted answers (sample i answers with seed 10 + i)
ANSWERS = {
    "one": ['{"a": 1, "b": "x y"}', "nope", '{"a": 2}'],  # valid 0 (4 words) and 2 (2 words)
    "two": ["no", "still no", "{broken"],  # nothing valid: rejected
    "three": ['{"a": 3}', '{"a": 4}', '{"a": 5}'],  # all valid: accepted, no pair
}


def _sample(pid: str, content: str, **extra) -> dict:
    return {"id": pid, "input": [{"role": "user", "content": content}], **extra}


def write_prompts(path, rows=None):
    rows = rows or [_sample(f"p-{k}", k, schema=SCHEMA) for k in ANSWERS]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def scripted_model() -> FakeModel:
    """Answers by (prompt, seed), so batching order does not matter."""

    def answer(messages, config):
        return ANSWERS[messages[-1]["content"]][config.seed - 10]

    return FakeModel(answer, repeat_last=True)


def _cand(
    index: int, value: float, tokens: int, text: str = "x", verified: bool | None = None
) -> Candidate:
    return Candidate(
        index, Completion(text=text), value, value >= 1.0 if verified is None else verified, tokens
    )


# ----------------------------------------------------------------------- selection


def test_only_verified_records_are_written_and_acceptance_rate_is_worked_out(tmp_path) -> None:
    """3 prompts x n=3 (seeds 10, 11, 12), scorer json_schema, threshold 1.0:

    - "one": samples 0 and 2 are valid (value 1.0); 0 has 4 words, 2 has 2 -> keep
      sample 2 ``{"a": 2}``. Worst = sample 1 "nope" (fails) -> one pair (2 over 1).
    - "two": nothing valid -> rejected.
    - "three": all valid, equal length (2 words, 8 chars) -> sample 0; worst passes too -> no pair.

    acceptance rate = accepted prompts / prompts = 2 / 3; samples generated = 3 x 3 = 9.
    """
    model = scripted_model()
    prompts = read_prompts([write_prompts(tmp_path / "prompts.jsonl")])
    config = BestOfNConfig(n=3, scorers=["json_schema"], seed=10, max_new_tokens=32)
    manifest = run_best_of_n(model, prompts, config, tmp_path / "out")

    assert sorted({c.seed for _, c in model.calls}) == [10, 11, 12]
    assert all(c.temperature == 0.8 for _, c in model.calls)
    assert manifest["acceptance_rate"] == pytest.approx(2 / 3)
    assert (manifest["prompts"], manifest["accepted"], manifest["samples_generated"]) == (3, 2, 9)
    assert [p["accepted"] for p in manifest["per_prompt"]] == [True, False, True]

    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "pairs.jsonl", "sft.jsonl"]
    records = [json.loads(line) for line in (out / "sft.jsonl").read_text().splitlines()]
    assert [r["messages"][-1]["content"] for r in records] == ['{"a": 2}', '{"a": 3}']
    assert records[0]["messages"][0] == {"role": "user", "content": "one"}
    meta = records[0]["metadata"]
    assert (meta["source"], meta["prompt_id"], meta["score"], meta["n"], meta["sample_index"]) == (
        "best-of-n", "p-one", 1.0, 3, 2)  # fmt: skip
    score = get_scorer("json_schema")
    for prompt, record in zip([prompts[0], prompts[2]], records, strict=True):
        assert score(prompt.sample, Completion(text=record["messages"][-1]["content"])).passed

    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 1 == manifest["pairs"]
    assert (
        pairs[0]["chosen"][0]["content"] == '{"a": 2}'
        and pairs[0]["rejected"][0]["content"] == "nope"
    )
    assert (pairs[0]["metadata"]["chosen_score"], pairs[0]["metadata"]["rejected_score"]) == (
        1.0,
        0.0,
    )


def test_best_of_breaks_ties_by_length_then_order_and_rejects_unverified() -> None:
    """Equal values: fewer tokens wins; equal tokens: shorter text; all equal: earlier sample."""
    assert best_of([_cand(0, 1.0, 5), _cand(1, 1.0, 3), _cand(2, 1.0, 4)]).index == 1
    assert best_of([_cand(0, 1.0, 3, "abcd"), _cand(1, 1.0, 3, "abc")]).index == 1
    assert best_of([_cand(0, 1.0, 3, "abc"), _cand(1, 1.0, 3, "abc")]).index == 0
    assert best_of([_cand(0, 0.9, 1), _cand(1, 0.5, 1)]) is None  # best is below threshold
    assert best_of([_cand(0, 1.0, 1, verified=False)]) is None  # a scorer failed it
    assert best_of([]) is None


def test_length_controlled_pair_picks_shortest_top_and_closest_bottom() -> None:
    """values/tokens: 0: 1.0/10, 1: 1.0/4, 2: 0.0/12, 3: 0.0/5, 4: 0.0/3.

    chosen = shortest top-scoring = 1 (4 tokens). Length control: |12-4| = 8, |5-4| = 1,
    |3-4| = 1 -> tie of 3 and 4, the earlier wins: rejected = 3. Without it: the earliest
    bottom sample, 2 (12 tokens: the pair would reward being short... or long).
    """
    cands = [
        _cand(0, 1.0, 10),
        _cand(1, 1.0, 4),
        _cand(2, 0.0, 12),
        _cand(3, 0.0, 5),
        _cand(4, 0.0, 3),
    ]
    chosen, rejected = select_pair(cands, PairRule(min_gap=0.5, length_control=True))
    assert (chosen.index, rejected.index) == (1, 3)
    chosen, rejected = select_pair(cands, PairRule(min_gap=0.5, length_control=False))
    assert (chosen.index, rejected.index) == (1, 2)


def test_min_gap_skips_prompts_without_a_clear_preference() -> None:
    """Gap 0.6 - 0.3 = 0.3 < 0.5 -> skipped; 1.0 - 0.5 = 0.5 >= 0.5 -> kept; equal -> skipped."""
    rule = PairRule(min_gap=0.5)
    assert select_pair([_cand(0, 0.6, 2), _cand(1, 0.3, 2)], rule) is None
    assert select_pair([_cand(0, 0.5, 2), _cand(1, 1.0, 2)], rule)[0].index == 1
    assert select_pair([_cand(0, 1.0, 2), _cand(1, 1.0, 3)], PairRule(min_gap=1e-9)) is None
    assert select_pair([], rule) is None


# ----------------------------------------------------------------------- bad inputs


def test_bad_json_line_names_file_and_line(tmp_path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text(json.dumps(_sample("a", "hi", schema=SCHEMA)) + "\n{not json\n")
    with pytest.raises(DataError, match=r"prompts\.jsonl:2: invalid JSON"):
        read_prompts([path])


def test_prompt_the_scorer_cannot_grade_names_file_line_and_field(tmp_path) -> None:
    path = write_prompts(
        tmp_path / "prompts.jsonl", [_sample("a", "hi", schema=SCHEMA), _sample("b", "no schema")]
    )
    with pytest.raises(DataError, match=r"prompts\.jsonl:2: .*schema"):
        check_prompts(read_prompts([path]), ["json_schema"])


def test_cli_bad_prompts_exit_nonzero_and_leave_no_output(tmp_path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        json.dumps(_sample("a", "hi", schema=SCHEMA))
        + "\n"
        + json.dumps({"id": "b", "input": []})
        + "\n"
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sample", "best-of-n", "--model", "tiny", "--prompts", str(path),
                                      "--scorer", "json_schema", "-o", str(out)])  # fmt: skip
    assert result.exit_code != 0
    assert "prompts.jsonl:2" in result.output and "input" in result.output
    assert not out.exists()


def test_cli_unknown_scorer_is_one_clear_line(tmp_path) -> None:
    path = write_prompts(tmp_path / "prompts.jsonl")
    result = CliRunner().invoke(app, ["sample", "best-of-n", "--model", "tiny", "--prompts", str(path),
                                      "--scorer", "no_such_scorer", "-o", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code != 0 and "unknown scorer 'no_such_scorer'" in result.output
    assert not (tmp_path / "out").exists()


def test_existing_output_folder_is_refused(tmp_path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    prompts = read_prompts([write_prompts(tmp_path / "prompts.jsonl")])
    with pytest.raises(FileExistsError):
        run_best_of_n(scripted_model(), prompts, BestOfNConfig(n=3, scorers=["json_schema"], seed=10),
                      tmp_path / "out")  # fmt: skip
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
