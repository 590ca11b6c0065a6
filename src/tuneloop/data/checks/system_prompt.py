"""``system_prompt_inconsistent``: a few records of a file use another system prompt.

When most records of a file share one system prompt, the others are usually a
mistake (a stale template, a missing prompt) and teach the model behaviour it will
not be prompted for. Files where no prompt is in the majority are mixtures, and are
left alone.
"""

from __future__ import annotations

from collections import Counter

from tuneloop.data.checks.item import Context, Item, system_prompt
from tuneloop.data.findings import CheckInfo

SYSTEM_PROMPT_INCONSISTENT = CheckInfo(
    "system_prompt_inconsistent", "warning",
    "Where most records of a file share one system prompt, the others use it too.",
)  # fmt: skip


def check_system_prompts(items: list[Item], ctx: Context) -> dict[str, dict[str, int]]:
    """Flag the records whose system prompt differs from their file's majority prompt.

    Returns per-file statistics: records, distinct prompts (no prompt counts as one),
    and how many records use the majority prompt.
    """
    stats: dict[str, dict[str, int]] = {}
    by_file: dict[str, list[Item]] = {}
    for item in items:
        by_file.setdefault(item.file, []).append(item)
    for file, group in by_file.items():
        prompts = [system_prompt(item) for item in group]
        counts = Counter(prompts)
        majority, n = counts.most_common(1)[0]
        stats[file] = {"records": len(group), "distinct": len(counts), "majority": n}
        if majority is None or n * 2 <= len(group) or len(counts) == 1:
            continue
        for item, prompt in zip(group, prompts, strict=True):
            if prompt != majority:
                what = (
                    "has no system prompt" if prompt is None else "uses a different system prompt"
                )
                ctx.add(SYSTEM_PROMPT_INCONSISTENT, item,
                        f"{what}; {n} of {len(group)} records in this file share one "
                        f"({len(counts)} distinct)", "system")  # fmt: skip
    return stats
