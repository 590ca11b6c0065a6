"""Layer C of the scorecard: a judge model compares two answers, or grades one.

Pairwise judging (MT-Bench / AlpacaEval style, our own wording) asks the judge which of
two answers is better. Judges favour the answer shown first, so every pair is judged in
both orders, and an answer wins only when the judge names it both times; a disagreement,
a tie or an unreadable verdict in either order makes the pair a tie. Single-answer
grading (:class:`RubricJudge`) asks for a 1..scale rating against a rubric. Both send all
their prompts through one :func:`~tuneloop.runtime.types.generate_many` call, so a
batched engine batches them.

Usage::

    judge = PairwiseJudge(judge_model)
    item = PairItem(id="q1", question="What is 2 + 2?", answer_a="4", answer_b="5")
    verdict = judge.judge_many([item])[0]
    verdict.winner, verdict.first, verdict.second   # "a", "a", "a" when consistent
    pairwise_summary([verdict], len_a=[1], len_b=[1])["win_rate"]["mean"]   # 100.0

Answer ``a`` is the model under test and ``b`` the baseline: ``outcome`` is 1 when ``a``
wins, which is what :func:`~tuneloop.eval.stats.win_rate` counts.
"""

from __future__ import annotations

import re
import string
from typing import Any, Literal

from pydantic import BaseModel, field_validator

from tuneloop.eval import stats
from tuneloop.eval.scoring import Score
from tuneloop.runtime.types import ChatModel, GenerationConfig, Message, generate_many

Label = Literal["a", "b", "tie"]
OrderVerdict = Literal["a", "b", "tie", "invalid"]

PAIRWISE_TEMPLATE = """\
Two AI assistants answered the same user question. Decide which answer serves the user \
better. Weigh correctness first, then helpfulness, relevance, completeness and clarity. \
Do not let the order in which the answers appear, their length or the assistants' names \
sway you.

Explain your reasoning briefly, then end with your verdict on a line of its own, exactly \
one of: [[A]] if Assistant A's answer is better, [[B]] if Assistant B's answer is better, \
[[C]] if they are equally good.

[User question]
{question}
{reference}
[Assistant A's answer]
{answer_a}
[End of Assistant A's answer]

[Assistant B's answer]
{answer_b}
[End of Assistant B's answer]"""
"""The default pairwise prompt; ``{reference}`` is empty or a reference-answer block."""

DEFAULT_RUBRIC = (
    "Is the answer correct, helpful and relevant to the question? Is it complete without "
    "padding, and clearly written? Factual errors weigh more than style."
)
"""The rubric :class:`RubricJudge` grades against when none is given."""

_RUBRIC_TEMPLATE = """\
Rate the AI assistant's answer to the user question below against this rubric:
{rubric}

Explain your assessment briefly, then end with a rating from 1 (worst) to {scale} (best) \
on a line of its own, in exactly this form: Rating: [[N]]

[User question]
{question}
{reference}
[Assistant's answer]
{answer}
[End of assistant's answer]"""

_REFERENCE_BLOCK = (
    "\n[Reference answer, known to be correct]\n{reference}\n[End of reference answer]\n"
)
_PAIR_FIELDS = {"question", "answer_a", "answer_b", "reference"}
_PAIR_MARK = re.compile(r"\[\[\s*([ABC])\s*\]\]", re.IGNORECASE)
_RATING_MARK = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")
_SWAP: dict[str, OrderVerdict] = {"a": "b", "b": "a", "tie": "tie", "invalid": "invalid"}


def _as_messages(question: str | list[dict]) -> list[dict]:
    if isinstance(question, str):
        return [{"role": "user", "content": question}]
    if not question:
        raise ValueError("question has no messages")
    return question


