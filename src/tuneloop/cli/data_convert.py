"""``tuneloop data convert``: a dataset in a common format -> canonical JSONL records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tuneloop.cli._common import fail, out
from tuneloop.data.formats import READERS, convert_file
from tuneloop.data.io import DataError


def convert(
    input: Annotated[
        Path, typer.Argument(help="JSONL file, or a .json file holding a list of rows.")
    ],
    from_: Annotated[
        str,
        typer.Option(
            "--from", help=f"Input format: auto (from the first row's keys), {', '.join(READERS)}."
        ),
    ] = "auto",
    output: Annotated[Path, typer.Option("-o", "--output", help="Canonical JSONL to write.")] = ...,  # type: ignore[assignment]
) -> None:
    """Convert messages / Alpaca / ShareGPT / Hermes / xLAM / preference / KTO rows to the
    canonical records. Nothing is written when any row is bad; the error names its line."""
    try:
        result = convert_file(input, output, from_)
    except DataError as exc:
        fail(str(exc))
    out.print(
        f"converted {result.count} rows (format {result.format}) -> {output}",
        highlight=False, markup=False, soft_wrap=True,
    )  # fmt: skip
