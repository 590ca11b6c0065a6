"""Tools and tool-call text shared by the runtime, tracing and mining tests."""

from __future__ import annotations

import json

from tuneloop.runtime.tools import tool


def call(name: str, **arguments) -> str:
    """A Hermes ``<tool_call>`` block, as a model would write it."""
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: first
        b: second
    """
    return a + b


@tool
def explode(x: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom on {x}")
