"""Every command and snippet the README shows runs as shown (contract test)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _tuneloop_commands(lang: str = "bash") -> list[str]:
    lines = [line.strip() for block in _blocks(lang) for line in block.splitlines()]
    return [line for line in lines if line.startswith(".venv/bin/tuneloop ")]


def test_readme_has_the_two_commands():
    bash = "\n".join(_blocks("bash"))
    assert "make demo" in bash and "make test" in bash
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("command", _tuneloop_commands())
def test_readme_cli_command_runs(command, default_model_dir):
    """As a user types it: through a shell (globs expand), from the repository root."""
    line = command.replace(".venv/bin/tuneloop", f"{shlex.quote(sys.executable)} -m tuneloop.cli", 1)
    result = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()


@pytest.mark.parametrize("snippet", _blocks("python"))
def test_readme_python_snippet_runs(snippet, default_model_dir):
    result = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.parametrize("command", [c for c in _tuneloop_commands("text") if " train " in c or " loop " in c])
def test_readme_training_command_parses_with_dry_run(command, default_model_dir):
    """The long-running training commands shown: config, overrides and data all resolve."""
    line = command.replace(".venv/bin/tuneloop", f"{shlex.quote(sys.executable)} -m tuneloop.cli", 1)
    result = subprocess.run(["bash", "-c", line + " --dry-run"], capture_output=True, text=True,
                            timeout=600, cwd=ROOT)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resolved config" in result.stdout
