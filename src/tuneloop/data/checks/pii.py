"""``pii``: personal data and secrets in any turn (found by :mod:`tuneloop.data.pii`).

Findings name each kind and show values masked (:func:`~tuneloop.data.pii.mask_value`),
so the report itself can be shared without spreading what it found.
"""

from __future__ import annotations

from collections import Counter

from tuneloop.data.checks.item import Context, Item, message_text
from tuneloop.data.findings import CheckInfo
from tuneloop.data.pii import find_pii, mask_value

PII = CheckInfo(
    "pii", "warning",
    "No emails, phone numbers, IBANs, card numbers, IP addresses or API keys in any turn.",
)  # fmt: skip

_SHOW = 5


def check_pii(item: Item, ctx: Context, counts: Counter) -> None:
    """One finding per turn that holds personal data; ``counts`` tallies kinds."""
    for path, m in item.turns:
        matches = find_pii(message_text(m))
        if not matches:
            continue
        counts.update(x.kind for x in matches)
        shown = ", ".join(f"{x.kind} {mask_value(x.value)}" for x in matches[:_SHOW])
        more = f" (+{len(matches) - _SHOW} more)" if len(matches) > _SHOW else ""
        ctx.add(PII, item, f"{shown}{more}", path)
