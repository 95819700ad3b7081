"""`chatbot bench seam`: how long a stream waits when its worker dies and another takes its job over.

Greedy streams run on the `cpu` queue; once each has a few tokens, the first worker is SIGKILLed (by
its PID). A stream's seam is the time from its last token before the kill to its first after (a
stream running on a surviving worker has none). With one worker the launcher restarts it, so the
seam includes the worker's start and its model load; with two on the queue the survivor takes the
jobs over at once. Every stream must still end with `done`: a seam, never an error."""

import asyncio
import json
import logging
import signal
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from httpx_sse import aconnect_sse

from cli.bench.access import HEADERS, STACK_ENV
from cli.bench.measure import percentile
from embedded.processes import free_port
from embedded.stack import EmbeddedStack, StackConfig

QUESTION = "*I ask Rachel to tell me a long story about the sea, chapter by chapter.*"
BODY = {
    "character_name": "Rachel",
    "greeting": "*Rachel looks up from her book.* Hello!",
    "context": "Rachel is a friendly librarian.",
    "image": "https://drive.google.com/thumbnail?id=rachel",
    "temperature": 0,
}


async def _stream(
    client: httpx.AsyncClient, index: int, tokens: int, reached: asyncio.Event, counts: list[int]
):
    """The stream's arrival times of its tokens, and its last event."""
    body = {**BODY, "input_data": f"{QUESTION} ({index})", "max_tokens": tokens}
    times, last = [], ""
    async with aconnect_sse(client, "POST", "/Lumimaid_stream", json=body) as source:
        source.response.raise_for_status()
        async for sse in source.aiter_sse():
            if sse.event == "token":
                times.append(time.perf_counter())
                counts[index] += 1
                if min(counts) >= 3:
                    reached.set()
            last = sse.event or last
    return times, last


async def _round(stack: EmbeddedStack, streams: int, tokens: int) -> dict:
    reached, counts = asyncio.Event(), [0] * streams
    async with httpx.AsyncClient(base_url=stack.api_url, headers=HEADERS, timeout=900) as client:
        tasks = [asyncio.create_task(_stream(client, i, tokens, reached, counts)) for i in range(streams)]
        await asyncio.wait_for(reached.wait(), 600)
        killed_at = time.perf_counter()
        psutil.Process(stack.processes["worker-cpu"].pid).send_signal(signal.SIGKILL)
        results = await asyncio.gather(*tasks)
    seams = []
    for times, _last in results:
        before = [t for t in times if t <= killed_at]
        after = [t for t in times if t > killed_at]
        if before and after:
            seams.append(after[0] - before[-1])
    seams.sort()
    return {
        "streams": streams,
        "ended_done": sum(last == "done" for _times, last in results),
        "seam_p50_s": round(percentile(seams, 0.5), 2) if seams else None,
        "seam_max_s": round(seams[-1], 2) if seams else None,
    }


def seam_bench(streams: int, tokens: int, out: Path) -> None:
    rows = []
    for workers in (1, 2):
        config = StackConfig(
            data_dir=Path(tempfile.mkdtemp(prefix="seam-")),
            redis_port=free_port(),
            api_port=free_port(),
            queues=["cpu"],
            extra_env={"QUEUE_MAX_DEPTH": "0", "WORKERS_PER_HOST": str(workers), **STACK_ENV},
        )
        with EmbeddedStack(config) as stack:
            if workers == 2:
                stack.start_worker("cpu", name="cpu-2")
            row = {"workers": workers, **asyncio.run(_round(stack, streams, tokens))}
        logging.info("%s", row)
        rows.append(row)
    out.write_text(json.dumps({"tokens": tokens, "rows": rows}, indent=2) + "\n")
    for row in rows:
        print(
            f"{row['workers']} worker(s): {row['ended_done']}/{row['streams']} streams done; "
            f"seam p50 {row['seam_p50_s']} s, max {row['seam_max_s']} s"
        )
