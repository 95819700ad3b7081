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

app = typer.Typer(
    help="Benchmarks: this stack against llama.cpp or transformers alone and their servers; the relay under load."
)


def _log_progress() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def compare(
    max_tokens: int = 64,
    requests: Annotated[
        int, typer.Option(help="requests per system and round (at least one per client)")
    ] = 16,
    clients: Annotated[
        list[int] | None, typer.Option(help="concurrent clients, a round each (default: 1 4 8 16)")
    ] = None,
    systems: Annotated[
        str,
        typer.Option(
            help="which to run, by letter: a in-process, b our stack, c llama_cpp.server, d llama-server, "
            "e our stack with flash attention and weight repacking off"
        ),
    ] = "abcde",
    card_tokens: Annotated[
        int, typer.Option(help="the multi-turn round's card, in tokens (0: no multi-turn round)")
    ] = 1000,
    out: Path = RESULTS,
) -> None:
    """Time llama-cpp-python in-process, this stack over HTTP/SSE, `python -m llama_cpp.server` and
    llama.cpp's `llama-server --parallel N` (built on first use), a round per client count; print the
    figures and ratios, write results.json and results.png. Then a multi-turn round for our stack and
    llama-server: conversations with a ~1,000-token card, turn by turn (the prefix cache's effect on TTFT)."""
    from runtimes.openmp import spin_briefly

    spin_briefly()  # as our worker does, before the in-process system loads llama.cpp
    from cli.bench.compare import compare as run_compare

    _log_progress()
    asyncio.run(run_compare(max_tokens, requests, clients or [1, 4, 8, 16], out, systems, card_tokens))


@app.command()
def workers(
    max_tokens: int = 64,
    requests: Annotated[int, typer.Option(help="requests per round")] = 16,
    clients: Annotated[int, typer.Option(help="concurrent clients")] = 4,
    out: Path = RESULTS / "workers.json",
) -> None:
    """Aggregate tokens/s of the `cpu` queue with 1 and with 2 workers on this host (cores split)."""
    from cli.bench.fleet import workers_bench

    _log_progress()
    asyncio.run(workers_bench(max_tokens, requests, clients, out))


@app.command()
def transformers(
    max_tokens: int = 32,
    requests: Annotated[
        int, typer.Option(help="requests per system and round (at least one per client)")
    ] = 16,
    clients: Annotated[
        list[int] | None, typer.Option(help="concurrent clients, a round each (default: 1 4 8)")
    ] = None,
    systems: Annotated[
        str,
        typer.Option(
            help="which to run, by letter: f transformers generate() in-process, g our stack (model: llama), "
            "h transformers serve --continuous-batching"
        ),
    ] = "fgh",
    out: Path = RESULTS / "transformers",
) -> None:
    """The `llama` model (transformers runtime): generate() alone in-process, our stack's engine over
    /v1/chat/completions, and `transformers serve`, a round per client count; our stack's scaling from 1
    client; results.json, results.md and results.png under --out."""
    from cli.bench.transformers_round import transformers_bench

    _log_progress()
    asyncio.run(transformers_bench(max_tokens, requests, clients or [1, 4, 8], out, systems))


@app.command()
def seam(
    streams: Annotated[int, typer.Option(help="concurrent greedy streams")] = 4,
    tokens: Annotated[int, typer.Option(help="max_tokens of each")] = 64,
    out: Path = RESULTS / "seam.json",
) -> None:
    """A worker killed under running streams: the seam each waits (last token before to first after)
    with one worker (restarted by the launcher) and with two (the survivor takes the jobs over)."""
    from cli.bench.seam import seam_bench

    _log_progress()
    seam_bench(streams, tokens, out)


@app.command()
def preemption(
    tokens: Annotated[int, typer.Option(help="max_tokens of each of A's eight streams")] = 200,
    gap: Annotated[float, typer.Option(help="seconds between B's chats")] = 2.0,
    rounds: Annotated[int, typer.Option(help="pairs of rounds (alone, shared)")] = 2,
    out: Path = RESULTS / "preemption.json",
) -> None:
    """What fair sharing costs: one key's eight streams alone and while another key's short chats
    preempt them, in-process on the real model."""
    from cli.bench.preemption import preemption_bench

    _log_progress()
    preemption_bench(tokens, gap, rounds, out)


@app.command(name="relay-load")
def relay_load(
    streams: Annotated[
        list[int] | None, typer.Argument(help="concurrent streams, a round each (default: 100 300 1000)")
    ] = None,
    tokens: Annotated[int, typer.Option(help="tokens per stream (20 tokens/s each)")] = 100,
    ramp: Annotated[float, typer.Option(help="seconds over which the streams open")] = 5.0,
    api_processes: Annotated[
        list[int] | None, typer.Option(help="API processes behind the port, a run each (default: 1 2)")
    ] = None,
    out: Path = RESULTS / "relay_load.json",
) -> None:
    """Load the relay alone with a synthetic model: streams held, dropped, the delay added, CPU per token;
    with 1 and N API processes, what each received and its CPU per relayed token, side by side."""
    from cli.bench.relay_load import relay_load as run_relay_load

    _log_progress()
    run_relay_load(streams or [100, 300, 1000], tokens, ramp, out, api_processes or [1, 2])
