"""`chatbot bench compare`: the same GGUF, prompt and greedy parameters through (a) llama-cpp-python
in-process, (b) our whole stack over HTTP/SSE, (c) `python -m llama_cpp.server` and (d) llama.cpp's
`llama-server --parallel N`, and (e) our stack with flash attention and weight repacking off, a round per
client count, one system at a time; then, for (b) and (d),
the multi-turn round (cli/bench/multi_turn.py). Prints the figures and the ratios; writes JSON and a PNG."""

import logging
import os
import platform
from functools import partial
from pathlib import Path

from cli.bench import multi_turn, report
from cli.bench.environment import cpu_description
from cli.bench.measure import MultiTurnStats, RunStats, run, run_serialized, summarize_turns, warm_up
from cli.bench.systems import InProcess, LlamaServer, PeerServer, PlainKernelsStack, Stack

SYSTEMS = "abcde"


def ran_with(system) -> dict:
    """A system's threading knobs and threads, for the results (each peer runs with its own defaults)."""
    return {"environment": system.environment, "threads": system.threads}


async def measure_system(system, client_counts: list[int], requests: int) -> list[RunStats]:
    await warm_up(system.stream_one)
    results = []
    for clients in client_counts:
        results.append(await run(system.name, system.stream_one, clients, max(requests, clients)))
        logging.info("%s, %d client(s): done", system.name, clients)
    return results


async def measure_turns(name: str, new_conversation, characters, renderer: InProcess) -> MultiTurnStats:
    traces = await multi_turn.run_conversations(new_conversation, characters)
    logging.info("%s, multi-turn round: done", name)
    return summarize_turns(name, multi_turn.card_tokens(renderer, characters[0]), traces)


async def compare(
    max_tokens: int, requests: int, client_counts: list[int], out: Path, systems: str, card_tokens: int
) -> None:
    """`systems`: the letters of those to run; `card_tokens`: the multi-turn round's card size (0: none)."""
    results: list[RunStats] = []
    turns: list[MultiTurnStats] = []
    renderer = InProcess(max_tokens)  # renders the servers' prompts; never generates
    prompts = {
        number: renderer.rendered_prompt(number) for number in range(-2, max(requests, *client_counts))
    }
    characters = multi_turn.characters(renderer, card_tokens) if card_tokens else []
    runs: dict[str, dict] = {}

    if "a" in systems:
        model_alone = InProcess(max_tokens)
        runs[model_alone.name] = ran_with(model_alone)
        model_alone.generate(-1)  # warm up
        for count in client_counts:
            results.append(run_serialized(InProcess.name, model_alone.generate, count, max(requests, count)))
        await model_alone.close()

    async def measure_server(server) -> None:
        peer = server(max_tokens, prompts)
        runs[peer.name] = ran_with(peer)
        try:
            results.extend(await measure_system(peer, client_counts, requests))
            if characters and server is LlamaServer:
                conversation = partial(multi_turn.server_conversation, peer, renderer)
                turns.append(await measure_turns(server.name, conversation, characters, renderer))
        finally:
            await peer.close()

    if "c" in systems:
        await measure_server(PeerServer)
    # (b), (e) and (d) one after the other: on a shared host their ratios then span the least time.
    if "b" in systems:
        stack = Stack(max_tokens)
        runs[stack.name] = ran_with(stack)
        try:
            results += await measure_system(stack, client_counts, requests)
            if characters:
                conversation = partial(multi_turn.stack_conversation, stack, max_tokens)
                turns.append(await measure_turns(Stack.name, conversation, characters, renderer))
        finally:
            await stack.close()
    if "e" in systems:
        plain = PlainKernelsStack(max_tokens)
        runs[plain.name] = ran_with(plain)
        try:
            results += await measure_system(plain, client_counts, requests)
        finally:
            await plain.close()
    if "d" in systems:
        await measure_server(LlamaServer)
    await renderer.close()

    meta = {"max_tokens": max_tokens, "requests": requests, "clients": client_counts, "systems": systems,
            "card_tokens": card_tokens,
            "machine": platform.machine(), "cpu": cpu_description(), "load_average": os.getloadavg(),
            "systems_ran_with": runs, "model": "gemma3-270m-q4_k_m"}  # fmt: skip
    pairs = {
        "(b)/(a) stack vs model alone": (Stack.name, InProcess.name),
        "(b)/(c) stack vs llama_cpp.server": (Stack.name, PeerServer.name),
        "(b)/(d) stack vs llama-server": (Stack.name, LlamaServer.name),
        "(e)/(d) stack, FA and repack off, vs llama-server": (PlainKernelsStack.name, LlamaServer.name),
    }
    ours = [Stack.name, PlainKernelsStack.name]
    report.write(results, out, meta, ours, LlamaServer.name, pairs, multi_turn=turns)
