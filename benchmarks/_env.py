"""What every benchmark records about the machine it ran on (shared by the scripts).

Scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path``.
"""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def environment(threads: int, packages: tuple[str, ...]) -> dict[str, Any]:
    """Python, platform, CPU, torch threads, load average and the versions of ``packages``."""
    import torch

    versions: dict[str, str | None] = {}
    for pkg in ("tuneloop", "torch", "transformers", *packages):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu": cpu_name(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "threads_requested": threads,
            "loadavg_before": os.getloadavg(), "versions": versions}  # fmt: skip
