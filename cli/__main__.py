"""`python -m cli`: the service's command line (batch jobs: `python -m cli batch --help`)."""

import typer

from cli import batch

app = typer.Typer(help="Command-line tools for the ChatBot AI service.", no_args_is_help=True)
app.add_typer(batch.app, name="batch")

if __name__ == "__main__":
    app(prog_name="python -m cli")