class PairItem(BaseModel):
    """One question with two answers to compare."""

    id: str
    """Stable id of the item (verdicts carry it back)."""
    question: list[dict]
    """The conversation the answers reply to (chat messages); a string is one user turn."""
    answer_a: str
    """The answer of the model under test."""
    answer_b: str
    """The baseline's answer."""
    reference: str | None = None
    """A known-good answer shown to the judge, when there is one."""

    _messages = field_validator("question", mode="before")(_as_messages)


class PairVerdict(BaseModel):
    """The judge's decision on one pair, after judging it in both orders."""

    id: str
    """The :class:`PairItem`'s id."""
    winner: Label
    """``a`` or ``b`` only when both orders named it; otherwise ``tie``."""
    first: OrderVerdict
    """The verdict with ``answer_a`` shown first (as Assistant A)."""
    second: OrderVerdict
    """The verdict with the answers swapped, mapped back to the original labels."""
    raw: list[str]
    """The judge's two outputs: original order, then swapped."""

    @property
    def outcome(self) -> float:
        """1.0 when ``a`` (the model under test) wins, 0.0 when ``b`` wins, 0.5 for a tie."""
        return {"a": 1.0, "b": 0.0, "tie": 0.5}[self.winner]

    @property
    def consistent(self) -> bool:
        """Both orders gave the same readable verdict (the same winner, or both a tie)."""
        return self.first == self.second and self.first != "invalid"


class RubricItem(BaseModel):
    """One answer to grade."""

    id: str
    """Stable id of the item."""
    question: list[dict]
    """The conversation the answer replies to (chat messages); a string is one user turn."""
    answer: str
    """The answer to grade."""
    reference: str | None = None
    """A known-good answer shown to the judge, when there is one."""
    rubric: str | None = None
    """Overrides the judge's rubric for this item."""

    _messages = field_validator("question", mode="before")(_as_messages)


def render_question(messages: list[dict]) -> str:
    """The conversation as the judge reads it: a lone user turn as its text, else one
    ``Role: text`` paragraph per message."""
    if len(messages) == 1 and messages[0].get("role") == "user":
        return _text(messages[0])
    return "\n\n".join(f"{str(m.get('role', 'user')).capitalize()}: {_text(m)}" for m in messages)


def _text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):  # multimodal parts: the judge sees the text ones
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def _reference(reference: str | None) -> str:
    return _REFERENCE_BLOCK.format(reference=reference) if reference is not None else ""


def parse_pairwise(text: str) -> OrderVerdict:
    """The verdict in a judge's output, by position: ``a``, ``b``, ``tie`` or ``invalid``.

    The last ``[[A]]``/``[[B]]``/``[[C]]`` wins (judges often quote the options before
    deciding); ``[[C]]`` is a tie. Without one, a bare last line ``A``, ``B`` or ``tie``
    (any case) counts. ``"[[A]] ... no, [[B]]"`` -> ``b``; ``"I think A"`` -> ``invalid``.
    """
    marks = _PAIR_MARK.findall(text)
    if marks:
        return {"a": "a", "b": "b", "c": "tie"}[marks[-1].lower()]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    last = lines[-1].lower() if lines else ""
    return last if last in ("a", "b", "tie") else "invalid"  # type: ignore[return-value]


def _verdict(item: PairItem, text_1: str, text_2: str) -> PairVerdict:
    first, second = parse_pairwise(text_1), _SWAP[parse_pairwise(text_2)]
    # An answer wins only when named in both orders; anything else is a tie.
    winner = first if first == second and first in ("a", "b") else "tie"
    return PairVerdict(id=item.id, winner=winner, first=first, second=second, raw=[text_1, text_2])


