"""The runtime tour (`python -m tuneloop.demo`) on the real default model; `make demo`'s
loop is tested in test_loop_quick.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_runs_chat_tool_call_and_schema(default_model_dir):
    result = subprocess.run(
        [sys.executable, "-m", "tuneloop.demo"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "Paris" in out
    assert "calculator({'expression': '1234 * 5678'}) -> 7006652" in out
    assert "valid=True" in out
