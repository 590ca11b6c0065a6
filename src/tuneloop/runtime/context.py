"""The context policy: fit a conversation into the model's context window, by rule.

A request is cut into segments: the **system prompt** (the leading system message),
**history** (earlier turns; a turn starts at a user message) and the **latest turn**
(the last user message and everything after it: the tool calls and tool results of
the run in progress). :func:`apply_policy` then, in order:

1. checks the fixed budgets (system prompt, tool specs, reserved answer): these are
   never cut, so going over them is a :class:`ContextOverflowError`;
2. truncates long tool outputs, keeping their head and a marker;
3. renders retrieved documents into the system message, dropping the lowest-ranked
   ones (and cutting the last one kept) to fit their budget;
4. drops whole turns of history, oldest first, until the prompt plus the reserved
   answer fits the context and the history fits its budget (a tool call and its
   result belong to one turn, so they go together);
5. optionally puts a summary of the dropped turns into the system message.

Every action is reported as a :class:`~tuneloop.runtime.events.ContextAction`. Token
counts come from a :class:`~tuneloop.runtime.types.TokenCounter`: exact with the local
engine (its tokenizer and chat template), words with the ``FakeModel``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tuneloop.runtime.events import ContextAction
from tuneloop.runtime.types import Message, TokenCounter

_SUMMARY_HEADER = "\n\n## Summary of the earlier conversation\n"
_RETRIEVED_HEADER = "\n\n## Retrieved context\n"

Summarizer = Callable[[list[Message]], str]
Emit = Callable[[ContextAction], None]


class ContextPolicy(BaseModel):
    """How a request is fitted into the context window. All budgets are in tokens."""

    model_config = ConfigDict(extra="forbid")

    max_context_tokens: int | None = Field(None, ge=1)
    """Total context (prompt + reserved answer). None: the model's ``context_window``;
    when that is unknown too, there is no total limit."""
    reserve_answer_tokens: int | None = Field(None, ge=0)
    """Room kept free for the answer. None: the request's ``max_new_tokens``."""
    system_tokens: int | None = Field(None, ge=0)
    """Budget for the system prompt as written (without the summary and retrieved
    context). It is never cut: a longer prompt is an error."""
    tools_tokens: int | None = Field(None, ge=0)
    """Budget for the tool specs as rendered into the prompt. Never cut: over is an error."""
    history_tokens: int | None = Field(None, ge=0)
    """Budget for earlier turns (all but the system prompt, the summary and the latest
    turn); the oldest turns are dropped to meet it. None: only the total limit applies."""
    retrieved_tokens: int | None = Field(None, ge=0)
    """Budget for the retrieved-context block; the lowest-ranked documents go first."""
    tool_output_tokens: int | None = Field(1024, ge=1)
    """Cap on each tool-output message; longer ones keep their head and a marker.
    None: tool outputs are never cut."""
    summarize: bool = False
    """When turns are dropped, ask the summarizer for a summary of them and put it in
    the system message."""
    summary_tokens: int = Field(128, ge=1)
    """Cap on the summary; room for it is kept when deciding how many turns to drop."""
    truncation_marker: str = "[... {n} tokens truncated ...]"
    """Appended (on its own line) to cut tool outputs and documents; ``{n}`` is the
    number of tokens removed."""

    @field_validator("truncation_marker")
    @classmethod
    def _marker_formats(cls, value: str) -> str:
        try:
            value.format(n=0)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"truncation_marker may only use the field {{n}}: {exc}") from exc
        return value


class ContextOverflowError(Exception):
    """The request cannot be fitted: a fixed segment is over its budget, or the parts
    that are never dropped (system prompt, tools, latest turn, reserved answer) exceed
    the context on their own.

    ``segments`` holds the token count of each segment involved, ``limit`` the budget
    or context size that was exceeded.
    """

    def __init__(self, message: str, segments: dict[str, int] | None = None, limit: int = 0):
        super().__init__(message)
        self.segments: dict[str, int] = dict(segments or {})
        self.limit = limit

    def __reduce__(self):
        return (type(self), (str(self), self.segments, self.limit))


