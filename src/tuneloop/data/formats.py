"""Readers that turn common dataset formats into the canonical records.

| format | a row holds | becomes |
|---|---|---|
| ``messages`` | ``messages`` (or ``conversations``) of OpenAI role/content dicts, ``tools`` | Conversation |
| ``alpaca`` | ``instruction``, ``input``, ``output``, ``system`` | Conversation |
| ``sharegpt`` | ``conversations`` of ``{from, value}`` turns | Conversation |
| ``hermes`` | ShareGPT turns with ``<tools>``, ``<tool_call>``, ``<tool_response>`` tags | Conversation |
| ``xlam`` | ``query``, ``tools``, ``answers`` | Conversation |
| ``preference`` | ``prompt``, ``chosen``, ``rejected`` (strings or messages) | PreferencePair |
| ``kto`` | ``prompt``, ``completion``, ``label`` | LabeledExample |

A reader is a function ``Row -> record`` registered by name in :data:`READERS`; every
bad row raises :class:`DataError` naming its file, line and input field. Rows keep
their ``id`` and ``metadata``; other extra keys (Alpaca's pre-rendered ``text``...) drop.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuneloop.data.formats_tools import (
    build,
    common,
    fail,
    from_hermes,
    from_sharegpt,
    from_xlam,
    get,
    number,
    tool_call,
    tool_specs,
    type_name,
)
from tuneloop.data.io import DataError, Row, read_jsonl, write_jsonl
from tuneloop.data.records import Conversation, LabeledExample, PreferencePair

Record = Conversation | PreferencePair | LabeledExample
Reader = Callable[[Row], Record]

# ---------------------------------------------------------------- OpenAI messages

_ROLES = {"system": "system", "developer": "system", "user": "user",
          "assistant": "assistant", "tool": "tool", "function": "tool"}  # fmt: skip


def _content(row: Row, value: Any, field: str) -> str | None:
    """A string, None, or OpenAI content parts (text parts only, joined)."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, list):
        fail(row, field, f"expected a string or a list of text parts, got {type_name(value)}")
    texts = []
    for k, part in enumerate(value):
        if (
            not isinstance(part, dict)
            or part.get("type") != "text"
            or not isinstance(part.get("text"), str)
        ):
            fail(
                row, f"{field}.{k}", "only text parts ({'type': 'text', 'text': ...}) are supported"
            )
        texts.append(part["text"])
    return "".join(texts)


def _message(row: Row, obj: Any, field: str) -> dict[str, Any]:
    """One OpenAI-style message; unknown keys (``refusal``...) are dropped."""
    if not isinstance(obj, dict):
        fail(row, field, f"expected a message object, got {type_name(obj)}")
    role = get(row, obj, "role", str, f"{field}.role")
    if role not in _ROLES:
        fail(
            row,
            f"{field}.role",
            f"unknown role {role!r} (expected system, user, assistant or tool)",
        )
    msg: dict[str, Any] = {
        "role": _ROLES[role],
        "content": _content(row, obj.get("content"), f"{field}.content"),
    }
    calls = get(row, obj, "tool_calls", list, f"{field}.tool_calls", required=False) or []
    if obj.get("function_call") is not None:  # the pre-tools OpenAI form
        calls = [*calls, {"function": obj["function_call"]}]
    if calls:
        if msg["role"] != "assistant":
            fail(row, f"{field}.tool_calls", f"only assistant turns make tool calls, not {role}")
        msg["tool_calls"] = [
            tool_call(row, c, f"{field}.tool_calls.{k}", keep_raw=True) for k, c in enumerate(calls)
        ]
    elif msg["content"] is None:
        fail(
            row, f"{field}.content", "missing (only an assistant turn with tool_calls may omit it)"
        )
    for key in ("tool_call_id", "name"):
        if (value := get(row, obj, key, str, f"{field}.{key}", required=False)) is not None:
            msg[key] = value
    if (weight := number(row, obj, "weight", f"{field}.weight")) is not None:
        msg["weight"] = weight
    return msg


def _messages(
    row: Row, value: Any, field: str, default_role: str | None = None
) -> list[dict[str, Any]]:
    """A list of messages, or (when ``default_role`` is given) a string as one message."""
    if default_role and isinstance(value, str):
        return [{"role": default_role, "content": value}]
    if not isinstance(value, list):
        kinds = "a string or a list of messages" if default_role else "a list of messages"
        fail(row, field, f"expected {kinds}, got {type_name(value)}")
    if not value:
        fail(row, field, "is empty")
    return [_message(row, m, f"{field}.{i}") for i, m in enumerate(value)]


