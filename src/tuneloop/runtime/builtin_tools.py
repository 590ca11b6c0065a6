"""The built-in tools: calculator, clock, read_file (under a root) and search_docs (BM25).

They are made with ``@tool`` exactly like user tools, and their argument names are
the ones the reference training data uses. Every one of them treats its arguments as
hostile: the calculator walks a whitelisted AST and bounds the size of every number
before computing it, ``read_file`` never leaves its root (``..``, absolute paths and
symlinks included), and refusals are :class:`ToolError` messages that tell the model
what to fix without revealing host paths.
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import math
import operator
import os
import re
import stat
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from tuneloop.runtime.tools import Tool, ToolError, ToolRegistry, tool

__all__ = [
    "BUILTIN_TOOLS",
    "builtin_registry",
    "calculator",
    "clock",
    "make_read_file",
    "make_search_docs",
    "now",
]

BUILTIN_TOOLS = ("calculator", "clock", "read_file", "search_docs")

# --- calculator --------------------------------------------------------------------

MAX_EXPRESSION_CHARS = 500
_MAX_EXPONENT = 1000
_MAX_POWER_LOG10 = 1000  # refuse a ** b whose result would pass 10**1000
_MAX_INT = 10**4000  # refuse integer results with more than 4000 digits
_MAX_DEPTH = 100

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "floor": math.floor,
    "ceil": math.ceil,
    "log": math.log,
    "exp": math.exp,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_REFUSED_NODES = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.List: "lists",
    ast.Tuple: "tuples (no commas in numbers, please)",
    ast.Set: "sets",
    ast.Dict: "dicts",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.Compare: "comparisons",
    ast.BoolOp: "'and'/'or'",
    ast.IfExp: "conditional expressions",
    ast.NamedExpr: "assignment",
    ast.JoinedStr: "strings",
    ast.Starred: "unpacking",
}


@tool(timeout_s=2.0)
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly and return the result.

    Args:
        expression: Numbers with + - * / // % ** (or ^) and parentheses, the functions
            sqrt, abs, round, min, max, floor, ceil, log, exp and the constants pi and e,
            e.g. '1234 * 5678' or 'sqrt(16) + 2**10'.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(
            f"expression is too long ({len(expression)} characters, the limit is "
            f"{MAX_EXPRESSION_CHARS})"
        )
    text = expression.replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        detail = exc.msg if isinstance(exc, SyntaxError) else "cannot be parsed"
        raise ToolError(f"invalid expression {expression!r}: {detail}") from None
    return _format_number(_evaluate(tree.body, 0))


def _evaluate(node: ast.AST, depth: int) -> int | float:
    if depth > _MAX_DEPTH:
        raise ToolError("expression is nested too deeply")
    if isinstance(node, ast.Constant):
        if type(node.value) in (int, float):
            return node.value
        raise ToolError(
            f"{type(node.value).__name__} values like {node.value!r} are not allowed: only numbers"
        )
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(f"name {node.id!r} is not allowed; the only names are pi and e")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        value = _evaluate(node.operand, depth + 1)
        return -value if isinstance(node.op, ast.USub) else +value
    if isinstance(node, ast.BinOp) and (isinstance(node.op, ast.Pow) or type(node.op) in _BINOPS):
        left = _evaluate(node.left, depth + 1)
        right = _evaluate(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            return _checked(lambda: _power(left, right))
        return _checked(lambda: _BINOPS[type(node.op)](left, right))
    if isinstance(node, ast.Call):
        return _call(node, depth)
    if isinstance(node, ast.BinOp):
        raise ToolError(f"the operator {type(node.op).__name__} is not allowed")
    what = _REFUSED_NODES.get(type(node), type(node).__name__)
    raise ToolError(f"not allowed in a calculator expression: {what}")


def _call(node: ast.Call, depth: int) -> int | float:
    if not isinstance(node.func, ast.Name):
        raise ToolError("only plain function names like sqrt(...) are allowed")
    name = node.func.id
    if name not in _FUNCTIONS:
        raise ToolError(f"function {name!r} is not allowed; allowed: {', '.join(_FUNCTIONS)}")
    if node.keywords:
        raise ToolError(f"keyword arguments are not allowed in {name}(...)")
    args = [_evaluate(a, depth + 1) for a in node.args]
    if name == "round" and len(args) == 2 and (type(args[1]) is not int or abs(args[1]) > 100):
        raise ToolError("round(x, n) needs a whole number n between -100 and 100")
    try:
        return _checked(lambda: _FUNCTIONS[name](*args))
    except (TypeError, ValueError) as exc:
        raise ToolError(f"{name}: {exc}") from None


def _power(base: int | float, exponent: int | float) -> Any:
    # Bound the size before computing: 9**9**9 would otherwise run for minutes.
    if abs(exponent) > _MAX_EXPONENT:
        raise ToolError(f"exponent is too large (the limit is {_MAX_EXPONENT})")
    if base != 0 and exponent * math.log10(abs(base)) > _MAX_POWER_LOG10:
        raise ToolError(f"result would be too large (over 10**{_MAX_POWER_LOG10})")
    return base**exponent


def _checked(compute: Callable[[], Any]) -> int | float:
    try:
        value = compute()
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("result is too large") from None
    if isinstance(value, complex):
        raise ToolError("result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("result is too large" if math.isinf(value) else "result is not a number")
    if isinstance(value, int) and abs(value) >= _MAX_INT:
        raise ToolError("result has more than 4000 digits")
    return value


def _format_number(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.12g}"


# --- clock -------------------------------------------------------------------------

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_ZONE_RE = re.compile(r"^[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*$")  # no dots: no '..'


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


now: Callable[[], dt.datetime] = _utc_now
"""Where ``clock`` reads the time (aware UTC); tests replace it to freeze time."""


@tool(timeout_s=2.0)
def clock(timezone: str = "UTC") -> str:
    """Tell the current date, time and weekday in a time zone.

    Args:
        timezone: An IANA time zone name such as 'Europe/Paris' or 'America/New_York'.
    """
    key, zone = _zone(timezone)
    current = now()
    if current.tzinfo is None:
        current = current.replace(tzinfo=dt.timezone.utc)
    local = current.astimezone(zone)
    return f"{local.isoformat(timespec='seconds')} ({key}, {_WEEKDAYS[local.weekday()]})"


def _zone(name: str) -> tuple[str, zoneinfo.ZoneInfo]:
    key = name.strip()
    if key.upper() == "UTC":
        key = "UTC"
    if len(key) > 64 or not _ZONE_RE.match(key):
        raise ToolError(f"unknown time zone {name!r}")
    key = _zone_keys_by_lowercase().get(key.lower(), key)  # 'europe/paris' works too
    try:
        return key, zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ToolError(f"unknown time zone {name!r}") from None


@functools.lru_cache(maxsize=1)
def _zone_keys_by_lowercase() -> dict[str, str]:
    return {k.lower(): k for k in zoneinfo.available_timezones()}


# --- read_file ---------------------------------------------------------------------

_WINDOWS_DRIVE_RE = re.compile(r"^[A-Za-z]:")


def make_read_file(root: str | Path, max_bytes: int = 100_000) -> Tool:
    """A ``read_file`` tool that reads UTF-8 text files under ``root`` and nowhere else.

    Paths are resolved with symlinks followed and must land inside the real root, so
    ``../``, absolute paths and symlinks (to files or folders) pointing out are all
    refused. Files over ``max_bytes`` are refused with their size.
    """
    if not os.path.isdir(root):
        raise ValueError(f"read_file root folder does not exist: {root}")
    real_root = os.path.realpath(root)

    @tool(name="read_file", timeout_s=5.0)
    def read_file(path: str) -> str:
        """Read a UTF-8 text file from the project folder.

        Args:
            path: The file's path relative to the project folder, e.g. 'docs/intro.md'.
        """
        full = _resolve_inside(real_root, path)
        return _read_text(full, path, max_bytes)

    return read_file


def _resolve_inside(real_root: str, path: str) -> str:
    if not path.strip():
        raise ToolError("path is empty")
    if "\x00" in path:
        raise ToolError("path contains a NUL byte")
    if path.startswith(("/", "\\", "~")) or _WINDOWS_DRIVE_RE.match(path):
        raise ToolError(
            f"absolute paths are not allowed: {path!r}; give a path relative to the project folder"
        )
    full = os.path.realpath(os.path.join(real_root, path))
    if os.path.commonpath([real_root, full]) != real_root:
        raise ToolError(f"path is outside the project folder: {path!r}")
    return full


def _read_text(full: str, path: str, max_bytes: int) -> str:
    # O_NONBLOCK: a FIFO must not hang the tool; O_NOFOLLOW: no symlink swapped in
    # after the check above.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(full, flags)
    except FileNotFoundError:
        raise ToolError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise ToolError(f"{path!r} is a directory, not a file") from None
    except OSError as exc:
        raise ToolError(f"cannot read {path!r}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ToolError(f"{path!r} is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise ToolError(f"{path!r} is not a regular file")
        if info.st_size > max_bytes:
            raise ToolError(
                f"file is too large: {path!r} has {info.st_size} bytes, the limit is {max_bytes}"
            )
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # grew since fstat
        raise ToolError(f"file is too large: {path!r} has over {max_bytes} bytes")
    return data.decode("utf-8", errors="replace")


# --- search_docs -------------------------------------------------------------------

_MAX_DOC_BYTES = 1_000_000
_K1, _B = 1.5, 0.75
_WORD_RE = re.compile(r"\w+")


@dataclass
class _Doc:
    path: str
    """Relative, with forward slashes."""
    text: str
    terms: Counter[str]
    length: int


def make_search_docs(
    folder: str | Path,
    extensions: Iterable[str] = (".md", ".txt"),
    max_chars_per_hit: int = 600,
) -> Tool:
    """A ``search_docs`` tool ranking the files under ``folder`` by BM25 (k1=1.5, b=0.75).

    Files are indexed once, here: recursively, in sorted order, skipping files over
    1 MB and links that point out of ``folder``.
    """
    if not os.path.isdir(folder):
        raise ValueError(f"search_docs folder does not exist: {folder}")
    docs = _index(Path(folder), tuple(e.lower() for e in extensions))
    avg_len = sum(d.length for d in docs) / len(docs) if docs else 0.0
    df = Counter(term for d in docs for term in d.terms)

    @tool(name="search_docs", timeout_s=5.0)
    def search_docs(query: str, k: Annotated[int, {"minimum": 1, "maximum": 10}] = 3) -> str:
        """Search the documentation and return the best matching passages.

        Args:
            query: Words to look for, e.g. 'reset password'.
            k: How many documents to return, 1 to 10.
        """
        if type(k) is not int or not 1 <= k <= 10:
            raise ToolError(f"k must be a whole number from 1 to 10, got {k!r}")
        terms = sorted(set(_WORD_RE.findall(query.lower())))
        scored = [(_bm25(d, terms, df, len(docs), avg_len), d) for d in docs]
        hits = sorted(((s, d) for s, d in scored if s > 0), key=lambda h: (-h[0], h[1].path))
        if not hits:
            return f"no documents match {query!r}"
        return "\n\n".join(
            f"[{n}] {d.path} (score {s:.2f})\n{_best_snippet(d.text, terms, max_chars_per_hit)}"
            for n, (s, d) in enumerate(hits[:k], start=1)
        )

    return search_docs


def _index(folder: Path, extensions: tuple[str, ...]) -> list[_Doc]:
    real_folder = os.path.realpath(folder)
    docs = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if not name.lower().endswith(extensions):
                continue
            real = os.path.realpath(full)
            if os.path.commonpath([real_folder, real]) != real_folder:
                continue
            if not os.path.isfile(real) or os.path.getsize(real) > _MAX_DOC_BYTES:
                continue
            text = Path(real).read_text(encoding="utf-8", errors="replace")
            tokens = _WORD_RE.findall(text.lower())
            rel = Path(full).relative_to(folder).as_posix()
            docs.append(_Doc(rel, text, Counter(tokens), len(tokens)))
    return docs


def _bm25(doc: _Doc, terms: list[str], df: Counter[str], n_docs: int, avg_len: float) -> float:
    score = 0.0
    for term in terms:
        tf = doc.terms.get(term, 0)
        if not tf:
            continue
        idf = math.log((n_docs - df[term] + 0.5) / (df[term] + 0.5) + 1.0)
        norm = tf + _K1 * (1 - _B + _B * doc.length / avg_len)
        score += idf * tf * (_K1 + 1) / norm
    return score


def _best_snippet(text: str, terms: list[str], max_chars: int) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    wanted = set(terms)

    def hits(paragraph: str) -> int:
        return sum(1 for w in _WORD_RE.findall(paragraph.lower()) if w in wanted)

    best = max(paragraphs, key=hits, default="")  # max keeps the first of equals
    return best if len(best) <= max_chars else best[:max_chars].rstrip() + " ..."


# --- registry ----------------------------------------------------------------------


def builtin_registry(
    names: Iterable[str],
    *,
    root: str | Path | None = None,
    docs: str | Path | None = None,
    extra: Iterable[Tool] = (),
) -> ToolRegistry:
    """A registry allowing exactly ``names``, from the built-ins and ``extra`` tools.

    An ``extra`` tool with a built-in's name replaces that built-in. ``read_file``
    needs ``root`` and ``search_docs`` needs ``docs``; unknown names are a ValueError.
    """
    names = list(dict.fromkeys(names))
    extra = list(extra)
    own = {t.name for t in extra}
    unknown = [n for n in names if n not in BUILTIN_TOOLS and n not in own]
    if unknown:
        known = ", ".join(sorted(set(BUILTIN_TOOLS) | own))
        raise ValueError(f"unknown tool(s) {', '.join(map(repr, unknown))}; known: {known}")
    tools = [_builtin(n, root, docs) for n in names if n in BUILTIN_TOOLS and n not in own]
    return ToolRegistry([*tools, *extra], allow=names)


def _builtin(name: str, root: str | Path | None, docs: str | Path | None) -> Tool:
    if name == "read_file":
        if root is None:
            raise ValueError("read_file needs a root folder: pass --tools-root")
        return make_read_file(root)
    if name == "search_docs":
        if docs is None:
            raise ValueError("search_docs needs a docs folder: pass --docs")
        return make_search_docs(docs)
    return calculator if name == "calculator" else clock