def apply_policy(
    policy: ContextPolicy,
    messages: list[Message],
    *,
    counter: TokenCounter,
    tools: list[dict] | None = None,
    max_new_tokens: int = 256,
    retrieved: list[str] | None = None,
    summarizer: Summarizer | None = None,
    emit: Emit | None = None,
) -> list[Message]:
    """The messages to send: ``messages`` fitted to ``policy`` (the input is not changed).

    ``retrieved`` are ranked documents, best first. ``summarizer`` is called once with
    the dropped messages when ``policy.summarize`` is on; if it fails the request goes
    on without a summary. Each action taken is passed to ``emit``; when nothing needs
    doing the result is an equal copy and nothing is emitted. Raises
    :class:`ContextOverflowError` when the request cannot fit.
    """
    emit = emit or _ignore
    limit = policy.max_context_tokens
    limit = counter.context_window if limit is None else limit
    reserve = policy.reserve_answer_tokens
    reserve = max_new_tokens if reserve is None else reserve
    if limit is not None and reserve > limit:
        raise ContextOverflowError(
            f"the reserved answer ({reserve} tokens) is larger than the context ({limit} tokens)",
            {"reserved_answer": reserve}, limit,
        )  # fmt: skip
    msgs = copy.deepcopy(messages)
    _check_budgets(policy, _split(msgs), counter, tools)
    if policy.tool_output_tokens is not None:
        for event in _truncate_tool_outputs(msgs, policy, counter):
            emit(event)
    block, event = _render_retrieved(retrieved or [], policy, counter)
    if event is not None:
        emit(event)
    window = _Window(_split(msgs), counter, tools, limit, reserve, policy.history_tokens, block)
    dropped = window.min_drops(0)
    if dropped is None:
        raise window.overflow()
    if dropped == 0:
        return window.assemble(0)
    summary, later = "", []
    if policy.summarize and summarizer is not None:
        dropped, summary, later = _summarize(window, dropped, policy, summarizer)
    result = window.assemble(dropped, summary)
    emit(
        ContextAction(
            action="drop_turns",
            detail={"turns_dropped": dropped, "messages_dropped": len(window.dropped(dropped))},
            tokens_before=window.prompt_tokens(0),
            tokens_after=counter.count_prompt(result, tools),
        )
    )
    for event in later:
        emit(event)
    return result


def count_segments(
    messages: list[Message], *, counter: TokenCounter, tools: list[dict] | None = None
) -> dict[str, int]:
    """Tokens per segment, for display and debugging.

    ``system``, ``history`` and ``latest_turn`` count message text (and tool-call JSON);
    ``tools`` is what the tool specs add to the prompt; ``template`` is the rest of
    ``total_prompt`` (role markers and delimiters of the chat template).
    """
    parts = _split(messages)
    segments = {
        "system": _message_tokens(parts.system, counter) if parts.system else 0,
        "tools": _tools_tokens(parts.kept(), tools, counter),
        "history": sum(_message_tokens(m, counter) for turn in parts.turns for m in turn),
        "latest_turn": sum(_message_tokens(m, counter) for m in parts.latest),
    }
    total = counter.count_prompt(messages, tools) if messages else 0
    segments["template"] = total - sum(segments.values())
    segments["total_prompt"] = total
    return segments


# ---------------------------------------------------------------------------- segments


@dataclass
class _Parts:
    system: Message | None
    turns: list[list[Message]]
    latest: list[Message]

    def kept(self) -> list[Message]:
        """The messages that are never dropped: system prompt and latest turn."""
        return [*([self.system] if self.system else []), *self.latest]


def _split(messages: list[Message]) -> _Parts:
    system = messages[0] if messages and messages[0].get("role") == "system" else None
    rest = messages[1:] if system else messages
    users = [i for i, m in enumerate(rest) if m.get("role") == "user"]
    # Without a user message there is nothing that could safely be dropped.
    cut = users[-1] if users else 0
    turns: list[list[Message]] = []
    for m in rest[:cut]:
        if m.get("role") == "user" or not turns:
            turns.append([])
        turns[-1].append(m)
    return _Parts(system, turns, rest[cut:])


