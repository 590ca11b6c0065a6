"""``tuneloop data``: convert, validate, redact, mix, stats. One module per verb; wired here."""

from __future__ import annotations

import typer

data_app = typer.Typer(help="Convert, validate, redact, mix and describe datasets.", no_args_is_help=True)
# Each verb registers itself below with one line: data_app.command("verb")(function)
