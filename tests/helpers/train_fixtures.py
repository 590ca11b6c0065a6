"""Small on-disk training setups for recipe and system tests (tiny model, real CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

TOPICS = ["apples", "rivers", "violins", "glaciers", "compilers", "tulips", "satellites", "owls",
          "bridges", "volcanoes", "pianos", "comets", "deserts", "lanterns", "harbors", "meteors"]  # fmt: skip


def write_conversations(path: Path, n: int) -> Path:
    """``n`` distinct short conversations (varied lengths) as Conversation JSONL."""
    lines = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        extra = " Please keep it short." * (i % 3)
        lines.append({"messages": [
            {"role": "user", "content": f"Tell me fact number {i} about {topic}.{extra}"},
            {"role": "assistant", "content": f"Fact {i}: {topic} are interesting in {i % 7 + 1} ways."},
        ]})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def write_config(path: Path, **values) -> Path:
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def tuneloop(*args: str, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess."""
    return subprocess.run([sys.executable, "-m", "tuneloop.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)  # fmt: skip


def tuneloop_popen(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tuneloop.cli", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]


def train_losses(run_dir: Path) -> list[float]:
    return [m["loss"] for m in metrics(run_dir) if "loss" in m]
