"""`chatbot bench`: the benchmark and the relay load test.

Each command imports its measuring module when it runs: they need the `bench` extra (aiohttp) and the
model stack, which the rest of the command line does not.
"""

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

RESULTS = Path(__file__).parent / "results"

app = typer.Typer(help="Benchmarks: this stack against llama.cpp alone and its server; the relay under load.")


def _log_progress() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def compare(
    max_tokens: int = 64,
    requests: Annotated[int, typer.Option(help="requests per system and client count")] = 8,
    clients: Annotated[int, typer.Option(help="N, the concurrent clients of the second round")] = 4,
    out: Path = RESULTS,
) -> None:
    """Time llama-cpp-python in-process, this stack over HTTP/SSE and `python -m llama_cpp.server`,
    with 1 and N concurrent clients; print the figures and ratios, write results.json and results.png."""
    from cli.bench.compare import compare as run_compare

    _log_progress()
    asyncio.run(run_compare(max_tokens, requests, clients, out))


@app.command(name="relay-load")
def relay_load(
    streams: Annotated[
        list[int] | None, typer.Argument(help="concurrent streams, a round each (default: 100 300 1000)")
    ] = None,
    tokens: Annotated[int, typer.Option(help="tokens per stream (20 tokens/s each)")] = 100,
    ramp: Annotated[float, typer.Option(help="seconds over which the streams open")] = 5.0,
    out: Path = RESULTS / "relay_load.json",
) -> None:
    """Load the relay alone with a synthetic model: streams held, dropped, the delay added, CPU per token."""
    from cli.bench.relay_load import relay_load as run_relay_load

    _log_progress()
    run_relay_load(streams or [100, 300, 1000], tokens, ramp, out)
