"""`chatbot datasets`: import, validate, split, describe and export QA datasets."""

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from cli.shared import connect, database_options, fail
from mongo import datasets as store
from qa_datasets import service
from qa_datasets.describe import length_plot_png
from qa_datasets.rows import ColumnMapping, DatasetFormatError, format_of, read_rows
from qa_datasets.validation import validate
from settings import get_settings

app = typer.Typer(
    help="QA datasets: import, validate, split, describe and export them.",
    no_args_is_help=True,
    callback=database_options,
)

InstructionColumn = Annotated[str, typer.Option(help="column holding the question/instruction")]
OutputColumn = Annotated[str, typer.Option(help="column holding the answer/output")]


@app.command(name="validate")
def validate_file(
    file: Path, instruction_column: InstructionColumn = "instruction", output_column: OutputColumn = "output"
) -> None:
    """Report empty, duplicate and over-length rows by row number (exit 1 if any)."""
    try:
        rows = read_rows(file.read_bytes(), format_of(file), ColumnMapping(instruction_column, output_column))
    except DatasetFormatError as exc:
        fail(str(exc))
    problems = validate(rows, get_settings().dataset_max_chars)
    for problem in problems:
        typer.echo(f"row {problem.row}: {problem.kind}: {problem.detail}")
    typer.echo(f"{len(rows)} rows, {len(problems)} problem(s)")
    raise typer.Exit(1 if problems else 0)


@app.command(name="import")
def import_file(
    file: Path,
    name: Annotated[str, typer.Option(help="dataset name")],
    instruction_column: InstructionColumn = "instruction",
    output_column: OutputColumn = "output",
    drop_invalid: Annotated[bool, typer.Option(help="import the good rows, drop the bad ones")] = False,
    eval_fraction: float = 0.1,
    seed: int = 0,
) -> None:
    """Import a JSONL, CSV or Parquet file and split it into train/eval."""
    connect()
    try:
        report = service.import_dataset(
            name, file.read_bytes(), format_of(file), ColumnMapping(instruction_column, output_column),
            get_settings().dataset_max_chars, drop_invalid, eval_fraction, seed,
        )  # fmt: skip
    except (DatasetFormatError, service.DatasetRejected, ValueError) as exc:
        fail(str(exc))
    typer.echo(json.dumps(asdict(report), ensure_ascii=False, indent=2))


@app.command()
def split(name: str, eval_fraction: float = 0.1, seed: int = 0) -> None:
    """Split again, reproducibly: the same fraction and seed give the same split."""
    connect()
    typer.echo(json.dumps(service.resplit(name, eval_fraction, seed)))


@app.command(name="describe")
def describe_dataset(
    name: str, plot: Annotated[Path | None, typer.Option(help="write a PNG here")] = None
) -> None:
    """Counts and length distribution (and a PNG plot)."""
    connect()
    if store.find_dataset(name) is None:
        fail(f"no dataset named {name!r}")
    typer.echo(json.dumps(service.description(name), ensure_ascii=False, indent=2))
    if plot:
        plot.write_bytes(length_plot_png(store.dataset_rows(name), name))


@app.command(name="list")
def list_names() -> None:
    """The stored datasets."""
    connect()
    for dataset in store.list_datasets():
        typer.echo(f"{dataset.name}\t{dataset.rows} rows")


@app.command()
def export(name: str, split_name: Annotated[str | None, typer.Option("--split")] = None) -> None:
    """Write the rows as JSONL (instruction/output) to standard output."""
    connect()
    for qa in store.dataset_rows(name, split_name):
        sys.stdout.write(
            json.dumps({"instruction": qa.instruction, "output": qa.output}, ensure_ascii=False) + "\n"
        )
