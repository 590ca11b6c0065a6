"""Every `tuneloop ...` command line shown in README.md and docs/*.md names a real verb
and only options that verb has (contract test; runs no model). The README's runnable
commands also *run* in tests/integration/test_readme.py; the docs' runnable ones (those
written as `.venv/bin/tuneloop ...`) run there with --dry-run."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from tuneloop.cli import app

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _command_lines() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
            lines = block.splitlines()
            i = 0
            while i < len(lines):
                line = lines[i].strip()
                while line.endswith("\\") and i + 1 < len(lines):  # continued lines
                    i += 1
                    line = line[:-1] + " " + lines[i].strip()
                i += 1
                line = line.split("  #")[0].strip()
                for prefix in (".venv/bin/tuneloop ", "tuneloop "):
                    if line.startswith(prefix):
                        found.append((f"{page.relative_to(ROOT)}", line[len(prefix) :]))
    return found


COMMANDS = _command_lines()


def _is_group(command) -> bool:
    return isinstance(getattr(command, "commands", None), dict)  # typer vendors its own click


def _resolve(words: list[str]):
    command = typer.main.get_command(app)
    path = []
    while _is_group(command) and words and words[0] in command.commands:
        path.append(words[0])
        command = command.commands[words.pop(0)]
    return command, path


def test_the_docs_show_commands():
    assert len(COMMANDS) > 40
    assert any(c.startswith("loop ") for _, c in COMMANDS)


@pytest.mark.parametrize(("page", "line"), COMMANDS, ids=[f"{p}:{c[:40]}" for p, c in COMMANDS])
def test_documented_command_names_a_real_verb_and_real_options(page, line):
    try:
        words = shlex.split(line.replace("[", " ").replace("]", " ").replace("|", " "))
    except ValueError:
        words = line.split()
    words = [w for w in words if w not in ("&", "...")]
    command, path = _resolve(list(words))
    assert path, f"{page}: `tuneloop {line}` names no tuneloop verb"
    assert not _is_group(command), f"{page}: `tuneloop {line}` stops at a group ({' '.join(path)})"
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for word in words:
        if word.startswith("--"):
            option = word.split("=", 1)[0]
            assert option in known, f"{page}: `tuneloop {' '.join(path)}` has no option {option}"
