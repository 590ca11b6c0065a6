"""Where tuneloop keeps its cache: ``$TUNELOOP_HOME`` (default ``~/.cache/tuneloop``)."""

from __future__ import annotations

import os
from pathlib import Path


def tuneloop_home() -> Path:
    """The cache root; created on first use."""
    home = Path(os.environ.get("TUNELOOP_HOME") or Path.home() / ".cache" / "tuneloop")
    home.mkdir(parents=True, exist_ok=True)
    return home


def models_dir() -> Path:
    """Folder holding converted embedded models, one sub-folder per name."""
    path = tuneloop_home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def downloads_dir() -> Path:
    """Folder holding downloaded wheels, kept so a second pull needs no network."""
    path = tuneloop_home() / "downloads"
    path.mkdir(parents=True, exist_ok=True)
    return path
