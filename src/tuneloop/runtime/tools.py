"""Tools the model may call: ``@tool``, a registry with an allow-list, safe execution.

``@tool`` turns a typed, documented Python function into a :class:`Tool` whose JSON
Schema comes from the signature and whose descriptions come from the docstring::

    @tool(timeout_s=2)
    def add(a: int, b: int = 1) -> int:
        \"\"\"Add two integers.

        Args:
            a: The first number.
            b: The second number.
        \"\"\"
        return a + b

:class:`ToolRegistry` offers only allow-listed tools and runs a call in a worker
thread with a timeout. Whatever happens, :meth:`ToolRegistry.execute` returns a
:class:`ToolResult` (never raises), and its text is made safe to put back in the
prompt: protocol markup a tool output could use to fake a tool call is neutralised
(:func:`sanitize_output`) and long outputs are capped.
"""

from __future__ import annotations

import collections.abc
import enum
import functools
import inspect
import json
import re
import threading
import time
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin, overload

from jsonschema import Draft202012Validator
from pydantic import BaseModel

__all__ = [
    "Tool",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "sanitize_output",
    "tool",
]

_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_ARRAYS = (list, set, frozenset, collections.abc.Sequence, collections.abc.Set)
_MAX_MESSAGE_CHARS = 300  # one validation message; jsonschema quotes whole (huge) values


class ToolError(Exception):
    """Raised by a tool for an expected refusal (bad path, unknown zone).

    Its message goes back to the model, so it should say what to fix.
    """


@dataclass
class ToolResult:
    """What one tool call produced, as the model will see it."""

    ok: bool
    output: str | None = None
    """Text given to the model when ``ok`` (sanitised and already capped)."""
    error: str | None = None
    """E.g. ``timed out after 2.0 s``, ``ZeroDivisionError: division by zero`` or the
    :class:`ToolError` message."""
    error_type: Literal["timeout", "exception", "refused"] | None = None
    duration_s: float = 0.0
    truncated: bool = False
    """Whether the text was cut to ``max_output_chars``."""


@dataclass(eq=False)
class Tool:
    """A function the model may call, with its name, description and JSON Schema.

    Build one with :func:`tool`. Calling the tool calls the function directly.
    """

    name: str
    description: str
    parameters: dict
    """JSON Schema object of the keyword arguments."""
    fn: Callable[..., Any]
    timeout_s: float = 10.0
    _hints: dict[str, Any] = field(default_factory=dict, repr=False)

    def spec(self) -> dict:
        """The tool in OpenAI function format, as chat templates and servers take it."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    @functools.cached_property
    def _validator(self) -> Draft202012Validator:
        return Draft202012Validator(self.parameters)

    def validate_arguments(self, arguments: Any) -> list[str]:
        """Human-readable errors of ``arguments`` against the schema; ``[]`` if valid."""
        if not isinstance(arguments, dict):
            return [f"arguments must be a JSON object, got {type(arguments).__name__}"]
        props = self.parameters.get("properties", {})
        errors = [
            f"missing required argument {k!r}"
            for k in self.parameters.get("required", [])
            if k not in arguments
        ]
        errors += [f"unexpected argument {k!r}" for k in arguments if k not in props]
        for err in sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.path)):
            if not err.path and err.validator in ("required", "additionalProperties"):
                continue  # reported above, in the model's own terms
            where = _format_path(err.path)
            message = err.message
            if len(message) > _MAX_MESSAGE_CHARS:
                message = message[:_MAX_MESSAGE_CHARS] + "..."
            errors.append(f"{where}: {message}" if where else message)
        return errors

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def _prepare(self, arguments: dict) -> dict:
        """JSON values -> the Python types the function declares (models, enums, tuples)."""
        return {k: _convert(self._hints.get(k, Any), v) for k, v in arguments.items()}


def _format_path(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- @tool -------------------------------------------------------------------------


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, timeout_s: float = 10.0
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout_s: float = 10.0,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a :class:`Tool` of a function; usable bare (``@tool``) or with arguments.

    Raises TypeError for ``*args``/``**kwargs``/positional-only parameters or a type
    that has no JSON Schema, ValueError for a bad name or a missing description.
    """

    def build(f: Callable[..., Any]) -> Tool:
        return _make_tool(f, name=name, description=description, timeout_s=timeout_s)

    return build if fn is None else build(fn)


