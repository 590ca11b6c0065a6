"""Parse tool calls out of a model's output, failing loudly instead of falling back to text.

Two forms are read:

- structured calls a backend returns (OpenAI ``tool_calls``: ``{"id", "type":
  "function", "function": {"name", "arguments": "<JSON string>"}}``);
- text calls: Hermes ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
  blocks (what models without native tool support are trained to write, and what
  :mod:`tuneloop.models.chat_template` renders), and OpenAI-style JSON written as
  text: ``{"tool_calls": [...]}``, or a bare ``{"name": ..., "arguments": ...}`` when
  tools were offered.

A block that does not parse is returned as an error (never as answer text). A
``<tool_response>`` the model wrote itself is a fabricated tool result: everything
from it on is cut and reported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from tuneloop.runtime.events import new_id

_CALL_RE = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL | re.IGNORECASE)
_RESPONSE_RE = re.compile(r"<\s*/?\s*tool_response\s*>", re.IGNORECASE)
_FENCE_RE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL)


@dataclass
class ParsedCall:
    name: str
    arguments: object
    """Usually a dict; anything else fails argument validation later."""
    raw: str
    id: str = field(default_factory=lambda: "call_" + new_id()[:24])


@dataclass
class CallParseError:
    raw: str
    error: str


@dataclass
class ParsedOutput:
    content: str
    """The text outside tool-call blocks (stripped)."""
    calls: list[ParsedCall] = field(default_factory=list)
    errors: list[CallParseError] = field(default_factory=list)
    fabricated: str | None = None
    """The text from a model-written ``<tool_response>`` on, when there was one."""

    @property
    def has_calls(self) -> bool:
        return bool(self.calls or self.errors)


def strip_fence(text: str) -> str:
    """``text`` without a surrounding Markdown code fence (```json ... ```)."""
    text = text.strip()
    m = _FENCE_RE.match(text)
    return m.group(1).strip() if m else text


def _call_from_obj(obj: object, raw: str) -> ParsedCall | CallParseError:
    """A call from ``{"name", "arguments"}`` or OpenAI's ``{"function": {...}}`` shape."""
    if not isinstance(obj, dict):
        return CallParseError(raw, f"a tool call must be a JSON object, got {type(obj).__name__}")
    call_id = obj.get("id") if isinstance(obj.get("id"), str) else None
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        return CallParseError(raw, 'a tool call needs a "name" string')
    if "arguments" in obj:
        args = obj["arguments"]
    elif "parameters" in obj:
        args = obj["parameters"]
    else:
        args = {}
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as exc:
            return CallParseError(raw, f"arguments of {name!r} are not valid JSON: {exc}")
    call = ParsedCall(name=name, arguments=args, raw=raw)
    if call_id:
        call.id = call_id
    return call


def _add(result: ParsedOutput, item: ParsedCall | CallParseError) -> None:
    (result.calls if isinstance(item, ParsedCall) else result.errors).append(item)


def parse_structured_calls(tool_calls: list[dict]) -> ParsedOutput:
    """Calls a backend returned as OpenAI ``tool_calls``."""
    result = ParsedOutput(content="")
    for call in tool_calls:
        _add(result, _call_from_obj(call, json.dumps(call, ensure_ascii=False)))
    return result


def parse_output(
    text: str, tool_calls: list[dict] | None = None, *, tools_offered: bool = True
) -> ParsedOutput:
    """Split a model output into answer text, tool calls, parse errors and fabrication."""
    fabricated = None
    m = _RESPONSE_RE.search(text)
    if m:
        fabricated = text[m.start() :]
        text = text[: m.start()]
    if tool_calls:
        result = parse_structured_calls(tool_calls)
        result.content = text.strip()
        result.fabricated = fabricated
        return result
    result = ParsedOutput(content="", fabricated=fabricated)
    if "<tool_call>" in text.lower():
        for block in _CALL_RE.finditer(text):
            raw = block.group(0)
            body = strip_fence(block.group(1))
            if not body:
                result.errors.append(CallParseError(raw, "empty <tool_call> block"))
                continue
            try:
                obj = json.loads(body)
            except json.JSONDecodeError as exc:
                hint = "" if raw.lower().endswith("</tool_call>") else " (the block is not closed)"
                result.errors.append(
                    CallParseError(raw, f"tool call is not valid JSON: {exc}{hint}")
                )
                continue
            for item in obj if isinstance(obj, list) else [obj]:
                _add(result, _call_from_obj(item, raw))
        result.content = _CALL_RE.sub("", text).strip()
        return result
    if tools_offered:
        body = strip_fence(text)
        if body.startswith("{"):
            try:
                obj = json.loads(body)
            except json.JSONDecodeError:
                obj = None
            if isinstance(obj, dict) and isinstance(obj.get("tool_calls"), list):
                for item in obj["tool_calls"]:
                    _add(result, _call_from_obj(item, body))
                return result
            if isinstance(obj, dict) and set(obj) in (
                {"name", "arguments"},
                {"name", "parameters"},
            ):
                _add(result, _call_from_obj(obj, body))
                return result
    result.content = text.strip()
    return result
