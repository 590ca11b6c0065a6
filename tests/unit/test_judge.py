"""The judge layer with scripted judge models: position swap, verdict parsing, the
summary's numbers worked out by hand, rubric grades and judge-human agreement."""

from __future__ import annotations

import pytest

from tuneloop.eval import stats
from tuneloop.eval.judge import (
    PairItem,
    PairVerdict,
    PairwiseJudge,
    RubricItem,
    RubricJudge,
    judge_human_agreement,
    pairwise_summary,
    parse_pairwise,
    parse_rating,
)
from tuneloop.runtime.backends.fake import FakeModel
from tuneloop.runtime.types import GenerationOutput


def _items(n: int) -> list[PairItem]:
    return [
        PairItem(id=str(i), question=f"question {i}", answer_a=f"a{i}", answer_b=f"b{i}")
        for i in range(n)
    ]


def _shown(prompt: str) -> tuple[str, str]:
    """The answers shown as Assistant A and Assistant B in a judge prompt."""
    a = prompt.split("[Assistant A's answer]\n")[1].split("\n[End of Assistant A's answer]")[0]
    b = prompt.split("[Assistant B's answer]\n")[1].split("\n[End of Assistant B's answer]")[0]
    return a, b


def _prefers_good(messages, config) -> str:
    a, _ = _shown(messages[-1]["content"])
    return "Reasoning... [[A]]" if "GOOD" in a else "Reasoning... [[B]]"


def _verdict(winner: str, first: str | None = None, second: str | None = None) -> PairVerdict:
    first = first or winner
    return PairVerdict(id="x", winner=winner, first=first, second=second or first, raw=["", ""])


# ------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Both are fine but A is clearer. [[A]]", "a"),
        ("Options are [[A]], [[B]] or [[C]]. My verdict: [[B]]", "b"),
        ("At first [[B]]... on reflection [[A]]", "a"),
        ("They are equally good.\n[[C]]", "tie"),
        ("analysis\n  b  \n", "b"),
        ("analysis\nTIE", "tie"),
        ("analysis\nA", "a"),
        ("I think A is better", "invalid"),
        ("", "invalid"),
        ("[[D]]", "invalid"),
    ],
)
def test_parse_pairwise(text, expected):
    assert parse_pairwise(text) == expected


def test_garbage_in_one_order_makes_a_tie():
    model = FakeModel(["[[A]]", "no idea"])
    verdict = PairwiseJudge(model).judge_many(_items(1))[0]
    assert (verdict.first, verdict.second, verdict.winner) == ("a", "invalid", "tie")
    assert verdict.outcome == 0.5
    assert verdict.raw == ["[[A]]", "no idea"]


def test_tie_marker_in_one_order_makes_a_tie():
    verdict = PairwiseJudge(FakeModel(["[[A]]", "[[C]]"])).judge_many(_items(1))[0]
    assert (verdict.first, verdict.second, verdict.winner) == ("a", "tie", "tie")


# ----------------------------------------------------------------- position swap


def test_judge_that_always_picks_position_a_gives_only_ties():
    """A judge blind to content that always says [[A]] names answer_a in the first order
    and answer_b in the swapped one: every pair is a tie, win rate exactly 50%."""
    model = FakeModel("Reasoning. [[A]]", repeat_last=True)
    verdicts = PairwiseJudge(model).judge_many(_items(4))
    assert [v.winner for v in verdicts] == ["tie"] * 4
    assert all((v.first, v.second) == ("a", "b") for v in verdicts)
    summary = pairwise_summary(verdicts, [1.0] * 4, [1.0] * 4)
    assert summary["win_rate"]["mean"] == 50.0
    assert summary["position_consistency"] == 0.0
    assert (summary["wins"], summary["losses"], summary["ties"]) == (0, 0, 4)


def test_content_judge_wins_and_losses_mapped_back_in_both_orders():
    items = [
        PairItem(id="win", question="q1", answer_a="GOOD answer", answer_b="weak answer"),
        PairItem(id="loss", question="q2", answer_a="weak answer", answer_b="GOOD answer"),
    ]
    model = FakeModel(_prefers_good, repeat_last=True)
    win, loss = PairwiseJudge(model).judge_many(items)
    assert (win.id, win.winner, win.first, win.second, win.outcome) == ("win", "a", "a", "a", 1.0)
    assert (loss.id, loss.winner, loss.first, loss.second, loss.outcome) == (
        "loss", "b", "b", "b", 0.0,
    )  # fmt: skip
    # The raw outputs are by position: the swapped order shows the GOOD answer_a second.
    assert win.raw == ["Reasoning... [[A]]", "Reasoning... [[B]]"]
    # Calls: both items in the original order, then both swapped.
    prompts = [messages[-1]["content"] for messages, _ in model.calls]
    assert _shown(prompts[0]) == ("GOOD answer", "weak answer")
    assert _shown(prompts[1]) == ("weak answer", "GOOD answer")
    assert _shown(prompts[2]) == ("weak answer", "GOOD answer")  # item "win", swapped
    assert _shown(prompts[3]) == ("GOOD answer", "weak answer")  # item "loss", swapped
    assert "q1" in prompts[0] and "q1" in prompts[2]
    assert all(v.consistent for v in (win, loss))