def _make_tool(
    fn: Callable[..., Any], *, name: str | None, description: str | None, timeout_s: float
) -> Tool:
    tool_name = name or getattr(fn, "__name__", "")
    if not _NAME_RE.match(tool_name):
        raise ValueError(f"tool name {tool_name!r} must match {_NAME_RE.pattern}")
    if not timeout_s > 0:
        raise ValueError(f"tool {tool_name}: timeout_s must be positive, got {timeout_s}")
    summary, param_docs = _parse_docstring(inspect.getdoc(fn) or "")
    description = description or summary
    if not description:
        raise ValueError(f"tool {tool_name} needs a description: add a docstring")
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # NameError for a type defined inside a function, etc.
        raise TypeError(f"tool {tool_name}: cannot resolve its type annotations ({exc})") from exc
    parameters = _parameters_schema(fn, tool_name, hints, param_docs)
    return Tool(tool_name, description, parameters, fn, float(timeout_s), hints)


def _parameters_schema(
    fn: Callable[..., Any], name: str, hints: dict[str, Any], param_docs: dict[str, str]
) -> dict:
    properties: dict[str, dict] = {}
    required: list[str] = []
    defs: dict[str, Any] = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"tool {name}: *args/**kwargs ({p.name!r}) cannot have a JSON Schema")
        if p.kind is p.POSITIONAL_ONLY:
            raise TypeError(f"tool {name}: parameter {p.name!r} is positional-only")
        where = f"tool {name}, parameter {p.name!r}"
        schema = _type_schema(hints.get(p.name, Any), defs, where)
        if p.name in param_docs:
            schema["description"] = param_docs[p.name]
        if p.default is p.empty:
            required.append(p.name)
        else:
            try:
                schema["default"] = json.loads(json.dumps(_jsonable(p.default)))
            except (TypeError, ValueError):
                pass  # not JSON: the model simply is not told the default
        properties[p.name] = schema
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if defs:
        parameters["$defs"] = defs
    return parameters


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def _type_schema(tp: Any, defs: dict[str, Any], where: str) -> dict:
    """JSON Schema of one annotation; pydantic ``$defs`` are hoisted into ``defs``."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:  # first: Annotated[..., {dict}] cannot be hashed
        schema = _type_schema(args[0], defs, where)
        for meta in args[1:]:
            if isinstance(meta, str):
                schema["description"] = meta
            elif isinstance(meta, dict):
                schema.update(meta)
        return schema
    if tp is Any or tp is inspect.Parameter.empty:
        return {}
    if tp is None or tp is type(None):
        return {"type": "null"}
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    if origin is Literal:
        return _enum_schema([_jsonable(v) for v in args])
    if origin is Union or origin is types.UnionType:
        return {"anyOf": [_type_schema(a, defs, where) for a in args]}
    if tp is tuple or origin is tuple:
        if not args:
            return {"type": "array"}
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _type_schema(args[0], defs, where)}
        items = [_type_schema(a, defs, where) for a in args]
        return {
            "type": "array",
            "prefixItems": items,
            "minItems": len(items),
            "maxItems": len(items),
        }
    if tp in _ARRAYS or origin in _ARRAYS:
        schema: dict[str, Any] = {"type": "array"}
        if args and args[0] is not Any:
            schema["items"] = _type_schema(args[0], defs, where)
        if set in (tp, origin) or frozenset in (tp, origin):
            schema["uniqueItems"] = True
        return schema
    if tp is dict or origin in (dict, collections.abc.Mapping):
        if args and args[0] is not str:
            raise TypeError(f"{where}: JSON object keys are strings, not {args[0]!r}")
        if args and args[1] is not Any:
            return {"type": "object", "additionalProperties": _type_schema(args[1], defs, where)}
        return {"type": "object"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_schema([m.value for m in tp])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        schema = tp.model_json_schema()
        for key, value in schema.pop("$defs", {}).items():
            if defs.setdefault(key, value) != value:
                raise TypeError(f"{where}: two different models are both named {key!r}")
        return schema
    raise TypeError(
        f"{where}: type {tp!r} has no JSON Schema; use str, int, float, bool, list, tuple, "
        "dict, Literal, an Enum, X | None or a pydantic model"
    )


def _enum_schema(values: list[Any]) -> dict:
    kinds = {_json_type(v) for v in values}
    if len(kinds) == 1 and None not in kinds:
        return {"type": kinds.pop(), "enum": values}
    return {"enum": values}


def _json_type(value: Any) -> str | None:
    if value is None:
        return "null"
    for py, js in (
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
    ):
        if isinstance(value, py):
            return js
    return None


def _convert(tp: Any, value: Any) -> Any:
    """Turn a JSON value into the annotated Python type where JSON cannot say it."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return _convert(args[0], value)
    if value is None:
        return None
    if origin is Union or origin is types.UnionType:
        members = [a for a in args if a is not type(None)]
        return _convert(members[0], value) if len(members) == 1 else value
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)  # JSON Schema counts 3.0 as an integer; the function wants 3
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp.model_validate(value)
    if isinstance(value, list) and (tp in (tuple, set, frozenset) or origin in (tuple, set, list)):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            items = [_convert(a, v) for a, v in zip(args, value, strict=False)]
        else:
            items = [_convert(args[0] if args else Any, v) for v in value]
        container = origin or tp
        return container(items) if container in (tuple, set, frozenset) else items
    if isinstance(value, dict) and origin is dict and len(args) == 2:
        return {k: _convert(args[1], v) for k, v in value.items()}
    return value


