"""Batch jobs from the command line: submit a JSON or JSONL file, watch a progress bar, get the results.

    chatbot batch submit dialogues.jsonl --api http://127.0.0.1:8000 --out results.jsonl

Talks to the API over HTTP only (POST /batches, GET /batches/{id}, .../results, .../cancel).
Interrupting `submit` leaves the batch running; `results ID` fetches it later.
"""

import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(help="Batch jobs: submit a file of character dialogue jobs, follow it, fetch the results.")
console = Console(stderr=True)

CONTENT_TYPES = {
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".ndjson": "application/x-ndjson",
}
FINISHED_STATES = ("completed", "cancelled")

ApiUrl = Annotated[str, typer.Option("--api", envvar="CHATBOT_API_URL", help="the service's base URL")]
ApiKey = Annotated[
    str, typer.Option("--key", envvar="CHATBOT_API_KEY", help="your API key: the batch is yours")
]
BatchId = Annotated[str, typer.Argument(help="the batch id that `submit` printed")]
Out = Annotated[Path, typer.Option("--out", "-o", help="where to write the results (JSONL)")]


def _client(api: str, key: str) -> httpx.Client:
    if not key:
        console.print("[red]an API key is needed:[/] --key or CHATBOT_API_KEY")
        raise typer.Exit(2)
    return httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def _checked(response: httpx.Response) -> httpx.Response:
    """The response if it succeeded; else the service's error message, and exit 1."""
    if response.is_success:
        return response
    try:
        error = response.json()["error"]
        message = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        message = response.text[:500]
    console.print(
        f"[red]{response.request.method} {response.request.url.path} failed ({response.status_code})[/] {message}"
    )
    raise typer.Exit(1)


def _follow(client: httpx.Client, batch_id: str, poll_s: float) -> dict:
    """Poll the batch's progress until it is finished, drawing a progress bar."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"batch {batch_id}", total=None)
        while True:
            progress = _checked(client.get(f"/batches/{batch_id}")).json()
            counts = progress["counts"]
            done = progress["total"] - counts["pending"] - counts["running"]
            bar.update(
                task,
                total=progress["total"],
                completed=done,
                description=f"batch {batch_id} {progress['state']}",
            )
            if progress["state"] in FINISHED_STATES and not counts["running"]:
                return progress
            time.sleep(poll_s)


def _write_results(client: httpx.Client, batch_id: str, out: Path) -> int:
    lines = 0
    with client.stream("GET", f"/batches/{batch_id}/results") as response:
        if not response.is_success:
            response.read()
            _checked(response)
        with out.open("w", encoding="utf-8") as handle:
            for line in response.iter_lines():
                if line:
                    handle.write(line + "\n")
                    lines += 1
    return lines


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help=".json or .jsonl")],
    api: ApiUrl = "http://127.0.0.1:8000",
    out: Out = Path("results.jsonl"),
    key: ApiKey = "",
    poll_s: Annotated[float, typer.Option(min=0.1, help="seconds between progress checks")] = 1.0,
) -> None:
    """Submit FILE as a batch, show its progress, and write every item's result to --out."""
    content_type = CONTENT_TYPES.get(file.suffix.lower())
    if content_type is None:
        console.print(f"[red]{file.name}: expected a .json, .jsonl or .ndjson file[/]")
        raise typer.Exit(2)
    with _client(api, key) as client:
        body = file.read_bytes()
        batch = _checked(client.post("/batches", content=body, headers={"Content-Type": content_type})).json()
        console.print(f"batch {batch['id']}: {batch['total']} items submitted")
        progress = _follow(client, batch["id"], poll_s)
        written = _write_results(client, batch["id"], out)
    console.print(
        f"batch {batch['id']} {progress['state']}: {progress['counts']}; {written} results in {out}"
    )


@app.command()
def status(batch_id: BatchId, api: ApiUrl = "http://127.0.0.1:8000", key: ApiKey = "") -> None:
    """Print a batch's progress (JSON)."""
    with _client(api, key) as client:
        typer.echo(_checked(client.get(f"/batches/{batch_id}")).text)


@app.command()
def results(
    batch_id: BatchId,
    api: ApiUrl = "http://127.0.0.1:8000",
    out: Out = Path("results.jsonl"),
    key: ApiKey = "",
) -> None:
    """Write a batch's results (every item, whatever its state) to --out."""
    with _client(api, key) as client:
        written = _write_results(client, batch_id, out)
    console.print(f"{written} results in {out}")


@app.command()
def cancel(batch_id: BatchId, api: ApiUrl = "http://127.0.0.1:8000", key: ApiKey = "") -> None:
    """Cancel a batch: its pending items never run."""
    with _client(api, key) as client:
        typer.echo(_checked(client.post(f"/batches/{batch_id}/cancel")).text)
