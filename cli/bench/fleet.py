"""`chatbot bench workers`: aggregate tokens/s of the `cpu` queue with 1 and with 2 workers on this
host, each pair splitting the cores (WORKERS_PER_HOST), under the same concurrent clients."""

import json
import logging
from dataclasses import asdict
from pathlib import Path

from cli.bench.compare import measure_system
from cli.bench.systems import Stack


async def workers_bench(max_tokens: int, requests: int, clients: int, out: Path) -> None:
    rows = []
    for workers in (1, 2):
        stack = Stack(max_tokens, workers=workers)
        try:
            (stats,) = await measure_system(stack, [clients], requests)
        finally:
            await stack.close()
        rows.append({"workers": workers, **asdict(stats)})
        logging.info(
            "%d worker(s), %d clients: %.1f tokens/s aggregate, TTFT p50 %.0f ms",
            workers, clients, stats.aggregate_tokens_per_s, stats.ttft_p50_ms,
        )  # fmt: skip
    out.write_text(json.dumps({"max_tokens": max_tokens, "rows": rows}, indent=2) + "\n")