def _tools(row: Row) -> list[dict[str, Any]] | None:
    """The row's optional ``tools`` (a list of specs, or a JSON string of one)."""
    if row.data.get("tools") is None:
        return None
    return tool_specs(row, row.data["tools"], "tools") or None


def from_messages(row: Row) -> Conversation:
    """OpenAI chat: ``{"messages": [...], "tools"?: [...]}`` (or ``conversations``)."""
    key = (
        "messages" if "messages" in row.data or "conversations" not in row.data else "conversations"
    )
    if key not in row.data:
        fail(row, key, "missing")
    messages = _messages(row, row.data[key], key)
    return build(row, Conversation, {"messages": messages, "tools": _tools(row), **common(row)})


# ----------------------------------------------------------------- Alpaca


def from_alpaca(row: Row) -> Conversation:
    """``instruction`` (+ ``input``, joined after a blank line), ``output``, ``system``."""
    instruction = get(row, row.data, "instruction", str, "instruction")
    extra = get(row, row.data, "input", str, "input", required=False)
    output = get(row, row.data, "output", str, "output")
    system = get(row, row.data, "system", str, "system", required=False)
    prompt = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
    return build(row, Conversation, {"messages": messages, **common(row)})


# ------------------------------------------------------- preference pairs and KTO


def _with_system(row: Row, prompt: list[dict[str, Any]]) -> list[dict[str, Any]]:
    system = get(row, row.data, "system", str, "system", required=False)
    if system is None:
        return prompt
    if prompt and prompt[0]["role"] == "system":
        fail(row, "system", "given twice: as a field and as the prompt's first message")
    return [{"role": "system", "content": system}, *prompt]


def _continuation(row: Row, prompt: list[dict], turns: list[dict], field: str) -> list[dict]:
    """``turns`` without a copy of the prompt in front (UltraFeedback-style rows repeat it)."""
    if len(turns) > len(prompt) and turns[: len(prompt)] == prompt:
        turns = turns[len(prompt) :]
    if not any(m["role"] == "assistant" for m in turns):
        fail(row, field, "has no assistant message")
    return turns


def _split_prompt(row: Row, chosen: list[dict], rejected: list[dict]) -> list[dict]:
    """TRL's implicit prompt: the longest common prefix of chosen and rejected."""
    n = 0
    while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
        n += 1
    if n == 0:
        fail(
            row,
            "prompt",
            "missing, and chosen and rejected share no leading messages to take it from",
        )
    return chosen[:n]


def from_preference(row: Row) -> PreferencePair:
    """``prompt``, ``chosen``, ``rejected``: strings (a user turn / an assistant turn) or
    messages. Without ``prompt``, the common leading messages of chosen and rejected are it."""
    for key in ("chosen", "rejected"):
        if key not in row.data:
            fail(row, key, "missing")
    chosen = _messages(row, row.data["chosen"], "chosen", "assistant")
    rejected = _messages(row, row.data["rejected"], "rejected", "assistant")
    if "prompt" in row.data:
        prompt = _messages(row, row.data["prompt"], "prompt", "user")
    else:
        prompt = _split_prompt(row, chosen, rejected)
    data = {
        "prompt": _with_system(row, prompt),
        "chosen": _continuation(row, prompt, chosen, "chosen"),
        "rejected": _continuation(row, prompt, rejected, "rejected"),
        **common(row),
    }
    data["tools"] = _tools(row)
    return build(row, PreferencePair, data)


def from_kto(row: Row) -> LabeledExample:
    """``prompt``, ``completion`` (strings or messages) and a boolean ``label``."""
    if "prompt" not in row.data:
        fail(row, "prompt", "missing")
    prompt = _messages(row, row.data["prompt"], "prompt", "user")
    if "completion" not in row.data:
        fail(row, "completion", "missing")
    completion = _continuation(
        row, prompt, _messages(row, row.data["completion"], "completion", "assistant"), "completion"
    )
    label = get(row, row.data, "label", bool, "label")
    data = {
        "prompt": _with_system(row, prompt),
        "completion": completion,
        "label": label,
        **common(row),
    }
    data["tools"] = _tools(row)
    return build(row, LabeledExample, data)


# ------------------------------------------------------------ registry, detection

