"""``label_leakage``: the answer to be learned is already written in the prompt.

A model trained on such examples learns to copy from its prompt, and an eval built
from them measures copying. Only user and system text count as the prompt: repeating
a tool's result is what an assistant should do.
"""

from __future__ import annotations

from tuneloop.data.checks.item import Context, Item, normalize
from tuneloop.data.findings import CheckInfo

LABEL_LEAKAGE = CheckInfo(
    "label_leakage", "warning",
    "No trained assistant answer (of 20+ characters) appears verbatim in the user/system turns before it.",
)  # fmt: skip

MIN_ANSWER_CHARS = 20
"""Shorter answers ("Yes.", "42") legitimately occur in prompts."""


def check_label_leakage(item: Item, ctx: Context) -> None:
    """Each trained assistant turn against the user and system text before it."""
    seen: set[str] = set()
    for seq in item.sequences:
        prompt: list[str] = []
        for i, m in enumerate(seq.messages):
            answer = normalize(m.content or "")
            trained = m.role == "assistant" and i >= seq.trained_from
            if trained and len(answer) >= MIN_ANSWER_CHARS and seq.fields[i] not in seen:
                if answer in normalize("\n".join(prompt)):
                    seen.add(seq.fields[i])
                    ctx.add(LABEL_LEAKAGE, item,
                            f"the assistant answer ({len(answer)} chars) appears verbatim in the prompt",
                            f"{seq.fields[i]}.content")  # fmt: skip
            if m.role in ("user", "system"):
                prompt.append(m.content or "")
