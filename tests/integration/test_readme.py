"""Every command and snippet the README shows runs as shown (contract test)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _tuneloop_commands() -> list[str]:
    lines = [line.strip() for block in _blocks("bash") for line in block.splitlines()]
    return [line for line in lines if line.startswith(".venv/bin/tuneloop ")]


def test_readme_has_the_two_commands():
    bash = "\n".join(_blocks("bash"))
    assert "make demo" in bash and "make test" in bash
    assert "make test" in (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()


@pytest.mark.parametrize("command", _tuneloop_commands())
def test_readme_cli_command_runs(command, default_model_dir):
    args = shlex.split(command)[1:]
    result = subprocess.run(
        [sys.executable, "-m", "tuneloop.cli", *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.parametrize("snippet", _blocks("python"))
def test_readme_python_snippet_runs(snippet, default_model_dir):
    result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