READERS: dict[str, Reader] = {
    "messages": from_messages,
    "alpaca": from_alpaca,
    "sharegpt": from_sharegpt,
    "hermes": from_hermes,
    "xlam": from_xlam,
    "preference": from_preference,
    "kto": from_kto,
}
"""Format name (what ``--from`` takes) -> reader. Add formats with :func:`register_format`."""

_HERMES_TAGS = ("<tools>", "<tool_call>", "<tool_response>")


def register_format(name: str, reader: Reader) -> None:
    """Make ``reader`` available as ``--from name`` (replacing a built-in of that name)."""
    READERS[name] = reader


def detect_format(row: Row | dict[str, Any]) -> str:
    """The format of a row, from its keys (``conversations`` also from its turns' keys)."""
    data = row.data if isinstance(row, Row) else row
    if "chosen" in data and "rejected" in data:
        return "preference"
    if "completion" in data and "label" in data:
        return "kto"
    if "messages" in data:
        return "messages"
    turns = data.get("conversations")
    if isinstance(turns, list) and turns and all(isinstance(t, dict) for t in turns):
        if "from" in turns[0] or "value" in turns[0]:
            texts = [t.get("value") for t in turns if isinstance(t.get("value"), str)]
            return "hermes" if any(tag in s for s in texts for tag in _HERMES_TAGS) else "sharegpt"
        if "role" in turns[0]:
            return "messages"
    if "instruction" in data and "output" in data:
        return "alpaca"
    if "query" in data and "answers" in data:
        return "xlam"
    file, line = (row.file, row.line) if isinstance(row, Row) else ("<row>", None)
    keys = ", ".join(sorted(data)) or "none"
    raise DataError(file, line, f"cannot tell the format from the keys ({keys}); name it with --from "
                    f"({', '.join(READERS)})")  # fmt: skip


# ---------------------------------------------------------------------- files


def _json_list(path: Path) -> Iterator[Row]:
    """Rows of a ``.json`` file holding a list; each row's "line" is its list index."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
        items = json.loads(text)
    except UnicodeDecodeError as exc:
        raise DataError(path, None, f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DataError(
            path, None, f"invalid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise DataError(path, None, "invalid JSON: nested too deeply") from None
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise DataError(path, i, f"expected a JSON object, got {type_name(item)}")
        yield Row(str(path), i, item)


def _starts_with_list(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")


def read_rows(path: str | Path) -> Iterator[Row]:
    """Rows of a JSONL file, or of a ``.json`` file holding a list of rows.

    A ``.json`` file that does not start with ``[`` is read as JSONL (``datasets``
    writes JSON Lines under that name).
    """
    path = Path(path)
    if path.suffix.lower() == ".json" and path.is_file() and _starts_with_list(path):
        yield from _json_list(path)
    else:
        yield from read_jsonl(path)


def _open(in_path: str | Path, fmt: str) -> tuple[str, Iterator[Row]]:
    """The format name (detected from the first row for ``auto``) and the rows."""
    rows = read_rows(in_path)
    if fmt != "auto":
        if fmt not in READERS:
            raise DataError(
                in_path, None, f"unknown format {fmt!r} (known: auto, {', '.join(READERS)})"
            )
        return fmt, rows
    first = next(rows, None)
    if first is None:
        raise DataError(in_path, None, "no rows to detect the format from")
    return detect_format(first), itertools.chain([first], rows)


def iter_converted(in_path: str | Path, fmt: str = "auto") -> Iterator[tuple[Row, Record]]:
    """Yield ``(row, record)`` for each row; the first bad row raises :class:`DataError`."""
    name, rows = _open(in_path, fmt)
    reader = READERS[name]
    for row in rows:
        yield row, reader(row)


@dataclass
class ConvertResult:
    count: int
    """Records written."""
    format: str
    """The format read (the detected one for ``auto``)."""


def convert_file(in_path: str | Path, out_path: str | Path, fmt: str = "auto") -> ConvertResult:
    """Convert a file to canonical JSONL. Atomic: when any row fails, nothing is written."""
    name, rows = _open(in_path, fmt)
    reader = READERS[name]

    def records() -> Iterator[Record]:
        n = 0
        for row in rows:
            n += 1
            yield reader(row)
        if n == 0:
            raise DataError(in_path, None, "no rows to convert")

    return ConvertResult(write_jsonl(out_path, records()), name)
