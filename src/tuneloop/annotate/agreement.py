"""Majority votes and inter-annotator agreement (raw % and Cohen's kappa), pure functions."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

from pydantic import BaseModel

from tuneloop.eval.stats import cohen_kappa as stats_cohen_kappa

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