class PairwiseJudge:
    """Compares two answers with a judge model, in both orders, greedily.

    ``template`` replaces the prompt: a ``str.format`` string with ``{question}``,
    ``{answer_a}``, ``{answer_b}`` and optionally ``{reference}`` (double any other
    braces); it must keep asking for ``[[A]]``/``[[B]]``/``[[C]]``. ``system_prompt``, when
    given, is sent as a system message before it.
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        template: str | None = None,
        max_new_tokens: int = 256,
        system_prompt: str | None = None,
    ) -> None:
        self.model = model
        self.template = template if template is not None else PAIRWISE_TEMPLATE
        fields = {f for _, f, _, _ in string.Formatter().parse(self.template) if f is not None}
        missing = {"question", "answer_a", "answer_b"} - fields
        if missing or not fields <= _PAIR_FIELDS:
            raise ValueError(
                f"template must use {{question}}, {{answer_a}}, {{answer_b}} and may use "
                f"{{reference}}; missing {sorted(missing)}, unknown {sorted(fields - _PAIR_FIELDS)}"
            )
        self.system_prompt = system_prompt
        self.config = GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.0)

    def prompt(self, item: PairItem, *, swapped: bool = False) -> list[Message]:
        """The judge's conversation for ``item``; ``swapped`` shows ``answer_b`` first."""
        first, second = (
            (item.answer_b, item.answer_a) if swapped else (item.answer_a, item.answer_b)
        )
        user = self.template.format(
            question=render_question(item.question),
            answer_a=first,
            answer_b=second,
            reference=_reference(item.reference),
        )
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, {"role": "user", "content": user}]

    def judge_many(self, items: list[PairItem]) -> list[PairVerdict]:
        """Judge every pair in both orders, all 2N prompts in one batched call."""
        conversations = [self.prompt(item) for item in items]
        conversations += [self.prompt(item, swapped=True) for item in items]
        texts = _generate(self.model, conversations, self.config)
        return [_verdict(item, texts[i], texts[len(items) + i]) for i, item in enumerate(items)]

    def judge(
        self,
        question: str | list[dict],
        answer_a: str,
        answer_b: str,
        reference: str | None = None,
    ) -> PairVerdict:
        """Judge one pair (id ``"0"``); see :meth:`judge_many`."""
        item = PairItem(
            id="0", question=question, answer_a=answer_a, answer_b=answer_b, reference=reference
        )
        return self.judge_many([item])[0]


def _generate(model: ChatModel, conversations: list[list[Message]], config: GenerationConfig):
    outputs = generate_many(model, conversations, config) if conversations else []
    if len(outputs) != len(conversations):
        raise RuntimeError(
            f"judge model returned {len(outputs)} outputs for {len(conversations)} prompts"
        )
    return [o.text for o in outputs]


def pairwise_summary(
    verdicts: list[PairVerdict], len_a: list[float], len_b: list[float]
) -> dict[str, Any]:
    """Counts, position consistency, the win rate and the length-controlled win rate.

    Rates are in percent; ``len_a``/``len_b`` are the answers' lengths (any unit, the same
    for both), item by item. Example: 3 wins, 1 loss, 1 tie -> win rate
    100 × (3 + 0 + 0.5) / 5 = 70. With no verdicts the rates are ``None``.
    """
    if not len(verdicts) == len(len_a) == len(len_b):
        raise ValueError(
            f"need one length pair per verdict: {len(verdicts)} verdicts, "
            f"{len(len_a)} len_a, {len(len_b)} len_b"
        )
    n = len(verdicts)
    outcomes = [v.outcome for v in verdicts]
    summary: dict[str, Any] = {
        "n": n,
        "wins": sum(v.winner == "a" for v in verdicts),
        "losses": sum(v.winner == "b" for v in verdicts),
        "ties": sum(v.winner == "tie" for v in verdicts),
        "invalid": sum((v.first == "invalid") + (v.second == "invalid") for v in verdicts),
        "position_consistency": sum(v.consistent for v in verdicts) / n if n else None,
    }
    if n == 0:
        summary["win_rate"] = {"mean": None, "low": None, "high": None, "n": 0}
        summary["lc_win_rate"] = {"mean": None, "low": None, "high": None, "raw": None, "phi": None}
        return summary
    ci = stats.win_rate(outcomes)
    lc = stats.length_controlled_win_rate(outcomes, len_a, len_b)
    summary["win_rate"] = {"mean": ci.estimate, "low": ci.low, "high": ci.high, "n": ci.n}
    summary["lc_win_rate"] = {
        "mean": lc.lc_win_rate,
        "low": lc.low,
        "high": lc.high,
        "raw": lc.raw_win_rate,
        "phi": lc.phi,
    }
    return summary


