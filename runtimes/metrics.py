"""Prometheus metrics of a model runtime: its engine's sequences, prompt reuse, load time, device
memory. Served by the worker process that holds the model (workers/metrics.py)."""

import sys

from prometheus_client import Counter, Gauge

PROMPT_TOKENS = Counter("chatbot_worker_prompt_tokens_total", "Prompt tokens of started sequences", ["model"])
PROMPT_TOKENS_REUSED = Counter(
    "chatbot_worker_prompt_tokens_reused_total",
    "Prompt tokens found in the KV cache (prefix reuse), not prefilled; hit rate = this / prompt_tokens",
    ["model"],
)
ACTIVE_SEQUENCES = Gauge(
    "chatbot_worker_active_sequences",
    "Sequences in the engine's slots now (prefilling or decoding)",
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
