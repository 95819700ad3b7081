"""Prometheus metrics of a model runtime: its engine's sequences, prompt reuse, load time, device
memory. Served by the worker process that holds the model (workers/metrics.py)."""

import sys
from collections import Counter as Tally

from prometheus_client import Counter, Gauge, Histogram

from runtimes.fair_share import Share

PROMPT_TOKENS = Counter("chatbot_worker_prompt_tokens_total", "Prompt tokens of started sequences", ["model"])
PROMPT_TOKENS_REUSED = Counter(
    "chatbot_worker_prompt_tokens_reused_total",
    "Prompt tokens found in the KV cache (prefix reuse), not prefilled; hit rate = this / prompt_tokens",
    ["model"],
)
PROMPTS_PER_PASS = Histogram(
    "chatbot_worker_prompts_per_pass",
    "Prompts whose prefill ended in one forward pass (their first tokens came together): clients who"
    " sent at once share a pass when they reach the engine together",
    ["model"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32),
)
ACTIVE_SEQUENCES = Gauge(
    "chatbot_worker_active_sequences",
    "Sequences in the engine's slots now (prefilling or decoding)",
    ["model"],
)
SHARE_SEQUENCES = Gauge(
    "chatbot_worker_share_sequences",
    "Sequences of one key (a batch: batch:<id>) in the engine, holding a slot (running) or waiting for one",
    ["model", "key", "state"],
)
PREEMPTIONS = Counter(
    "chatbot_worker_preemptions_total",
    "Sequences that gave their slot up to another key's (fair sharing) and paused",
    ["model"],
)
MODEL_LOAD_SECONDS = Gauge("chatbot_worker_model_load_seconds", "How long the model took to load", ["model"])
DEVICE_MEMORY_BYTES = Gauge(
    "chatbot_worker_device_memory_bytes", "GPU memory allocated by this process", ["device"]
)


def record_device_memory() -> None:
    """Only where a CUDA device is in use; the CPU has nothing to report here."""
    torch = sys.modules.get("torch")  # imported by the transformers runtime, never just for this
    if torch is not None and torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            DEVICE_MEMORY_BYTES.labels(f"cuda:{index}").set(torch.cuda.memory_allocated(index))


class ShareGauges:
    """The per-key gauges of one engine: set from what it holds at each step, a key's series removed
    once it holds nothing (keys come and go; their series should not pile up)."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._shown: dict[tuple[str, str], int] = {}

    def update(self, running: list[Share], waiting: list[Share]) -> None:
        counts = Tally((share.key, "running") for share in running)
        counts.update((share.key, "waiting") for share in waiting)
        for key, state in set(self._shown) - set(counts):
            SHARE_SEQUENCES.remove(self._model, key, state)
        for (key, state), count in counts.items():
            if self._shown.get((key, state)) != count:
                SHARE_SEQUENCES.labels(self._model, key, state).set(count)
        self._shown = dict(counts)