def parse_rating(text: str, scale: int) -> float | None:
    """The last ``[[N]]`` in a judge's output when 1 ≤ N ≤ scale, else None.

    ``"Rating: [[3]] ... on reflection Rating: [[7]]"`` -> 7; ``"[[11]]"`` with scale 10
    -> None. Decimals (``[[7.5]]``) are read as given, as MT-Bench does.
    """
    marks = _RATING_MARK.findall(text)
    if not marks:
        return None
    rating = float(marks[-1])
    return rating if 1 <= rating <= scale else None


class RubricJudge:
    """Grades single answers 1..scale against a rubric (MT-Bench single-answer style).

    The rating maps to ``Score.value = (N − 1) / (scale − 1)`` in [0, 1]: with scale 10,
    ``Rating: [[7]]`` -> 6/9. An unreadable or out-of-range rating scores 0 with
    ``metadata["invalid"]``, so it shows in reports instead of vanishing.
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        rubric: str | None = None,
        scale: int = 10,
        max_new_tokens: int = 256,
    ) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
            raise ValueError(f"scale must be an integer ≥ 2, got {scale!r}")
        self.model = model
        self.rubric = rubric if rubric is not None else DEFAULT_RUBRIC
        self.scale = scale
        self.config = GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.0)

    def prompt(self, item: RubricItem) -> list[Message]:
        """The judge's conversation for ``item``."""
        user = _RUBRIC_TEMPLATE.format(
            rubric=item.rubric if item.rubric is not None else self.rubric,
            scale=self.scale,
            question=render_question(item.question),
            reference=_reference(item.reference),
            answer=item.answer,
        )
        return [{"role": "user", "content": user}]

    def grade_many(self, items: list[RubricItem]) -> list[Score]:
        """One :class:`Score` per item, all prompts in one batched call."""
        texts = _generate(self.model, [self.prompt(item) for item in items], self.config)
        return [self._score(text) for text in texts]

    def _score(self, text: str) -> Score:
        rating = parse_rating(text, self.scale)
        if rating is None:
            shown = text if len(text) <= 200 else text[-200:]  # the verdict sits at the end
            return Score(
                value=0.0,
                passed=None,
                explanation=f"invalid judge output: {shown!r}",
                metadata={"invalid": True},
            )
        return Score(
            value=(rating - 1) / (self.scale - 1),
            passed=None,
            explanation=f"judge rating {rating:g}/{self.scale}",
            metadata={"rating": rating, "scale": self.scale, "judge_output": text},
        )


def judge_human_agreement(judge: dict[str, str], human: dict[str, str]) -> dict[str, Any]:
    """How often the judge's pair verdicts match human ones, raw and chance-corrected.

    Counts ids present in both with labels in ``a``/``b``/``tie`` on both sides. Example:
    judge a, a, b, tie, a vs human a, b, b, tie, tie: 3 of 5 agree; chance agreement
    (3·1 + 1·2 + 1·2) / 25 = 7/25, kappa = (15 − 7) / (25 − 7) = 4/9. ``None`` values when
    no id qualifies (or kappa when both always used one and the same label).
    """
    labels = ("a", "b", "tie")
    ids = sorted(
        i for i in judge.keys() & human.keys() if judge[i] in labels and human[i] in labels
    )
    agreement, kappa = stats.cohen_kappa([judge[i] for i in ids], [human[i] for i in ids])
    return {"n": len(ids), "agreement": agreement, "kappa": kappa}