# --- docstrings --------------------------------------------------------------------

_SECTION_RE = re.compile(
    r"^(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Examples?|Notes?|"
    r"Attributes|See Also|Warnings?)\s*:\s*$"
)
_ARGS_RE = re.compile(r"^(Args|Arguments|Parameters|Params)\s*:\s*$")
_GOOGLE_ENTRY_RE = re.compile(r"^\**(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_REST_PARAM_RE = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """``(first paragraph, {parameter: description})`` of a Google or reST docstring."""
    lines = inspect.cleandoc(doc).splitlines() if doc else []
    summary: list[str] = []
    for line in lines:
        text = line.strip()
        if not text or _SECTION_RE.match(text) or text.startswith(":"):
            break
        summary.append(text)
    params: dict[str, str] = {}
    for i, line in enumerate(lines):
        if _ARGS_RE.match(line.strip()):
            params.update(_google_args(lines[i + 1 :], _indent(line)))
    params.update(_rest_params(lines))
    return " ".join(summary), params


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google_args(lines: list[str], header_indent: int) -> dict[str, str]:
    params: dict[str, list[str]] = {}
    entry_indent: int | None = None
    current: list[str] | None = None
    for line in lines:
        if not line.strip():
            continue
        indent = _indent(line)
        if indent <= header_indent:
            break
        if entry_indent is None:
            entry_indent = indent
        match = _GOOGLE_ENTRY_RE.match(line.strip())
        if indent == entry_indent and match:
            current = params.setdefault(match.group(1), [])
            current.append(match.group(2).strip())
        elif indent > entry_indent and current is not None:
            current.append(line.strip())
    return {name: " ".join(p for p in parts if p) for name, parts in params.items()}


def _rest_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, list[str]] = {}
    current: list[str] | None = None
    field_indent = 0
    for line in lines:
        text = line.strip()
        match = _REST_PARAM_RE.match(text)
        if match:
            current = params.setdefault(match.group(1), [])
            current.append(match.group(2).strip())
            field_indent = _indent(line)
        elif current is not None and text[:1] not in ("", ":") and _indent(line) > field_indent:
            current.append(text)
        else:
            current = None
    return {name: " ".join(p for p in parts if p) for name, parts in params.items()}


# --- output safety -----------------------------------------------------------------

# Protocol tags of the Hermes/Qwen tool format and chat-template control tokens
# (<|im_start|>, <|eot_id|>, and DeepSeek's full-width <｜...｜>): a tool output that
# contains them could otherwise end its own turn and script a fake tool call.
_UNSAFE_MARKUP = re.compile(
    r"<\s*/?\s*(?:tool_call|tool_response)\s*>|<\|[^<>|\n]{0,64}\|>|<｜[^<>｜\n]{0,64}｜>",
    re.IGNORECASE,
)


def sanitize_output(text: str) -> str:
    """Make protocol markup in untrusted tool output inert (``<``/``>`` -> ``‹``/``›``).

    Only the matched tags and control tokens change; ordinary text, including other
    angle brackets, is left as it is.
    """
    return _UNSAFE_MARKUP.sub(lambda m: m.group().replace("<", "‹").replace(">", "›"), text)


def _cap(text: str, max_chars: int) -> tuple[str, bool]:
    if len(text) <= max_chars:
        return text, False
    marker = f"\n[... output truncated: {max_chars} of {len(text)} characters shown ...]"
    return text[:max_chars] + marker, True


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


# --- registry ----------------------------------------------------------------------


class ToolRegistry:
    """Tools by name, and which of them the model may call (``allow=None``: all)."""

    def __init__(self, tools: Iterable[Tool] = (), allow: Iterable[str] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        self._allow = None if allow is None else set(allow)
        for t in tools:
            self.register(t)

    def register(self, tool: Tool) -> Tool:
        """Add ``tool``; a second tool with the same name is a ValueError."""
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool | None:
        """The registered tool called ``name``, allowed or not."""
        return self._tools.get(name)

    @property
    def names(self) -> list[str]:
        """Names of the allowed tools, sorted."""
        return sorted(n for n in self._tools if self.is_allowed(n))

    def is_allowed(self, name: str) -> bool:
        """Whether ``name`` is registered and on the allow-list."""
        return name in self._tools and (self._allow is None or name in self._allow)

    def specs(self) -> list[dict]:
        """OpenAI-format specs of the allowed tools, in registration order."""
        return [t.spec() for t in self._tools.values() if self.is_allowed(t.name)]

    def execute(
        self,
        name: str,
        arguments: dict,
        *,
        max_output_chars: int = 4000,
        timeout_s: float | None = None,
    ) -> ToolResult:
        """Run one tool call and report what happened; whatever the tool does, this returns.

        An unknown or not-allowed tool, or arguments that fail the schema, are refused
        without calling anything. The call runs in a daemon thread: on timeout the
        thread is abandoned (Python cannot kill it), so a hung tool never blocks the
        caller. Output and error text are sanitised and capped at ``max_output_chars``.
        """
        if max_output_chars < 1:
            raise ValueError("max_output_chars must be at least 1")
        start = time.perf_counter()
        t = self._tools.get(name)
        if t is None or not self.is_allowed(name):
            available = ", ".join(self.names) or "none"
            error = f"tool {name!r} is not available; available tools: {available}"
            outcome: _Outcome = ("refused", error)
        elif problems := t.validate_arguments(arguments):
            outcome = ("refused", f"invalid arguments for {name}: " + "; ".join(problems))
        else:
            limit = t.timeout_s if timeout_s is None else timeout_s
            outcome = _run(t, arguments, limit)
        kind, text = outcome
        text, truncated = _cap(sanitize_output(text), max_output_chars)
        return ToolResult(
            ok=kind == "ok",
            output=text if kind == "ok" else None,
            error=None if kind == "ok" else text,
            error_type=None if kind == "ok" else kind,
            duration_s=time.perf_counter() - start,
            truncated=truncated,
        )


_Outcome = tuple[Literal["ok", "timeout", "exception", "refused"], str]


def _run(t: Tool, arguments: dict, timeout_s: float) -> _Outcome:
    """Call ``t`` in a daemon thread; the outcome kind and the text for the model."""
    box: list[tuple[bool, Any]] = []

    def work() -> None:
        try:
            box.append((True, t.fn(**t._prepare(arguments))))
        except BaseException as exc:  # even SystemExit: everything goes back as data
            box.append((False, exc))

    worker = threading.Thread(target=work, name=f"tool-{t.name}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        return "timeout", f"timed out after {float(timeout_s)} s"
    succeeded, value = box[0]
    if succeeded:
        try:
            return "ok", _to_text(value)
        except Exception as exc:  # e.g. a circular structure json cannot encode
            value = exc
    if isinstance(value, ToolError):
        return "refused", str(value) or "refused"
    return "exception", f"{type(value).__name__}: {value}" if str(value) else type(value).__name__
