"""``tuneloop env``: versions and platform, for bug reports."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from rich.table import Table

from tuneloop.cli._common import out


def env() -> None:
    """Versions of Python, torch and the HF stack, and the platform (for bug reports)."""
    table = Table(show_header=False, box=None)
    table.add_row("python", sys.version.split()[0])
    table.add_row("platform", platform.platform())
    table.add_row("machine", f"{platform.machine()}, {_cpu_count()} CPUs")
    for pkg in ("tuneloop", "torch", "transformers", "peft", "trl", "accelerate", "datasets",
                "tokenizers", "safetensors", "gguf", "pydantic"):  # fmt: skip
        try:
            table.add_row(pkg, version(pkg))
        except PackageNotFoundError:
            table.add_row(pkg, "not installed")
    try:
        import torch

        cuda = torch.cuda.is_available()
        table.add_row("cuda", torch.cuda.get_device_name(0) if cuda else "not available")
    except ImportError:
        pass
    from tuneloop.models.home import tuneloop_home

    table.add_row("TUNELOOP_HOME", str(tuneloop_home()))
    out.print(table)


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
