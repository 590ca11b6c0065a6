"""Turn structure: ``empty_turn``, ``role_order``, ``no_assistant``.

Chat templates render whatever they are given, so a conversation with two user
turns in a row or a tool result out of nowhere trains silently on a format the
model never sees at inference. These checks read the roles only, no tokenizer.
"""

from __future__ import annotations

from tuneloop.data.checks.item import Context, Item, Sequence
from tuneloop.data.findings import CheckInfo
from tuneloop.data.records import Conversation, LabeledExample, PreferencePair

EMPTY_TURN = CheckInfo(
    "empty_turn", "error",
    "User and system turns have text; assistant turns have text unless they call tools.",
)  # fmt: skip
ROLE_ORDER = CheckInfo(
    "role_order", "error",
    "System only first, then user; no two user or assistant turns in a row; tool results "
    "only right after the assistant turn that called tools, answering its call ids.",
)  # fmt: skip
NO_ASSISTANT = CheckInfo(
    "no_assistant", "error", "A training conversation (or each side of a pair) has an assistant turn."
)  # fmt: skip

CHECKS = (EMPTY_TURN, ROLE_ORDER, NO_ASSISTANT)


def check_empty_turns(item: Item, ctx: Context) -> None:
    """Empty or whitespace-only content where the role requires text.

    A pair's chosen/rejected sides are left to ``pair_empty_side``.
    """
    pair = isinstance(item.record, PreferencePair)
    for path, m in item.turns:
        if pair and not path.startswith("prompt."):
            continue
        if m.role == "tool" or (m.role == "assistant" and m.tool_calls):
            continue
        if not (m.content or "").strip():
            ctx.add(EMPTY_TURN, item, f"{m.role} turn has no text", f"{path}.content")


def _order_problems(seq: Sequence) -> list[tuple[str, str]]:
    """``(field, message)`` for each ordering rule ``seq`` breaks."""
    problems: list[tuple[str, str]] = []
    msgs, fields = seq.messages, seq.fields
    first = 1 if msgs[0].role == "system" else 0
    if first < len(msgs) and msgs[first].role != "user":
        problems.append((fields[first], f"the first turn after the system prompt is {msgs[first].role!r}, expected 'user'"))  # fmt: skip
    call_ids: set[str] = set()
    for i, m in enumerate(msgs):
        prev = msgs[i - 1] if i else None
        where = f"{fields[i]}.role"
        if m.role == "system" and i > 0:
            problems.append((where, "system turn after the first turn"))
        elif m.role == "tool":
            if prev is None or not (
                prev.role == "tool" or (prev.role == "assistant" and prev.tool_calls)
            ):
                problems.append(
                    (where, "tool result not right after an assistant turn that calls tools")
                )
            elif m.tool_call_id and call_ids and m.tool_call_id not in call_ids:
                problems.append((f"{fields[i]}.tool_call_id",
                                 f"tool_call_id {m.tool_call_id!r} answers no call of the assistant "
                                 f"turn before it (ids: {', '.join(sorted(call_ids))})"))  # fmt: skip
        elif prev is not None and m.role == prev.role and m.role in ("user", "assistant"):
            problems.append((where, f"two {m.role} turns in a row"))
        elif prev is not None and prev.role == "assistant" and prev.tool_calls and m.role != "tool":
            problems.append(
                (where, f"{m.role} turn right after a tool call, without the tool's result")
            )
        if m.role == "assistant" and m.tool_calls:
            call_ids = {c.id for c in m.tool_calls if c.id}
    return problems


def check_role_order(item: Item, ctx: Context) -> None:
    """Every ordering rule each sequence breaks, once per field."""
    seen: set[str] = set()
    for seq in item.sequences:
        for where, message in _order_problems(seq):
            if where not in seen:
                seen.add(where)
                ctx.add(ROLE_ORDER, item, message, where)


def check_no_assistant(item: Item, ctx: Context) -> None:
    """Training records need an assistant turn to train on (eval samples do not)."""
    rec = item.record
    if isinstance(rec, Conversation):
        sides = {"messages": rec.messages}
    elif isinstance(rec, PreferencePair):
        sides = {"chosen": rec.chosen, "rejected": rec.rejected}
    elif isinstance(rec, LabeledExample):
        sides = {"completion": rec.completion}
    else:
        return
    for name, msgs in sides.items():
        if not any(m.role == "assistant" for m in msgs):
            ctx.add(NO_ASSISTANT, item, "no assistant turn: nothing to train on", name)


def check_turns(item: Item, ctx: Context) -> None:
    """All turn-structure checks on one record."""
    check_empty_turns(item, ctx)
    check_role_order(item, ctx)
    check_no_assistant(item, ctx)
