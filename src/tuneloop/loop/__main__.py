"""``python -m tuneloop.loop STAGE LOOP_DIR``: one stage of a loop, in this process.

The loop runner starts each stage this way (its own process, its own peak memory);
run it by hand to debug one stage. A failure prints one line; the traceback goes to
``error.log`` in the stage's folder.
"""

import sys
import traceback
from pathlib import Path

from tuneloop.loop.runner import run_stage_here
from tuneloop.loop.stages import STAGES

if len(sys.argv) != 3 or sys.argv[1] not in {s.name for s in STAGES}:
    sys.exit(f"usage: python -m tuneloop.loop {{{','.join(s.name for s in STAGES)}}} LOOP_DIR")
name, loop_dir = sys.argv[1], Path(sys.argv[2])
try:
    run_stage_here(name, loop_dir)
except Exception as exc:  # noqa: BLE001  (reported as one line, kept in full in error.log)
    folder = loop_dir / next(s.folder for s in STAGES if s.name == name)
    if folder.is_dir():
        (folder / "error.log").write_text(traceback.format_exc())
    print(
        f"error: stage {name}: {type(exc).__name__}: {exc} (traceback: {folder / 'error.log'})",
        file=sys.stderr,
    )
    sys.exit(1)
