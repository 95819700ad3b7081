"""The `chatbot` command: one typer app, a subcommand group per concern.

Each group lives in its own module and is added here.
"""

import typer

from cli import accounts, batch, datasets, finetune
from cli.bench import commands as bench

app = typer.Typer(help="Command-line tools for the ChatBot AI service.", no_args_is_help=True)
app.add_typer(accounts.users, name="users")
app.add_typer(accounts.keys, name="keys")
app.add_typer(batch.app, name="batch")
app.add_typer(datasets.app, name="datasets")
app.add_typer(finetune.app, name="finetune")
app.add_typer(bench.app, name="bench")
