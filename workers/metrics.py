"""Prometheus metrics of a worker process, served on its own port (`--metrics-port`): its jobs here,
its model runtime's in runtimes/metrics.py (one registry, one port)."""

import logging

from prometheus_client import Counter, Histogram, start_http_server

log = logging.getLogger(__name__)

TOKENS = Counter("chatbot_worker_tokens_total", "Tokens generated", ["model"])
JOBS = Counter("chatbot_worker_jobs_total", "Chat jobs by how they ended", ["model", "outcome"])
POISON_ENDS = Counter(
    "chatbot_worker_poison_ends_total",
    "Jobs ended with worker_lost because they had lost JOB_MAX_ATTEMPTS workers (poison input?)",
    ["model"],
)
TAKEOVERS = Counter(
    "chatbot_worker_takeovers_total",
    "Jobs this worker took over from a lost one, continuing their reply",
    ["model"],
)
GENERATION_SECONDS = Histogram(
    "chatbot_worker_generation_seconds", "Time a job spent generating", ["model"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)  # fmt: skip


def serve_metrics(port: int, host: str) -> None:
    if port:
        start_http_server(port, addr=host)
        log.info("worker metrics on http://%s:%d/metrics", host, port)
