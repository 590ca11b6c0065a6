"""Tool calls: ``tool_call_unknown`` and ``tool_args_invalid``.

Training on a call to a tool the record never declared, or on arguments its schema
rejects, teaches the model to make exactly the calls the runtime will refuse.
Schemas are checked with ``jsonschema`` (the draft each schema declares, 2020-12
when it declares none).
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import SchemaError
from jsonschema.validators import validator_for

from tuneloop.data.checks.item import Context, Item
from tuneloop.data.findings import CheckInfo
from tuneloop.data.records import LabeledExample, PreferencePair

TOOL_CALL_UNKNOWN = CheckInfo(
    "tool_call_unknown", "error", "Every called tool is declared in the record's tools."
)  # fmt: skip
TOOL_ARGS_INVALID = CheckInfo(
    "tool_args_invalid", "error",
    "Tool-call arguments are a JSON object that satisfies the tool's parameters schema.",
)  # fmt: skip

CHECKS = (TOOL_CALL_UNKNOWN, TOOL_ARGS_INVALID)


def _arguments(raw: dict[str, Any] | str) -> tuple[Any, str | None]:
    """The arguments object, or an explanation of why there is none."""
    if isinstance(raw, dict):
        return raw, None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"arguments are not valid JSON: {exc.msg} (column {exc.colno})"
    if not isinstance(value, dict):
        return None, f"arguments are a JSON {type(value).__name__}, not an object"
    return value, None


def schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """jsonschema's messages for ``instance``, each prefixed with its JSON path."""
    cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        return [f"the tool's parameters schema is invalid: {exc.message}"]
    errors = sorted(cls(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{e.json_path}: {e.message}" for e in errors]


def _is_negative_example(item: Item, path: str) -> bool:
    """A rejected side, or an undesirable KTO completion: bad calls are the point there.

    Mined failures (an invalid first attempt vs the repaired one) produce exactly such
    pairs; the model is trained *away* from them, so they must not fail validation.
    """
    if isinstance(item.record, PreferencePair):
        return path.startswith("rejected")
    if isinstance(item.record, LabeledExample):
        return not item.record.label and path.startswith("completion")
    return False


def check_tool_calls(item: Item, ctx: Context) -> None:
    """Each call names a declared tool and passes its schema (positive examples only)."""
    specs = {t.function.name: t.function.parameters for t in item.tools or []}
    for path, m in item.turns:
        if _is_negative_example(item, path):
            continue
        for k, call in enumerate(m.tool_calls or []):
            where = f"{path}.tool_calls.{k}.function"
            name = call.function.name
            if name not in specs:
                declared = ", ".join(sorted(specs)) or "none"
                ctx.add(TOOL_CALL_UNKNOWN, item, f"calls {name!r}, not among the record's tools ({declared})", f"{where}.name")  # fmt: skip
                continue
            args, problem = _arguments(call.function.arguments)
            errors = [problem] if problem else schema_errors(specs[name], args)
            if errors:
                more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
                ctx.add(TOOL_ARGS_INVALID, item, f"{name}: {errors[0]}{more}", f"{where}.arguments")
