"""Render conversations with the tokenizer's own chat template, with loss masks.

Training data, eval prompts and serving prompts all go through this module, so the
model sees one format everywhere.

How the mask is built (templates need no ``{% generation %}`` markers):

1. Render the whole conversation once to text ``T`` and tokenize ``T`` once, keeping
   each token's character offsets.
2. For every assistant turn ``i`` render ``P_i`` = messages[:i] with the generation
   prompt and ``F_i`` = messages[:i+1]. ``P_i`` must be a prefix of ``F_i`` and
   ``F_i`` a prefix of ``T``; the answer is ``T[len(P_i):e_i]`` where ``e_i`` ends
   after the turn's end-of-turn token (the last special token in the turn).
3. ``P_i`` tokenized on its own must be an id prefix of ``T``'s tokens; the trained
   tokens are those after it that end inside the answer span. A token that
   straddles ``len(P_i)`` breaks the prefix, i.e. training would teach tokens the
   model never sees at inference: that is an error, not a warning.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

IGNORE_INDEX = -100
"""Label value the loss ignores (PyTorch / transformers convention)."""

Message = dict[str, Any]


class RenderError(ValueError):
    """A conversation cannot be rendered into a safe training example.

    ``check`` is a stable id the data layer reports (e.g. ``no_trainable_tokens``).
    """

    def __init__(self, check: str, message: str):
        super().__init__(message)
        self.check = check


@dataclass
class RenderedChat:
    """Token ids and labels for one conversation."""

    input_ids: list[int]
    attention_mask: list[int]
    labels: list[int]
    """``IGNORE_INDEX`` everywhere except the trained assistant tokens."""
    text: str
    """The rendered text the ids came from."""
    assistant_spans: list[tuple[int, int]] = field(default_factory=list)
    """Token index ranges ``[start, end)`` of each trained assistant turn (pre-truncation)."""
    answer_tokens: int = 0
    """Trainable tokens before truncation."""
    truncated: bool = False
    """True when ``max_length`` cut trainable tokens."""

    @property
    def num_trainable(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


# --------------------------------------------------------------------------- tools

HERMES_TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
)
HERMES_TOOLS_SUFFIX = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)


def template_supports_tools(tokenizer) -> bool:
    """Whether the tokenizer's chat template renders ``tools`` and ``tool_calls`` itself."""
    template = tokenizer.chat_template or ""
    if isinstance(template, dict):
        template = " ".join(template.values())
    return "tools" in template and "tool_call" in template


def _function_spec(tool: dict) -> dict:
    """Accept OpenAI ``{"type": "function", "function": {...}}`` or a bare function spec."""
    return tool["function"] if tool.get("type") == "function" and "function" in tool else tool


def _call_as_json(call: dict) -> str:
    fn = call.get("function", call)
    args = fn.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            pass  # keep the string: the validator reports it, rendering must not hide it
    return json.dumps({"name": fn.get("name"), "arguments": args}, ensure_ascii=False)


def format_tool_calls(calls: list[dict]) -> str:
    """Hermes text form of tool calls: one ``<tool_call>`` block per call."""
    return "\n".join(f"<tool_call>\n{_call_as_json(c)}\n</tool_call>" for c in calls)