def test_prompt_contents_and_greedy_config():
    question = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    model = FakeModel("[[C]]", repeat_last=True)
    judge = PairwiseJudge(model, max_new_tokens=32, system_prompt="You are a fair judge.")
    verdict = judge.judge(question, "Paris", "Lyon", reference="Paris.")
    assert verdict.winner == "tie" and verdict.id == "0"
    messages, config = model.calls[0]
    assert messages[0] == {"role": "system", "content": "You are a fair judge."}
    prompt = messages[1]["content"]
    assert "System: Be brief.\n\nUser: Capital of France?" in prompt
    assert "[Reference answer, known to be correct]\nParis.\n" in prompt
    assert "[[A]]" in prompt and "[[B]]" in prompt and "[[C]]" in prompt
    assert config.temperature == 0.0 and config.max_new_tokens == 32
    # No reference, no system prompt: neither appears.
    model = FakeModel("[[C]]", repeat_last=True)
    PairwiseJudge(model).judge("Capital of France?", "Paris", "Lyon")
    messages, _ = model.calls[0]
    assert len(messages) == 1 and "Reference" not in messages[0]["content"]
    assert "[User question]\nCapital of France?\n" in messages[0]["content"]


def test_custom_template_is_used_and_checked():
    model = FakeModel("[[A]]", repeat_last=True)
    judge = PairwiseJudge(model, template="Q={question} 1={answer_a} 2={answer_b} {{literal}}")
    judge.judge("q", "x", "y")
    assert model.calls[0][0][0]["content"] == "Q=q 1=x 2=y {literal}"
    assert model.calls[1][0][0]["content"] == "Q=q 1=y 2=x {literal}"
    with pytest.raises(ValueError, match="answer_b"):
        PairwiseJudge(model, template="{question} {answer_a}")
    with pytest.raises(ValueError, match="unknown"):
        PairwiseJudge(model, template="{question} {answer_a} {answer_b} {model_name}")


class _CountingModel:
    """Records each generate_batch call; generate alone must not be used."""

    name = "counting"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def generate(self, messages, config=None):
        raise AssertionError("expected one batched call, got a single generate")

    def stream(self, messages, config=None):
        raise AssertionError("not used")

    def generate_batch(self, conversations, config=None):
        self.batches.append(len(conversations))
        return [GenerationOutput(text="[[C]]") for _ in conversations]


def test_judge_many_and_grade_many_make_one_batched_call():
    model = _CountingModel()
    assert len(PairwiseJudge(model).judge_many(_items(3))) == 3
    assert model.batches == [6]
    items = [RubricItem(id=str(i), question="q", answer="x") for i in range(3)]
    RubricJudge(model).grade_many(items)
    assert model.batches == [6, 3]
    assert PairwiseJudge(model).judge_many([]) == [] and model.batches == [6, 3]


# ------------------------------------------------------------------------- summary


def test_pairwise_summary_counts_and_win_rate():
    """3 wins, 1 loss, 1 tie: 100 × (3 + 0 + 0.5) / 5 = 70. The tie is a pair whose
    swapped order was unreadable (one invalid output), so 4 of 5 pairs are consistent."""
    verdicts = [
        _verdict("a"),
        _verdict("a"),
        _verdict("a"),
        _verdict("b"),
        _verdict("tie", first="a", second="invalid"),
    ]
    summary = pairwise_summary(verdicts, [1.0] * 5, [1.0] * 5)
    assert (summary["n"], summary["wins"], summary["losses"], summary["ties"]) == (5, 3, 1, 1)
    assert summary["invalid"] == 1
    assert summary["position_consistency"] == pytest.approx(4 / 5)
    assert summary["win_rate"]["mean"] == pytest.approx(70.0)
    assert summary["win_rate"]["n"] == 5
    assert summary["win_rate"]["low"] <= 70.0 <= summary["win_rate"]["high"]
    # Equal lengths: length explains nothing, the LC rate is the raw one.
    assert summary["lc_win_rate"]["raw"] == pytest.approx(70.0)
    assert summary["lc_win_rate"]["mean"] == pytest.approx(70.0, abs=0.5)


def test_pairwise_summary_both_tie_counts_as_consistent():
    summary = pairwise_summary([_verdict("tie")], [1.0], [2.0])
    assert summary["position_consistency"] == 1.0 and summary["invalid"] == 0


