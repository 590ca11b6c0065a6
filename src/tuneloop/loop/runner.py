"""Run the loop's stages in order, each in its own process, each skipped on resume when
its outputs exist and were made from the same inputs.

A stage's folder is ``loops/<name>/NN-stage/``; it is complete when its ``stage.json``
says so. ``stage.json`` holds the stage's *inputs hash* (its config keys, the files they
name, and the outputs hash of every stage it reads), its *outputs hash* (every file it
wrote), wall time, peak memory and its summary. On ``--resume`` a stage whose inputs
hash is unchanged and whose files still hash to the recorded outputs is skipped;
anything else is run again from a clean folder, and a changed output re-runs the
stages downstream of it through their inputs hash.

Each stage runs in a child process (``python -m tuneloop.loop STAGE LOOP_DIR``): peak
memory is then the child's own (``wait4``'s ``ru_maxrss``), and a stage's memory is
returned to the system before the next starts.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tuneloop.loop.config import LoopConfig
from tuneloop.loop.stages import Stage, active_stages, config_files, remove

STAGE_FILE = "stage.json"
SUMMARY_FILE = "summary.json"
_UNHASHED_SUFFIXES = (".db", ".db-wal", ".db-shm", ".db-journal")
"""SQLite files change when merely opened; their content is covered by the stage's own
JSONL listing (e.g. ``runs.jsonl``)."""


class LoopError(RuntimeError):
    """The loop cannot go on; the message says which stage and why."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def outputs_hash(folder: Path) -> str:
    """One hash over every file a stage wrote (path and content), ``stage.json`` aside."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel in (STAGE_FILE, ".lock") or path.name.endswith(_UNHASHED_SUFFIXES):
            continue
        digest.update(f"{rel}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def read_stage(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / STAGE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def inputs_hash(cfg: LoopConfig, stage: Stage, loop_dir: Path, done: dict[str, dict]) -> str:
    """What decides a stage's outputs: its config keys, their files, upstream outputs."""
    keyed = {key: cfg.model_dump(mode="json")[key] for key in stage.keys}
    files = {str(p): sha256_file(p) for p in config_files(cfg, stage)}
    upstream = {name: done[name]["outputs_hash"] for name in stage.needs if name in done}
    blob = json.dumps({"stage": stage.name, "config": keyed, "files": files, "upstream": upstream},
                      sort_keys=True, default=str)  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def _run_child(stage: Stage, loop_dir: Path) -> tuple[int, float]:
    """Run one stage in a child process; (exit code, peak RSS of the child in MiB)."""
    cmd = [sys.executable, "-m", "tuneloop.loop", stage.name, str(loop_dir)]
    proc = subprocess.Popen(cmd)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024  # Linux: kilobytes


def prepare_loop_dir(cfg: LoopConfig, resume: bool) -> Path:
    """The loop folder; refuses to reuse one that holds a loop unless resuming."""
    loop_dir = Path(cfg.output_dir) / cfg.name
    if loop_dir.exists() and any(p.name != ".lock" for p in loop_dir.iterdir()) and not resume:
        raise LoopError(f"loop folder {loop_dir} already exists; continue it with --resume, "
                        f"or start another with --set name=<new-name>")  # fmt: skip
    loop_dir.mkdir(parents=True, exist_ok=True)
    return loop_dir


def run_loop(cfg: LoopConfig, *, resume: bool = False, say: Callable[[str], None] = print,
             launch: Callable[[Stage, Path], tuple[int, float]] | None = None) -> dict[str, Any]:  # fmt: skip
    """Run (or resume) every stage; returns ``{"loop_dir", "stages": {name: stage.json}}``.

    ``launch(stage, loop_dir) -> (exit code, peak MiB)`` runs one stage (default: a
    child process); tests pass an in-process one.
    """
    launch = launch or _run_child
    loop_dir = prepare_loop_dir(cfg, resume)
    with _exclusive(loop_dir):
        # The stages read this file: written under the lock, never under a running loop.
        config = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
        (loop_dir / "config.yaml").write_text(config)
        return _run_stages(cfg, loop_dir, resume, say, launch)


@contextmanager
def _exclusive(loop_dir: Path):
    """One process per loop folder: a second one would write into the same stages."""
    with open(loop_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LoopError(f"loop folder {loop_dir} is in use by another tuneloop loop") from None
        yield


def _run_stages(cfg: LoopConfig, loop_dir: Path, resume: bool, say, launch) -> dict[str, Any]:
    done: dict[str, dict] = {}
    stages = active_stages(cfg)
    for stage in stages:
        folder = loop_dir / stage.folder
        want = inputs_hash(cfg, stage, loop_dir, done)
        record = read_stage(folder)
        if (resume and record and record.get("state") == "completed" and record.get("inputs_hash") == want
                and outputs_hash(folder) == record.get("outputs_hash")):  # fmt: skip
            say(f"[{stage.folder}] up to date, skipped")
            done[stage.name] = {**record, "skipped": True}
            continue
        remove(folder)
        folder.mkdir(parents=True)
        say(f"[{stage.folder}] running ({stages.index(stage) + 1}/{len(stages)})")
        started = time.time()
        code, peak_mib = launch(stage, loop_dir)
        wall = round(time.time() - started, 2)
        record = {"stage": stage.name, "folder": stage.folder, "inputs_hash": want, "started": started,
                  "wall_s": wall, "peak_rss_mib": round(peak_mib, 1)}  # fmt: skip
        if code != 0:
            _write_json(folder / STAGE_FILE, {**record, "state": "failed", "exit_code": code})
            raise LoopError(f"stage {stage.folder} failed (exit code {code}); fix it and run again "
                            f"with --resume: finished stages are kept")  # fmt: skip
        summary = json.loads((folder / SUMMARY_FILE).read_text())
        record.update(state="completed", summary=summary, outputs_hash=outputs_hash(folder))
        _write_json(folder / STAGE_FILE, record)
        done[stage.name] = record
        say(f"[{stage.folder}] done in {wall:.0f} s, peak {peak_mib:.0f} MiB")
    return {"loop_dir": str(loop_dir), "stages": done}


def run_stage_here(name: str, loop_dir: Path) -> None:
    """The child side: run stage ``name`` of the loop in ``loop_dir`` and write its summary."""
    from tuneloop.loop.stages import STAGES

    cfg = LoopConfig.model_validate(yaml.safe_load((loop_dir / "config.yaml").read_text()))
    stage = next(s for s in STAGES if s.name == name)
    folder = loop_dir / stage.folder
    summary = stage.run(cfg, loop_dir, folder)
    _write_json(folder / SUMMARY_FILE, summary)
