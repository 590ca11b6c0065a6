"""Data checks, one concept per module; :mod:`tuneloop.data.validate` runs them all.

Each check has a stable id and a default severity (:class:`CheckInfo`), declared once
in its module and listed in :data:`ALL_CHECKS`.
"""

from tuneloop.data.checks import (
    contamination,
    duplicates,
    leakage,
    pii,
    preference,
    rendering,
    schema,
    system_prompt,
    tools,
    turns,
)
from tuneloop.data.findings import CheckInfo

ALL_CHECKS: dict[str, CheckInfo] = {
    c.id: c
    for c in (
        schema.SCHEMA, *turns.CHECKS, *rendering.CHECKS, *duplicates.CHECKS,
        contamination.CONTAMINATION, leakage.LABEL_LEAKAGE,
        system_prompt.SYSTEM_PROMPT_INCONSISTENT, pii.PII, *tools.CHECKS, *preference.CHECKS,
    )
}  # fmt: skip
"""Every check id -> its :class:`CheckInfo`, in the order reports list them."""

__all__ = ["ALL_CHECKS"]