def _text(content) -> str:
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def _message_tokens(message: Message, counter: TokenCounter) -> int:
    calls = message.get("tool_calls") or []
    return counter.count_text(_text(message.get("content"))) + sum(
        counter.count_text(json.dumps(c)) for c in calls
    )


def _tools_tokens(messages: list[Message], tools: list[dict] | None, counter: TokenCounter) -> int:
    """What the tool specs add to the rendered prompt (templates need one message)."""
    if not tools:
        return 0
    messages = messages or [{"role": "user", "content": ""}]
    return max(counter.count_prompt(messages, tools) - counter.count_prompt(messages, None), 0)


def _check_budgets(
    policy: ContextPolicy, parts: _Parts, counter: TokenCounter, tools: list[dict] | None
) -> None:
    if policy.system_tokens is not None and parts.system is not None:
        n = _message_tokens(parts.system, counter)
        if n > policy.system_tokens:
            raise ContextOverflowError(
                f"system prompt is {n} tokens, over its budget of {policy.system_tokens}",
                {"system": n}, policy.system_tokens,
            )  # fmt: skip
    if policy.tools_tokens is not None and tools:
        n = _tools_tokens(parts.kept(), tools, counter)
        if n > policy.tools_tokens:
            raise ContextOverflowError(
                f"tool specs are {n} tokens, over their budget of {policy.tools_tokens}",
                {"tools": n}, policy.tools_tokens,
            )  # fmt: skip


# ---------------------------------------------------------------------------- the window


class _Window:
    """The conversation with some number of its oldest history turns dropped."""

    def __init__(self, parts, counter, tools, limit, reserve, history_budget, retrieved_block):
        self.parts = parts
        self.counter = counter
        self.tools = tools
        self.limit = limit
        self.reserve = reserve
        self.history_budget = history_budget
        self.retrieved_block = retrieved_block
        self.turn_tokens = [sum(_message_tokens(m, counter) for m in t) for t in parts.turns]

    def dropped(self, n: int) -> list[Message]:
        return [m for turn in self.parts.turns[:n] for m in turn]

    def assemble(self, n: int, summary: str = "") -> list[Message]:
        """System prompt (+ summary + retrieved context), history without its first
        ``n`` turns, latest turn."""
        sections = (_SUMMARY_HEADER + summary if summary else "") + self.retrieved_block
        system = _with_sections(self.parts.system, sections)
        kept = [m for turn in self.parts.turns[n:] for m in turn]
        return [*([system] if system else []), *kept, *self.parts.latest]

    def prompt_tokens(self, n: int, summary: str = "") -> int:
        return self.counter.count_prompt(self.assemble(n, summary), self.tools)

    def fits(self, n: int, extra: int = 0, summary: str = "") -> bool:
        if self.history_budget is not None and sum(self.turn_tokens[n:]) > self.history_budget:
            return False
        if self.limit is None:
            return True
        return self.prompt_tokens(n, summary) + self.reserve + extra <= self.limit

    def min_drops(self, start: int, extra: int = 0) -> int | None:
        """Fewest turns (at least ``start``) to drop so that the rest fits with ``extra``
        tokens to spare; None if dropping every turn is not enough. Dropping a turn
        never makes the prompt longer, so bisection finds it."""
        if self.fits(start, extra):
            return start
        lo, hi = start, len(self.parts.turns)
        if hi == lo or not self.fits(hi, extra):
            return None
        while hi - lo > 1:  # invariant: lo does not fit, hi does
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if self.fits(mid, extra) else (mid, hi)
        return hi

    def overflow(self) -> ContextOverflowError:
        """The error for a request whose fixed parts alone exceed the context."""
        n = len(self.parts.turns)
        total = self.prompt_tokens(n)
        count = self.counter.count_text
        segments = {
            "system": _message_tokens(self.parts.system, self.counter) if self.parts.system else 0,
            "retrieved": count(self.retrieved_block) if self.retrieved_block else 0,
            "tools": _tools_tokens(self.parts.kept(), self.tools, self.counter),
            "latest_turn": sum(_message_tokens(m, self.counter) for m in self.parts.latest),
        }
        segments["template"] = total - sum(segments.values())
        segments["reserved_answer"] = self.reserve
        labels = {
            "system": "system", "retrieved": "retrieved context", "tools": "tools",
            "latest_turn": "latest turn", "template": "chat template",
            "reserved_answer": "reserved answer",
        }  # fmt: skip
        always = ("latest_turn", "reserved_answer")
        terms = " + ".join(f"{labels[k]} {v}" for k, v in segments.items() if v or k in always)
        message = (
            f"request does not fit the context: {terms} = {total + self.reserve} > "
            f"{self.limit} tokens"
        )
        if n:
            message += f" (after dropping {n} earlier turn{'s' if n > 1 else ''})"
        return ContextOverflowError(message, segments, self.limit)


