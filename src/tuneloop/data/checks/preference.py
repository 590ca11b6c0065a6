"""Preference pairs: ``pair_identical``, ``pair_empty_side``, ``length_bias``.

A pair whose sides are equal (or one side empty) carries no preference signal, and
DPO-family losses on it are noise. ``length_bias`` is set-level: when chosen answers
are nearly always the longer ones, the cheapest thing a model learns is "write
more" (the length exploitation documented for RLHF and DPO). A share of
chosen-longer pairs outside 40-60% is reported per file, from 10 pairs up; fewer
pairs say nothing about a bias.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuneloop.data.checks.item import Context, Item, normalize, turns_text
from tuneloop.data.findings import CheckInfo
from tuneloop.data.records import PreferencePair

PAIR_IDENTICAL = CheckInfo("pair_identical", "error", "A pair's chosen and rejected sides differ.")
PAIR_EMPTY_SIDE = CheckInfo("pair_empty_side", "error", "Neither side of a pair is empty.")
LENGTH_BIAS = CheckInfo(
    "length_bias", "warning", "Chosen is the longer side in 40-60% of a file's pairs (checked from 10 pairs)."
)  # fmt: skip

CHECKS = (PAIR_IDENTICAL, PAIR_EMPTY_SIDE, LENGTH_BIAS)

BALANCED = (0.4, 0.6)
MIN_PAIRS = 10


@dataclass
class Lengths:
    """Running tally of one file's pair lengths (characters)."""

    pairs: int = 0
    chosen_longer: int = 0
    ratio_sum: float = 0.0


def _side(pair: PreferencePair, name: str) -> str:
    return turns_text(getattr(pair, name), roles=False).strip()


def check_pair(item: Item, ctx: Context, lengths: dict[str, Lengths]) -> None:
    """Per-pair checks; tallies lengths of valid pairs into ``lengths`` (by file)."""
    if not isinstance(item.record, PreferencePair):
        return
    chosen, rejected = _side(item.record, "chosen"), _side(item.record, "rejected")
    empty = [name for name, text in (("chosen", chosen), ("rejected", rejected)) if not text]
    for name in empty:
        ctx.add(PAIR_EMPTY_SIDE, item, "this side is empty (no text, no tool calls)", name)
    if empty:
        return
    if normalize(chosen) == normalize(rejected):
        ctx.add(PAIR_IDENTICAL, item, "chosen and rejected are the same text")
        return
    tally = lengths.setdefault(item.file, Lengths())
    tally.pairs += 1
    tally.chosen_longer += len(chosen) > len(rejected)
    tally.ratio_sum += len(chosen) / len(rejected)


def check_length_bias(lengths: dict[str, Lengths], ctx: Context) -> dict[str, dict[str, float]]:
    """Per-file length statistics of valid pairs; a finding where the share is unbalanced."""
    stats = {}
    for file, t in lengths.items():
        share = t.chosen_longer / t.pairs
        stats[file] = {"pairs": t.pairs, "chosen_longer_share": round(share, 4),
                       "mean_length_ratio": round(t.ratio_sum / t.pairs, 4)}  # fmt: skip
        if t.pairs >= MIN_PAIRS and not BALANCED[0] <= share <= BALANCED[1]:
            ctx.add_at(LENGTH_BIAS, file, None,
                       f"chosen is longer in {share:.0%} of {t.pairs} pairs (mean chosen/rejected "
                       f"length ratio {stats[file]['mean_length_ratio']:.2f}); expected 40-60%")  # fmt: skip
    return stats
