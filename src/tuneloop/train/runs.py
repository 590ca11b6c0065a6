"""Run folders: ``runs/<name>/`` with config, manifest, metrics, plots, checkpoints, final weights.

``status.json`` says whether a run is running, failed (with the reason) or completed,
so a folder is never silently half-made.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = ("tuneloop", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "tokenizers")


class RunDirError(ValueError):
    """The run folder cannot be used as asked (exists, missing, not a run)."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def git_state(cwd: str | Path = ".") -> dict[str, Any]:
    """Commit and dirty flag of the git checkout at ``cwd`` (None outside git)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=10)  # fmt: skip
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)  # fmt: skip
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def hardware() -> dict[str, Any]:
    import psutil
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "torch_threads": torch.get_num_threads(),
        "cuda": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    }
    return info


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for pkg in PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def build_manifest(config, data_files: list[Path], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything needed to reproduce a run: code, packages, data hashes, seeds, hardware."""
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": sys.argv,
        "git": git_state(),
        "packages": package_versions(),
        "hardware": hardware(),
        "seed": getattr(config, "seed", None),
        "model": getattr(config, "model", None),
        "data_files": [{"path": str(p), "sha256": sha256_file(p), "bytes": p.stat().st_size}
                       for p in data_files],  # fmt: skip
        **(extra or {}),
    }


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def read_status(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "status.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def new_run_dir(output_dir: Path, name: str) -> Path:
    """Create ``output_dir/name``; refuses to reuse a folder that holds a run."""
    run_dir = Path(output_dir) / name
    if run_dir.exists() and any(run_dir.iterdir()):
        state = read_status(run_dir).get("state", "unknown")
        raise RunDirError(
            f"run folder {run_dir} already exists ({state}); continue it with --resume "
            f"{run_dir}, or start a new run with --set name=<new-name>"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` folder (one with trainer_state.json)."""
    ckpts = [p for p in Path(run_dir).glob("checkpoint-*")
             if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]  # fmt: skip
    return max(ckpts, key=lambda p: int(p.name.split("-")[-1]), default=None)


@contextmanager
def run_status(run_dir: Path, enabled: bool = True):
    """Mark the run running; on exit completed, or failed with the reason and traceback.

    ``enabled=False`` (non-main processes of a multi-process run) only passes through.
    """
    if not enabled:
        yield
        return
    started = time.time()
    write_json(run_dir / "status.json", {"state": "running", "pid": os.getpid(), "started": started})
    try:
        yield
    except BaseException as exc:
        write_json(run_dir / "status.json", {
            "state": "failed", "reason": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(), "started": started, "ended": time.time(),
        })  # fmt: skip
        raise
    write_json(run_dir / "status.json",
               {"state": "completed", "started": started, "ended": time.time()})  # fmt: skip