def prepare_messages(
    tokenizer, messages: list[Message], tools: list[dict] | None = None
) -> tuple[list[Message], list[dict] | None]:
    """Messages (and tools) in the form this tokenizer's template can render.

    Templates with native tool support get OpenAI-style messages (arguments as
    dicts). Others get the Hermes text protocol: tool specs appended to the system
    message, calls as ``<tool_call>`` blocks, results as ``<tool_response>`` blocks.
    """
    # Deep copy: the native branch rewrites tool_calls in place, which must not leak
    # into the caller's messages (a dataset row rendered twice would change).
    msgs = [copy.deepcopy(m) for m in messages]
    for m in msgs:
        m.pop("weight", None)
    if template_supports_tools(tokenizer):
        for m in msgs:
            for call in m.get("tool_calls") or []:
                fn = call.get("function", {})
                if isinstance(fn.get("arguments"), str):
                    try:
                        fn = {**fn, "arguments": json.loads(fn["arguments"])}
                        call["function"] = fn
                    except json.JSONDecodeError:
                        pass
        return msgs, tools or None
    out: list[Message] = []
    for m in msgs:
        m = copy.deepcopy(m)
        if m.get("role") == "assistant" and m.get("tool_calls"):
            text = format_tool_calls(m.pop("tool_calls"))
            content = m.get("content") or ""
            m["content"] = f"{content}\n{text}" if content.strip() else text
        elif m.get("role") == "tool":
            m = {"role": "tool", "content": f"<tool_response>\n{m.get('content') or ''}\n</tool_response>"}
        else:
            m.pop("tool_calls", None)
        out.append(m)
    if tools:
        block = "\n".join(json.dumps(_function_spec(t), ensure_ascii=False) for t in tools)
        tool_text = HERMES_TOOLS_PREAMBLE + block + HERMES_TOOLS_SUFFIX
        if out and out[0].get("role") == "system":
            out[0] = {**out[0], "content": f"{out[0].get('content') or ''}\n\n{tool_text}".lstrip()}
        else:
            out.insert(0, {"role": "system", "content": tool_text})
    return out, None


# ----------------------------------------------------------------------- rendering


def _apply(tokenizer, messages: list[Message], tools, add_generation_prompt: bool) -> str:
    kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": add_generation_prompt}
    if tools:
        kwargs["tools"] = tools
    if not tokenizer.chat_template:
        raise RenderError("no_chat_template", "the tokenizer has no chat template")
    try:
        return tokenizer.apply_chat_template(messages, **kwargs)
    except Exception as exc:  # jinja raises TemplateError and plain exceptions alike
        raise RenderError("template_error", f"chat template failed: {exc}") from exc


def render_text(
    tokenizer,
    messages: list[Message],
    tools: list[dict] | None = None,
    add_generation_prompt: bool = True,
) -> str:
    """The prompt text for ``messages`` (by default ready for the model's next turn)."""
    msgs, native_tools = prepare_messages(tokenizer, messages, tools)
    return _apply(tokenizer, msgs, native_tools, add_generation_prompt)