def _with_sections(system: Message | None, sections: str) -> Message | None:
    if not sections:
        return system
    if system is None:
        return {"role": "system", "content": sections.lstrip("\n")}
    content = system.get("content")
    if isinstance(content, list):
        return {**system, "content": [*content, {"type": "text", "text": sections}]}
    content = (content or "") + sections
    return {**system, "content": content if system.get("content") else content.lstrip("\n")}


def _summarize(
    window: _Window, needed: int, policy: ContextPolicy, summarizer: Summarizer
) -> tuple[int, str, list[ContextAction]]:
    """(turns dropped, summary, events). Drops enough turns to leave room for the
    summary; on any failure, falls back to the ``needed`` drops and no summary."""
    count = window.counter.count_text
    header = count(_SUMMARY_HEADER)
    n = window.min_drops(needed, policy.summary_tokens + header)
    n = len(window.parts.turns) if n is None else n  # the summary gets what room is left
    dropped = window.dropped(n)
    try:
        text = str(summarizer(copy.deepcopy(dropped))).strip()
    except Exception as exc:  # a failed summary must not lose the request
        return needed, "", [_summary_error(f"{type(exc).__name__}: {exc}")]
    if not text:
        return needed, "", [_summary_error("the summarizer returned an empty summary")]
    cap = policy.summary_tokens
    if window.limit is not None:
        cap = min(cap, window.limit - window.reserve - window.prompt_tokens(n) - header)
    summary = ""
    while cap > 0:
        summary, _ = _truncate_text(text, cap, window.counter, None)
        if window.fits(n, summary=summary):
            break
        # Tokens at the joins can make the sum of the parts a little off; shrink by that.
        over = window.prompt_tokens(n, summary) + window.reserve - window.limit
        cap = min(cap - 1, count(summary) - over)
    else:
        return needed, "", [_summary_error("no room left in the context for a summary")]
    events = []
    full, kept = count(text), count(summary)
    if kept < full:
        events.append(
            ContextAction(
                action="truncate_summary", detail={"tokens_removed": full - kept},
                tokens_before=full, tokens_after=kept,
            )
        )  # fmt: skip
    events.append(
        ContextAction(
            action="summarize", detail={"turns_summarized": n, "summary_tokens": kept},
            tokens_before=sum(window.turn_tokens[:n]), tokens_after=kept,
        )
    )  # fmt: skip
    return n, summary, events


def _summary_error(error: str) -> ContextAction:
    return ContextAction(action="summarize", detail={"error": error})


# ---------------------------------------------------------------------------- truncation


def _truncate_tool_outputs(
    messages: list[Message], policy: ContextPolicy, counter: TokenCounter
) -> list[ContextAction]:
    """Cut, in place, every tool output over ``policy.tool_output_tokens``."""
    events = []
    for index, m in enumerate(messages):
        if m.get("role") != "tool" or not isinstance(m.get("content"), str):
            continue
        text, removed = _truncate_text(
            m["content"], policy.tool_output_tokens, counter, policy.truncation_marker
        )
        if removed:
            events.append(
                ContextAction(
                    action="truncate_tool_output",
                    detail={"index": index, "tokens_removed": removed},
                    tokens_before=counter.count_text(m["content"]),
                    tokens_after=counter.count_text(text),
                )
            )
            m["content"] = text
    return events