def test_pairwise_summary_length_controlled_wiring():
    """The model's answer is longer on 20 items and wins 18 (p = 0.9); shorter on 5 and
    scores 0.5 (one tie) of 5 (p = 0.1). Raw: 100 × 18.5 / 25 = 74. Every Δ is ±200, so the
    fit σ(θ + φx) is saturated on two groups: θ = (logit 0.9 + logit 0.1) / 2 = 0 and the
    LC rate is 50 (up to the tiny L2 penalty on φ), with φ > 0: the judge likes length."""
    outcomes = [1.0] * 18 + [0.0] * 2 + [0.5] + [0.0] * 4
    winners = {1.0: "a", 0.0: "b", 0.5: "tie"}
    verdicts = [_verdict(winners[o]) for o in outcomes]
    len_a, len_b = [300.0] * 20 + [100.0] * 5, [100.0] * 20 + [300.0] * 5
    summary = pairwise_summary(verdicts, len_a, len_b)
    assert summary["win_rate"]["mean"] == pytest.approx(74.0)
    lc = summary["lc_win_rate"]
    assert lc["raw"] == pytest.approx(74.0)
    assert lc["mean"] == pytest.approx(50.0, abs=0.5) and lc["phi"] > 0
    expected = stats.length_controlled_win_rate(outcomes, len_a, len_b)
    assert (lc["mean"], lc["low"], lc["high"], lc["phi"]) == (
        expected.lc_win_rate, expected.low, expected.high, expected.phi,
    )  # fmt: skip


def test_pairwise_summary_empty_and_mismatched():
    summary = pairwise_summary([], [], [])
    assert summary["n"] == 0 and summary["position_consistency"] is None
    assert summary["win_rate"]["mean"] is None and summary["lc_win_rate"]["mean"] is None
    with pytest.raises(ValueError, match="one length pair per verdict"):
        pairwise_summary([_verdict("a")], [1.0], [])


# ------------------------------------------------------------------------- rubric


def test_parse_rating():
    assert parse_rating("Good.\nRating: [[7]]", 10) == 7
    assert parse_rating("Rating: [[3]] ... on reflection Rating: [[8]]", 10) == 8
    assert parse_rating("Rating: [[7.5]]", 10) == 7.5
    assert parse_rating("Rating: [[11]]", 10) is None
    assert parse_rating("Rating: [[0]]", 10) is None
    assert parse_rating("Rating: 7", 10) is None


def test_rubric_judge_scores_and_invalid_outputs():
    model = FakeModel(["Fine.\nRating: [[7]]", "Rating: [[11]]", "great answer", "[[1]]"])
    items = [
        RubricItem(id="1", question="q", answer="x", reference="ref", rubric="Be exact."),
        RubricItem(id="2", question="q", answer="x"),
        RubricItem(id="3", question="q", answer="x"),
        RubricItem(id="4", question="q", answer="x"),
    ]
    good, too_high, garbage, lowest = RubricJudge(model, rubric="Default rubric.").grade_many(items)
    assert good.value == pytest.approx((7 - 1) / 9) and good.passed is None
    assert "7/10" in good.explanation
    for bad in (too_high, garbage):
        assert bad.value == 0.0 and bad.passed is None
        assert bad.metadata == {"invalid": True}
        assert bad.explanation.startswith("invalid judge output: ")
    assert "great answer" in garbage.explanation
    assert lowest.value == 0.0 and "invalid" not in lowest.metadata
    first, second = model.calls[0][0][0]["content"], model.calls[1][0][0]["content"]
    assert "Be exact." in first and "Default rubric." not in first
    assert "[Reference answer, known to be correct]\nref\n" in first
    assert "Default rubric." in second and "Reference" not in second
    assert "from 1 (worst) to 10 (best)" in first and "Rating: [[N]]" in first


def test_rubric_scale_five():
    score = RubricJudge(FakeModel("Rating: [[4]]"), scale=5).grade_many(
        [RubricItem(id="1", question="q", answer="x")]
    )[0]
    assert score.value == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match="scale"):
        RubricJudge(FakeModel("x"), scale=1)


# ------------------------------------------------------------------ human agreement


def test_judge_human_agreement_hand_computed():
    """Judge a, a, b, tie, a vs human a, b, b, tie, tie on items 1-5: 3 agree, p_o = 3/5.
    Judge counts a 3, b 1, tie 1; human a 1, b 2, tie 2; p_e = (3·1 + 1·2 + 1·2)/25 = 7/25;
    kappa = (3/5 − 7/25) / (1 − 7/25) = (15 − 7)/(25 − 7) = 4/9. Item 6 is only judged by
    the judge, item 7 was skipped by the human: neither counts."""
    judge = {"1": "a", "2": "a", "3": "b", "4": "tie", "5": "a", "6": "a", "7": "b"}
    human = {"1": "a", "2": "b", "3": "b", "4": "tie", "5": "tie", "7": "skip", "8": "a"}
    result = judge_human_agreement(judge, human)
    assert result["n"] == 5
    assert result["agreement"] == pytest.approx(3 / 5)
    assert result["kappa"] == pytest.approx(4 / 9)


def test_judge_human_agreement_empty():
    assert judge_human_agreement({"1": "a"}, {"2": "a"}) == {
        "n": 0, "agreement": None, "kappa": None,
    }  # fmt: skip
