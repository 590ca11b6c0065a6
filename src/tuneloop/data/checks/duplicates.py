"""``exact_duplicate`` and ``near_duplicate`` records, within and across the files.

All files given to one validation run form one training set, so a record repeated
anywhere in it is weighted twice: an error. The first occurrence is kept as the
original; each later copy is reported with a pointer to it, and left out of the
near-duplicate search (its near-duplicates are its original's).

Near-duplicates (MinHash LSH, :mod:`tuneloop.data.dedup`) are compared without the
system prompt: a long prompt shared by a whole file would otherwise make every
record a near-duplicate of every other.
"""

from __future__ import annotations

from tuneloop.data.checks.item import Context, Item, record_text
from tuneloop.data.dedup import exact_duplicate_groups, near_duplicate_pairs
from tuneloop.data.findings import CheckInfo

EXACT_DUPLICATE = CheckInfo(
    "exact_duplicate", "error", "No record repeats another (normalized full text), in any of the files."
)  # fmt: skip
NEAR_DUPLICATE = CheckInfo(
    "near_duplicate", "warning",
    "No record is a near-copy of another (estimated Jaccard at or above the threshold).",
)  # fmt: skip

CHECKS = (EXACT_DUPLICATE, NEAR_DUPLICATE)


def _where(item: Item) -> str:
    return f"{item.file}:{item.line}"


def check_duplicates(items: list[Item], ctx: Context, threshold: float) -> dict[str, int]:
    """Report later copies; return counts ``{"exact": ..., "near": ...}``."""
    keys = {str(i): item for i, item in enumerate(items)}
    copies: set[str] = set()
    for group in exact_duplicate_groups([(k, record_text(it)) for k, it in keys.items()]):
        first, *rest = sorted(group, key=int)
        for k in rest:
            copies.add(k)
            ctx.add(EXACT_DUPLICATE, keys[k], f"duplicate of {_where(keys[first])}")
    # Later exact copies are left out: their near-duplicates are their original's.
    texts = [(k, record_text(it, skip_system=True)) for k, it in keys.items() if k not in copies]
    near = 0
    for a, b, score in near_duplicate_pairs(texts, threshold=threshold):
        a, b = sorted((a, b), key=int)
        near += 1
        ctx.add(NEAR_DUPLICATE, keys[b], f"near-duplicate of {_where(keys[a])} (estimated Jaccard {score:.2f})")  # fmt: skip
    return {"exact": len(copies), "near": near}