def _retrieved_section(docs: list[str]) -> str:
    if not docs:
        return ""
    return _RETRIEVED_HEADER + "\n\n".join(f"[{i}] {d}" for i, d in enumerate(docs, 1))


def _render_retrieved(
    docs: list[str], policy: ContextPolicy, counter: TokenCounter
) -> tuple[str, ContextAction | None]:
    """The retrieved-context block within its budget, and the event if it was cut.

    Keeps the longest run of best-ranked documents that fits whole, then fills the room
    left with the head of the next one (unless only its marker would fit)."""
    full = _retrieved_section(docs)
    budget = policy.retrieved_tokens
    if not docs or budget is None or counter.count_text(full) <= budget:
        return full, None
    k = 0
    while k < len(docs) and counter.count_text(_retrieved_section(docs[: k + 1])) <= budget:
        k += 1
    block = _retrieved_section(docs[:k])
    cut = _fill_with_head(docs[:k], docs[k], budget, policy, counter)
    if cut is not None:
        block = cut
    kept = k + (cut is not None)
    event = ContextAction(
        action="truncate_retrieved",
        detail={
            "dropped_docs": len(docs) - kept, "kept_docs": kept,
            "truncated_doc": k + 1 if cut is not None else None,
        },
        tokens_before=counter.count_text(full),
        tokens_after=counter.count_text(block) if block else 0,
    )  # fmt: skip
    return block, event


def _fill_with_head(
    prefix: list[str], doc: str, budget: int, policy: ContextPolicy, counter: TokenCounter
) -> str | None:
    room = budget - counter.count_text(_retrieved_section([*prefix, ""]))
    while room > 0:
        text, removed = _truncate_text(doc, room, counter, policy.truncation_marker)
        if removed >= counter.count_text(doc):
            return None  # nothing of the document would be left but the marker
        block = _retrieved_section([*prefix, text])
        over = counter.count_text(block) - budget
        if over <= 0:
            return block
        room -= over
    return None


def _truncate_text(
    text: str, budget: int, counter: TokenCounter, marker: str | None
) -> tuple[str, int]:
    """(``text`` cut to ``budget`` tokens, tokens removed). The head that fits is kept and
    the marker appended on its own line; the marker is kept even when it alone is over
    a very small budget."""
    total = counter.count_text(text)
    if total <= budget:
        return text, 0
    keep = budget - (counter.count_text("\n" + marker.format(n=total)) if marker else 0)
    while True:
        head = _head(text, keep, counter)
        removed = total - counter.count_text(head)
        if marker is None:
            out = head
        else:
            out = (head + "\n" if head else "") + marker.format(n=removed)
        over = counter.count_text(out) - budget
        if over <= 0 or keep <= 0:
            return out, removed
        keep -= over


def _head(text: str, n: int, counter: TokenCounter) -> str:
    """The longest start of ``text`` of at most ``n`` tokens: cut at token level with a
    tokenizer, otherwise at the last word (or character) boundary that fits."""
    if n <= 0:
        return ""
    tokenizer = getattr(counter, "tokenizer", None)
    if tokenizer is not None:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return tokenizer.decode(ids[:n])
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    words = _longest(len(ends), lambda w: counter.count_text(text[: ends[w - 1]]) <= n)
    if words:
        return text[: ends[words - 1]]
    return text[: _longest(len(text), lambda c: counter.count_text(text[:c]) <= n)]


def _longest(size: int, ok: Callable[[int], bool]) -> int:
    """Largest ``k`` in [0, size] with ``ok(k)`` (``ok(0)`` assumed), by bisection."""
    lo, hi = 0, size
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid - 1)
    return lo


def _ignore(event: ContextAction) -> None:
    pass
