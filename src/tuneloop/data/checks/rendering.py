"""Rendering through the model's chat template, with the loss mask (needs a render function).

The render function is ``tuneloop.models.render_for_training`` bound to a tokenizer
(the CLI binds it; this package imports no model code). It raises an error with a
``check`` id when an example would train the wrong thing; those ids become findings
here. ``template_not_incremental`` is reported as ``prompt_not_prefix``: both mean
the answer the model trains on is not what follows its inference prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tuneloop.data.checks.item import Context, Item
from tuneloop.data.findings import CheckInfo
from tuneloop.data.records import EvalSample, to_chat_messages, tools_as_dicts

Render = Callable[[list[dict], list[dict] | None, int | None], Any]
"""``render(messages, tools, max_length)`` -> object with ``input_ids``, ``labels``,
``answer_tokens``, ``truncated`` and ``num_trainable``."""

NO_TRAINABLE_TOKENS = CheckInfo(
    "no_trainable_tokens", "error", "Every example has at least one trained token."
)
EOT_NOT_TRAINABLE = CheckInfo(
    "eot_not_trainable", "error", "Each trained answer ends with a trained end-of-turn token."
)  # fmt: skip
PROMPT_NOT_PREFIX = CheckInfo(
    "prompt_not_prefix", "error",
    "The rendered inference prompt is a prefix (text and tokens) of prompt+answer, turn by turn.",
)  # fmt: skip
TRUNCATED = CheckInfo("truncated", "warning", "No answer tokens are cut by --max-len.")
TRUNCATED_ALL_ANSWER = CheckInfo(
    "truncated_all_answer", "error", "--max-len leaves at least one answer token."
)  # fmt: skip
TEMPLATE_ERROR = CheckInfo("template_error", "error", "The chat template renders every example.")

CHECKS = (
    NO_TRAINABLE_TOKENS,
    EOT_NOT_TRAINABLE,
    PROMPT_NOT_PREFIX,
    TRUNCATED,
    TRUNCATED_ALL_ANSWER,
    TEMPLATE_ERROR,
)
_BY_ID = {c.id: c for c in CHECKS} | {"template_not_incremental": PROMPT_NOT_PREFIX}

SKIP_AFTER = ("role_order", "no_assistant")
"""Records these checks flagged are not rendered: the template would only restate them."""


@dataclass
class TokenStats:
    """Lengths of rendered sequences (after truncation) and their trained tokens."""

    lengths: list[int] = field(default_factory=list)
    trainable: list[int] = field(default_factory=list)
    truncated: int = 0

    def to_dict(self, max_len: int | None) -> dict[str, Any]:
        n = len(self.lengths)
        if not n:
            return {"rendered": 0}
        return {
            "rendered": n, "max_len": max_len, "truncated": self.truncated,
            "truncated_pct": round(100 * self.truncated / n, 2),
            "tokens": {"min": min(self.lengths), "mean": round(sum(self.lengths) / n, 1),
                       "max": max(self.lengths), "total": sum(self.lengths)},
            "trainable_tokens": {"min": min(self.trainable), "mean": round(sum(self.trainable) / n, 1),
                                 "max": max(self.trainable), "total": sum(self.trainable)},
        }  # fmt: skip


def _finding_check(exc: Exception) -> tuple[CheckInfo, str]:
    check_id = getattr(exc, "check", None)
    if check_id in _BY_ID:
        return _BY_ID[check_id], str(exc)
    return TEMPLATE_ERROR, f"[{check_id or type(exc).__name__}] {exc}"


def check_rendering(
    item: Item, ctx: Context, render: Render, max_len: int | None, stats: TokenStats
) -> None:
    """Render each training sequence of ``item``; findings for failures and truncation."""
    if isinstance(item.record, EvalSample) or ctx.fired(item, *SKIP_AFTER):
        return
    tools = tools_as_dicts(item.tools)
    for seq in item.sequences:
        messages = to_chat_messages(seq.messages)
        for m in messages[: seq.trained_from]:
            if m["role"] == "assistant":
                m["weight"] = 0  # a pair's or KTO prompt is context, not an answer
        try:
            out = render(messages, tools, max_len)
        except Exception as exc:  # the render function's errors are the findings
            check, message = _finding_check(exc)
            ctx.add(check, item, message, seq.name)
            continue
        stats.lengths.append(len(out.input_ids))
        stats.trainable.append(out.num_trainable)
        if out.truncated:
            stats.truncated += 1
            ctx.add(TRUNCATED, item,
                    f"--max-len {max_len} cuts the answer: {out.num_trainable} of "
                    f"{out.answer_tokens} answer tokens kept", seq.name)  # fmt: skip
