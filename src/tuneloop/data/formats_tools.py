"""Tool-calling formats (ShareGPT, Hermes, xLAM) and the parsing helpers every reader shares.

Each helper takes the :class:`Row` being read, so an error names its file, line and the
input field (``conversations.3.value``), never a bare ``KeyError``. Readers build plain
dicts and validate them once at the end with :func:`build`.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError

from tuneloop.data.io import DataError, Row
from tuneloop.data.records import Conversation

# ------------------------------------------------------------------ shared helpers

_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
               int: "a number", float: "a number", type(None): "null"}  # fmt: skip


def fail(row: Row, field: str | None, message: str) -> NoReturn:
    raise DataError(row.file, row.line, message, field)


def type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def get(row: Row, obj: dict, key: str, kind: type, field: str, required: bool = True) -> Any:
    """``obj[key]`` checked to be a ``kind``; None when optional and missing or null."""
    value = obj.get(key)
    if value is None:
        if required:
            fail(row, field, "missing" if key not in obj else "is null")
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        fail(row, field, f"expected {_TYPE_NAMES.get(kind, kind.__name__)}, got {type_name(value)}")
    return value


def number(row: Row, obj: dict, key: str, field: str) -> int | float | None:
    """An optional number (a boolean is not one)."""
    value = obj.get(key)
    if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        fail(row, field, f"expected a number, got {type_name(value)}")
    return value


def parse_json(text: str) -> Any:
    """JSON, or failing that a Python literal: Hermes data often holds ``repr()`` dicts.

    Raises ValueError. A literal must also be plain JSON data (no sets, tuples as keys,
    complex numbers, NaN), so every record written stays valid JSON.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        error = f"not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    try:
        value = ast.literal_eval(text.strip())
        return json.loads(json.dumps(value, allow_nan=False))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(error) from None


def json_value(row: Row, value: Any, field: str) -> Any:
    """A field that holds JSON either as a string (xLAM, LLaMA-Factory) or as the value."""
    if isinstance(value, str):
        try:
            return parse_json(value)
        except ValueError as exc:
            fail(row, field, str(exc))
    return value


def common(row: Row) -> dict[str, Any]:
    """The row's ``id`` and ``metadata``, which every format carries over; other keys drop."""
    out: dict[str, Any] = {}
    rid = row.data.get("id")
    if rid is not None:
        if not isinstance(rid, (str, int)) or isinstance(rid, bool):
            fail(row, "id", f"expected a string or an integer, got {type_name(rid)}")
        out["id"] = str(rid)
    meta = get(row, row.data, "metadata", dict, "metadata", required=False)
    if meta is not None:
        out["metadata"] = meta
    return out


def build(row: Row, cls: type[BaseModel], data: dict[str, Any]) -> Any:
    """Validate the converted dict as a canonical record; errors name the record's field."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        fail(row, field, f"{first['msg']} (in the converted {cls.__name__})")


# ---------------------------------------------------------------- tool specs, calls

_SCHEMA_KEYS = {"properties", "required", "additionalProperties", "description", "title",
                "$schema", "$defs", "definitions"}  # fmt: skip
_XLAM_TYPES = {"str": "string", "string": "string", "int": "integer", "integer": "integer",
               "float": "number", "number": "number", "bool": "boolean", "boolean": "boolean",
               "list": "array", "array": "array", "tuple": "array", "set": "array",
               "dict": "object", "object": "object"}  # fmt: skip


def _is_schema(params: dict) -> bool:
    """JSON Schema rather than xLAM's flat ``{arg: {type, description}}`` form."""
    return params.get("type") == "object" or (
        "properties" in params and set(params) <= _SCHEMA_KEYS
    )


