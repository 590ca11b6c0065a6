"""``tuneloop <verb>``: thin. Each verb group lives in its own module; this one wires them."""

from __future__ import annotations

import typer

from tuneloop.cli.annotate import annotate_app
from tuneloop.cli.chat import chat
from tuneloop.cli.data import data_app
from tuneloop.cli.env import env
from tuneloop.cli.eval import eval_cmd
from tuneloop.cli.export import export
from tuneloop.cli.gate import gate
from tuneloop.cli.loop import loop
from tuneloop.cli.merge import merge
from tuneloop.cli.mine import mine
from tuneloop.cli.models import models_app
from tuneloop.cli.reward import reward_app
from tuneloop.cli.sample import sample_app
from tuneloop.cli.serve import serve
from tuneloop.cli.traces import traces_app
from tuneloop.cli.train import bare_resume_argv, train_app

app = typer.Typer(
    help="tuneloop: turn an open-weights model into a reliable assistant, and keep improving it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
app.add_typer(traces_app, name="traces")
app.add_typer(annotate_app, name="annotate")
app.add_typer(reward_app, name="reward")
app.add_typer(sample_app, name="sample")
app.command()(chat)
app.command()(env)
app.command()(merge)
app.command()(export)
app.command()(mine)
app.command(name="eval")(eval_cmd)
app.command()(gate)
app.command()(serve)
app.command()(loop)


def main() -> None:
    """Console-script entry point."""
    import sys

    app(args=bare_resume_argv(sys.argv[1:]), prog_name="tuneloop")