def encode_prompt(
    tokenizer, messages: list[Message], tools: list[dict] | None = None
) -> list[int]:
    """Token ids of the inference prompt (generation prompt appended)."""
    text = render_text(tokenizer, messages, tools, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _special_strings(tokenizer) -> list[str]:
    specials = set(tokenizer.all_special_tokens)
    for tok in getattr(tokenizer, "added_tokens_decoder", {}).values():
        if getattr(tok, "special", False):
            specials.add(str(tok))
    return sorted((s for s in specials if s), key=len, reverse=True)


def _turn_end(answer: str, specials: list[str], eot_token: str | None) -> int | None:
    """Index just after the end-of-turn token in ``answer``, or None if there is none."""
    candidates = [eot_token] if eot_token else specials
    best = None
    for s in candidates:
        pos = answer.rfind(s)
        if pos >= 0 and (best is None or pos + len(s) > best):
            best = pos + len(s)
    return best


def render_for_training(
    tokenizer,
    messages: list[Message],
    tools: list[dict] | None = None,
    max_length: int | None = None,
    eot_token: str | None = None,
) -> RenderedChat:
    """``input_ids``, ``attention_mask`` and ``labels`` for a conversation, in one pass.

    Labels cover every assistant turn (content and its end-of-turn token) except
    turns with ``"weight": 0``. Raises :class:`RenderError` when the example would
    train the wrong thing (see the module docstring for the guards).
    """
    if not getattr(tokenizer, "is_fast", False):
        raise RenderError("slow_tokenizer", "loss masks need a fast tokenizer (offsets mapping)")
    msgs, native_tools = prepare_messages(tokenizer, messages, tools)
    trained = [
        i
        for i, m in enumerate(messages)
        if m.get("role") == "assistant" and m.get("weight", 1) not in (0, False)
    ]
    if not trained:
        raise RenderError("no_trainable_tokens", "the conversation has no trained assistant turn")
    # prepare_messages may insert a system message for tools; keep indices aligned.
    shift = len(msgs) - len(messages)
    full = _apply(tokenizer, msgs, native_tools, add_generation_prompt=False)
    specials = _special_strings(tokenizer)
    char_spans: list[tuple[int, int]] = []
    for i in trained:
        j = i + shift
        prompt = _apply(tokenizer, msgs[:j], native_tools, add_generation_prompt=True)
        upto = _apply(tokenizer, msgs[: j + 1], native_tools, add_generation_prompt=False)
        if not upto.startswith(prompt):
            raise RenderError(
                "prompt_not_prefix",
                f"turn {i}: the rendered prompt is not a prefix of prompt+answer "
                "(the template renders the generation prompt differently from a stored turn)",
            )
        if not full.startswith(upto):
            raise RenderError(
                "template_not_incremental",
                f"turn {i}: rendering later turns changes how turn {i} is rendered "
                "(e.g. the template rewrites earlier assistant turns)",
            )
        end = _turn_end(upto[len(prompt) :], specials, eot_token)
        if end is None:
            raise RenderError(
                "eot_not_trainable",
                f"turn {i}: no end-of-turn token after the assistant answer; the model "
                "would never learn to stop",
            )
        char_spans.append((len(prompt), len(prompt) + end))

    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = enc["input_ids"]
    offsets: list[tuple[int, int]] = enc["offset_mapping"]
    labels = [IGNORE_INDEX] * len(ids)
    token_spans: list[tuple[int, int]] = []
    for turn, (cs, ce) in zip(trained, char_spans, strict=True):
        # Compare ids, not offsets: tokenizers that trim whitespace from offsets give a
        # prompt's trailing space token a zero-width offset at ``cs``, which would then
        # be trained although the inference prompt already contains it.
        prompt_ids = tokenizer(full[:cs], add_special_tokens=False)["input_ids"]
        k0 = len(prompt_ids)
        if ids[:k0] != prompt_ids:
            raise RenderError(
                "prompt_not_prefix",
                f"turn {turn}: a token straddles the prompt/answer boundary, so the "
                "prompt's tokens are not a prefix of prompt+answer tokens",
            )
        k1 = k0
        while k1 < len(ids) and offsets[k1][1] <= ce and offsets[k1][0] < ce:
            labels[k1] = ids[k1]
            k1 += 1
        if k1 == k0:
            raise RenderError("no_trainable_tokens", f"turn {turn}: the answer has no tokens")
        last = tokenizer.convert_ids_to_tokens(ids[k1 - 1])
        eot = full[offsets[k1 - 1][0] : offsets[k1 - 1][1]]
        if not (last in specials or eot in specials or (eot_token and eot == eot_token)):
            raise RenderError(
                "eot_not_trainable",
                f"turn {turn}: the end-of-turn token is not a single trainable token "
                f"(last trained token {last!r})",
            )
        token_spans.append((k0, k1))

    answer_tokens = sum(1 for x in labels if x != IGNORE_INDEX)
    truncated = False
    if max_length is not None and len(ids) > max_length:
        ids, labels = ids[:max_length], labels[:max_length]
        kept = sum(1 for x in labels if x != IGNORE_INDEX)
        truncated = kept < answer_tokens
        if kept == 0:
            raise RenderError(
                "truncated_all_answer",
                f"max_length={max_length} removes every answer token "
                f"(the conversation has {len(enc['input_ids'])} tokens)",
            )
    return RenderedChat(
        input_ids=ids,
        attention_mask=[1] * len(ids),
        labels=labels,
        text=full,
        assistant_spans=token_spans,
        answer_tokens=answer_tokens,
        truncated=truncated,
    )
