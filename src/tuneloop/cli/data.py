"""``tuneloop data``: convert, validate, redact, mix, stats. One module per verb; wired here."""

from __future__ import annotations

import typer

from tuneloop.cli.data_convert import convert
from tuneloop.cli.data_mix import mix
from tuneloop.cli.data_redact import redact
from tuneloop.cli.data_stats import stats
from tuneloop.cli.data_validate import validate

data_app = typer.Typer(help="Convert, validate, redact, mix and describe datasets.", no_args_is_help=True)
data_app.command("convert")(convert)
data_app.command("validate")(validate)
data_app.command("redact")(redact)
data_app.command("mix")(mix)
data_app.command("stats")(stats)
