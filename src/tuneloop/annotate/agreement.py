"""Majority votes and inter-annotator agreement (raw % and Cohen's kappa), pure functions."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

from pydantic import BaseModel

from tuneloop.eval.stats import cohen_kappa as stats_cohen_kappa
from tuneloop.runtime.types import ChatModel

LABELS = ("a", "b", "tie")
"""The verdicts agreement is measured on; ``skip`` says nothing about the item."""


class Agreement(BaseModel):
    """How often annotators who judged the same item agreed."""

    items: int = 0
    """Items with verdicts (a/b/tie) from at least two annotators."""
    pairs: int = 0
    """(item, annotator pair) comparisons the numbers are computed over."""
    raw: float | None = None
    """Share of those comparisons where both gave the same verdict (0..1)."""
    kappa: float | None = None
    """Cohen's kappa over the pooled comparisons; None when chance agreement is 1."""


def majority(votes: list[str]) -> str | None:
    """The verdict most annotators gave (skips ignored); None for no votes or an exact split.

    ``["a", "a", "b"] -> "a"``; ``["a", "b"] -> None``; ``["tie", "tie", "a"] -> "tie"``.
    """
    counts = Counter(v for v in votes if v in LABELS).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def cohen_kappa(pairs: list[tuple[str, str]]) -> tuple[float | None, float | None]:
    """``(raw agreement, kappa)`` of paired verdicts ``(first rater, second rater)``.

    kappa = (p_o - p_e) / (1 - p_e), p_e = sum over labels of p_first(l) * p_second(l).
    Example: [(a,a), (a,b), (b,b), (tie,tie)]: p_o = 3/4; first marginals a 2/4, b 1/4,
    tie 1/4; second a 1/4, b 2/4, tie 1/4; p_e = 2/16 + 2/16 + 1/16 = 5/16;
    kappa = (12/16 - 5/16) / (11/16) = 7/11.
    """
    if not pairs:
        return None, None
    first, second = zip(*pairs, strict=True)
    return stats_cohen_kappa(first, second)


def agreement(verdicts: dict[str, dict[str, str]]) -> Agreement:
    """Agreement over ``{item_id: {annotator: verdict}}``.

    Every pair of annotators who both gave an a/b/tie verdict on an item adds one
    comparison; the raters of a pair are ordered by name, and all comparisons are pooled
    into one table for kappa.
    """
    pairs: list[tuple[str, str]] = []
    items = 0
    for by_annotator in verdicts.values():
        judged = sorted((who, v) for who, v in by_annotator.items() if v in LABELS)
        if len(judged) < 2:
            continue
        items += 1
        pairs += [(v1, v2) for (_, v1), (_, v2) in combinations(judged, 2)]
    raw, kappa = cohen_kappa(pairs)
    return Agreement(items=items, pairs=len(pairs), raw=raw, kappa=kappa)


def _answer_text(messages: list[dict]) -> str:
    """What a response said: its assistant turns' text, tool calls written as JSON."""
    parts = []
    for m in messages:
        if m.get("content"):
            parts.append(str(m["content"]))
        for call in m.get("tool_calls") or []:
            parts.append(f"[tool call] {call.get('function', {}).get('name')} "
                         f"{call.get('function', {}).get('arguments')}")  # fmt: skip
    return "\n".join(parts)


def judge_agreement(store, judge: ChatModel, *, max_new_tokens: int = 256) -> dict:
    """How well a judge model agrees with the humans of an annotation store.

    Every pair item with a human majority verdict (a/b/tie) is judged by
    :class:`~tuneloop.eval.judge.PairwiseJudge` in both orders; the result is
    :func:`~tuneloop.eval.judge.judge_human_agreement` (``n``, raw ``agreement``,
    Cohen's ``kappa``) plus the per-item verdicts.
    """
    from tuneloop.eval.judge import PairItem, PairwiseJudge, judge_human_agreement

    human = store.human_verdicts()
    items = []
    for iid in sorted(human):
        item = store.get_item(iid)
        items.append(PairItem(id=iid, question=item.prompt, answer_a=_answer_text(item.response_a),
                              answer_b=_answer_text(item.response_b)))  # fmt: skip
    verdicts = PairwiseJudge(judge, max_new_tokens=max_new_tokens).judge_many(items) if items else []
    machine = {v.id: v.winner for v in verdicts}
    return {**judge_human_agreement(machine, human),
            "items": [{"id": v.id, "human": human[v.id], "judge": v.winner, "first": v.first,
                       "second": v.second} for v in verdicts]}  # fmt: skip