def _xlam_type(raw: str) -> tuple[str | None, bool]:
    """JSON Schema type of an xLAM type string (``List[int]``, ``str, optional``), and
    whether it says optional. Unknown types (``Union[...]``, ``Any``) give None: any value."""
    text, optional = raw.strip(), False
    if m := re.fullmatch(r"(.*?),\s*optional", text, re.IGNORECASE | re.DOTALL):
        text, optional = m.group(1).strip(), True
    if m := re.fullmatch(r"optional\[(.*)\]", text, re.IGNORECASE | re.DOTALL):
        text, optional = m.group(1).strip(), True
    base = re.split(r"[\[(]", text, maxsplit=1)[0].strip().lower()
    return _XLAM_TYPES.get(base), optional


def xlam_schema(row: Row, params: dict, field: str) -> dict[str, Any]:
    """xLAM's flat parameters as a JSON Schema object; args without a default are required."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for arg, spec in params.items():
        where = f"{field}.{arg}"
        if not isinstance(spec, dict):
            fail(row, where, f"expected an object with type and description, got {type_name(spec)}")
        prop: dict[str, Any] = {}
        raw_type = get(row, spec, "type", str, f"{where}.type", required=False)
        json_type, optional = _xlam_type(raw_type) if raw_type else (None, False)
        if json_type:
            prop["type"] = json_type
        description = get(row, spec, "description", str, f"{where}.description", required=False)
        if description:
            prop["description"] = description
        if "default" in spec:
            prop["default"] = spec["default"]
        elif not optional:
            required.append(arg)
        properties[arg] = prop
    return {"type": "object", "properties": properties, "required": required}


def tool_spec(row: Row, obj: Any, field: str, flat: bool = False) -> dict[str, Any]:
    """OpenAI ``{"type": "function", "function": {...}}`` or a bare ``{name, ...}`` spec."""
    if not isinstance(obj, dict):
        fail(row, field, f"a tool spec must be an object, got {type_name(obj)}")
    fn = obj
    if "function" in obj and obj.get("type", "function") == "function":
        fn, field = obj["function"], f"{field}.function"
        if not isinstance(fn, dict):
            fail(row, field, f"expected an object, got {type_name(fn)}")
    name = get(row, fn, "name", str, f"{field}.name")
    if not name.strip():
        fail(row, f"{field}.name", "is empty")
    description = get(row, fn, "description", str, f"{field}.description", required=False)
    params = get(row, fn, "parameters", dict, f"{field}.parameters", required=False)
    if params is None:
        params = {"type": "object", "properties": {}}
    elif flat and not _is_schema(params):
        params = xlam_schema(row, params, f"{field}.parameters")
    function = {"name": name, "description": description or "", "parameters": params}
    return {"type": "function", "function": function}


def tool_specs(row: Row, value: Any, field: str, flat: bool = False) -> list[dict[str, Any]]:
    """A list of tool specs, given as a list or as a JSON string of one."""
    value = json_value(row, value, field)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        fail(row, field, f"expected a list of tool specs, got {type_name(value)}")
    return [tool_spec(row, spec, f"{field}.{i}", flat) for i, spec in enumerate(value)]


def tool_call(row: Row, obj: Any, field: str, keep_raw: bool = False) -> dict[str, Any]:
    """OpenAI ``{"function": {name, arguments}}`` or flat ``{name, arguments|parameters}``.

    Arguments given as a JSON string become an object. With ``keep_raw`` (OpenAI data,
    where strings are the norm) an unparsable string is kept as is for the validators to
    report; otherwise it is an error.
    """
    if not isinstance(obj, dict):
        fail(row, field, f"a tool call must be an object, got {type_name(obj)}")
    fn, call_id = obj, None
    if "function" in obj:
        call_id = get(row, obj, "id", str, f"{field}.id", required=False)
        fn, field = obj["function"], f"{field}.function"
        if not isinstance(fn, dict):
            fail(row, field, f"expected an object, got {type_name(fn)}")
    name = get(row, fn, "name", str, f"{field}.name")
    if not name.strip():
        fail(row, f"{field}.name", "is empty")
    key = "arguments" if "arguments" in fn or "parameters" not in fn else "parameters"
    args = fn.get(key)
    if args is None or (isinstance(args, str) and not args.strip()):
        args = {}
    elif isinstance(args, str):
        raw = args
        try:
            args = json.loads(raw) if keep_raw else parse_json(raw)
        except (ValueError, RecursionError) as exc:
            if not keep_raw:
                fail(row, f"{field}.{key}", f"arguments are {exc}")
        if keep_raw and not isinstance(args, dict):
            args = raw
    if not isinstance(args, dict) and not (keep_raw and isinstance(args, str)):
        fail(row, f"{field}.{key}", f"arguments must be a JSON object, got {type_name(args)}")
    call: dict[str, Any] = {"type": "function", "function": {"name": name, "arguments": args}}
    if call_id:
        call["id"] = call_id
    return call


def tool_calls(row: Row, value: Any, field: str) -> list[dict[str, Any]]:
    """One call or a list of calls, given as JSON text or as values."""
    value = json_value(row, value, field)
    calls = value if isinstance(value, list) else [value]
    return [
        tool_call(row, c, f"{field}.{i}" if isinstance(value, list) else field)
        for i, c in enumerate(calls)
    ]


# --------------------------------------------------------------------- Hermes tags


def split_blocks(
    row: Row, text: str, tag: str, field: str, keep_empty: bool = False
) -> tuple[str, list[str]]:
    """``text`` without its ``<tag>…</tag>`` blocks, and each block's inner text.

    With ``keep_empty``, blank blocks stay in the text: Hermes system prompts mention
    "<tools> </tools> XML tags" in prose before the real block.
    """
    pattern = re.compile(rf"[ \t]*<{tag}>(.*?)</{tag}>", re.DOTALL)  # eats the space before
    blocks = [m.group(1) for m in pattern.finditer(text)]
    if f"<{tag}>" in pattern.sub("", text) or f"</{tag}>" in pattern.sub("", text):
        fail(row, field, f"unclosed <{tag}> block")
    if keep_empty:
        blocks = [b for b in blocks if b.strip()]
        text = pattern.sub(lambda m: m.group(0) if not m.group(1).strip() else "", text)
    else:
        text = pattern.sub("", text)
    return text.strip(), blocks


def _tools_block(row: Row, inner: str, field: str) -> list[dict[str, Any]]:
    """Specs in a ``<tools>`` block: one JSON list/object, or one object per line."""
    try:
        value = parse_json(inner)
    except ValueError:
        value = []
        for k, line in enumerate(inner.strip().splitlines(), start=1):
            if line.strip():
                try:
                    value.append(parse_json(line))
                except ValueError as exc:
                    fail(row, field, f"<tools> block line {k}: {exc}")
    return tool_specs(row, value, f"{field}.tools")


# ------------------------------------------------------------- ShareGPT and Hermes

SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                  "assistant": "assistant", "tool": "tool", "function_call": "assistant",
                  "observation": "tool"}  # fmt: skip


def _hermes_turn(row: Row, role: str, value: str, field: str) -> list[dict[str, Any]]:
    """Messages for one Hermes turn: ``<tool_call>`` → tool_calls, ``<tool_response>`` → tool."""
    if role == "assistant":
        text, blocks = split_blocks(row, value, "tool_call", field)
        if not blocks:
            return [{"role": role, "content": value}]
        calls = []
        for k, inner in enumerate(blocks):
            try:
                obj = parse_json(inner)
            except ValueError as exc:
                fail(row, f"{field}.tool_call.{k}", str(exc))
            calls.append(tool_call(row, obj, f"{field}.tool_call.{k}"))
        return [{"role": role, "content": text or None, "tool_calls": calls}]
    if role == "tool":
        _, blocks = split_blocks(row, value, "tool_response", field)
        out = []
        for inner in blocks or [value]:
            msg: dict[str, Any] = {"role": "tool", "content": inner.strip()}
            try:
                parsed = parse_json(inner)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and isinstance(parsed.get("name"), str) and parsed["name"]:
                msg["name"] = parsed["name"]
            out.append(msg)
        return out
    return [{"role": role, "content": value}]


def _sharegpt(row: Row, hermes: bool) -> Conversation:
    turns = get(row, row.data, "conversations", list, "conversations")
    messages: list[dict[str, Any]] = []
    tools: list[dict[str, Any]] = []
    system = get(row, row.data, "system", str, "system", required=False)
    if system is not None:
        messages.append({"role": "system", "content": system})
    for i, turn in enumerate(turns):
        field = f"conversations.{i}"
        if not isinstance(turn, dict):
            fail(row, field, f"expected an object with 'from' and 'value', got {type_name(turn)}")
        source = get(row, turn, "from", str, f"{field}.from")
        if source not in SHAREGPT_ROLES:
            fail(
                row,
                f"{field}.from",
                f"unknown role {source!r} (expected one of {', '.join(SHAREGPT_ROLES)})",
            )
        role, value = SHAREGPT_ROLES[source], get(row, turn, "value", str, f"{field}.value")
        if role == "system" and messages:
            fail(row, f"{field}.from", "a system turn must come first (and only once)")
        if source == "function_call":
            new = [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": tool_calls(row, value, f"{field}.value"),
                }
            ]
        elif hermes and role == "system":
            text, blocks = split_blocks(row, value, "tools", f"{field}.value", keep_empty=True)
            tools += [t for inner in blocks for t in _tools_block(row, inner, f"{field}.value")]
            new = [{"role": "system", "content": text}] if text else []
        elif hermes:
            new = _hermes_turn(row, role, value, f"{field}.value")
        else:
            new = [{"role": role, "content": value}]
        if (weight := number(row, turn, "weight", f"{field}.weight")) is not None:
            for m in new:
                m["weight"] = weight
        messages += new
    if row.data.get("tools") is not None:
        tools += tool_specs(row, row.data["tools"], "tools")
    return build(row, Conversation, {"messages": messages, "tools": tools or None, **common(row)})


def from_sharegpt(row: Row) -> Conversation:
    """``{"conversations": [{"from": "human", "value": ...}, ...], "system"?, "tools"?}``.

    ``function_call`` turns hold a JSON call (or list) and become assistant tool calls;
    ``observation`` and ``tool`` turns become tool messages.
    """
    return _sharegpt(row, hermes=False)


def from_hermes(row: Row) -> Conversation:
    """ShareGPT-shaped Hermes function calling: the system turn's ``<tools>`` block becomes
    ``tools``, ``<tool_call>`` blocks in gpt turns become ``tool_calls`` (text outside them
    stays as content), ``<tool_response>`` blocks in tool turns become tool messages."""
    return _sharegpt(row, hermes=True)


# ---------------------------------------------------------------------------- xLAM


def from_xlam(row: Row) -> Conversation:
    """Salesforce xLAM: ``query``, ``tools`` and ``answers`` (JSON strings or lists).

    Becomes a user turn and an assistant turn that makes the calls (no tool results:
    xLAM rows have none). Flat xLAM parameters become JSON Schema objects.
    """
    query = get(row, row.data, "query", str, "query")
    if "tools" not in row.data:
        fail(row, "tools", "missing")
    tools = tool_specs(row, row.data["tools"], "tools", flat=True)
    if "answers" not in row.data:
        fail(row, "answers", "missing")
    answers = json_value(row, row.data["answers"], "answers")
    if not isinstance(answers, list):
        fail(row, "answers", f"expected a list of calls, got {type_name(answers)}")
    if not answers:
        fail(row, "answers", "is empty: the row has no calls to train on")
    calls = [tool_call(row, a, f"answers.{i}") for i, a in enumerate(answers)]
    messages = [
        {"role": "user", "content": query},
        {"role": "assistant", "content": None, "tool_calls": calls},
    ]
    return build(row, Conversation, {"messages": messages, "tools": tools or None, **common(row)})
