"""Prometheus metrics of the API: requests by route and status, streams, time to first token,
tokens/s, queue wait, queue depth and live workers per queue, stream errors.

With several API processes behind one port (`API_WORKERS`), a scrape reaches any one of them, so each
writes its figures under PROMETHEUS_MULTIPROC_DIR and /metrics answers for all of them together
(prometheus_client's multiprocess mode): counters and histograms are summed, open streams summed over
the live processes, the queue figures (read from Redis at each scrape) are the latest. Per process:
`chatbot_relay_messages_received_total`, labelled by PID.
"""

import os
import time

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import Scope

from api.http.answered import AnsweredMiddleware
from api.http.auth import metrics_reader
from api.streams.worker_status import live_workers, queue_depth
from model_registry import queues
from schemas.events import ErrorData, JobEvent, TokenData
from settings import get_settings

REQUESTS = Counter("chatbot_http_requests_total", "HTTP requests", ["route", "method", "status"])
OPEN_STREAMS = Gauge("chatbot_open_streams", "Chat streams being relayed now", multiprocess_mode="livesum")
STREAM_ERRORS = Counter("chatbot_stream_errors_total", "Streams that ended with an error event", ["code"])
TTFT = Histogram(
    "chatbot_time_to_first_token_seconds", "From enqueue to the first token relayed",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)  # fmt: skip
QUEUE_WAIT = Histogram(
    "chatbot_queue_wait_seconds", "From enqueue to a worker starting the job",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120),
)  # fmt: skip
TOKENS_PER_SECOND = Histogram(
    "chatbot_stream_tokens_per_second", "Tokens per second of a finished stream, after its first token",
    buckets=(1, 5, 10, 20, 40, 60, 80, 120, 200, 400),
)  # fmt: skip
QUEUE_DEPTH = Gauge(
    "chatbot_queue_depth", "Jobs waiting in a device queue", ["queue"], multiprocess_mode="mostrecent"
)
TAKEOVERS = Counter(
    "chatbot_takeovers_total", "Streams whose worker was lost and whose job went to another worker", ["code"]
)
SEAM = Histogram(
    "chatbot_takeover_seam_seconds",
    "A taken-over stream's gap: its last token before its worker was lost to its first token after",
    buckets=(1, 2.5, 5, 10, 15, 20, 30, 60, 120),
)  # fmt: skip
LIVE_WORKERS = Gauge(
    "chatbot_live_workers",
    "Worker processes with a fresh heartbeat",
    ["queue"],
    multiprocess_mode="mostrecent",
)


class StreamTimer:
    """Times one relayed stream; the relay calls it at each stage."""

    def __init__(self) -> None:
        self.enqueued = time.perf_counter()
        self.first_token: float | None = None
        self.last_token: float | None = None
        self.seam_from: float | None = None  # the last token before a takeover
        self.tokens = 0
        OPEN_STREAMS.inc()

    def started(self) -> None:
        QUEUE_WAIT.observe(time.perf_counter() - self.enqueued)

    def taken_over(self, code: str) -> None:
        TAKEOVERS.labels(code).inc()
        self.seam_from = self.last_token

    def event(self, event: JobEvent) -> None:
        if isinstance(event.data, TokenData):
            self.tokens += 1
            self.last_token = time.perf_counter()
            if self.seam_from is not None:
                SEAM.observe(self.last_token - self.seam_from)
                self.seam_from = None
            if self.first_token is None:
                self.first_token = time.perf_counter()
                TTFT.observe(self.first_token - self.enqueued)
        elif isinstance(event.data, ErrorData):
            STREAM_ERRORS.labels(event.data.code).inc()
        elif event.event == "done" and self.first_token is not None and self.tokens > 1:
            TOKENS_PER_SECOND.observe((self.tokens - 1) / max(time.perf_counter() - self.first_token, 1e-6))

    def closed(self) -> None:
        OPEN_STREAMS.dec()


class RequestMetricsMiddleware(AnsweredMiddleware):
    """Counts requests by route template (not raw path, so ids do not explode the label set)."""

    def answered(self, scope: Scope, status: int, elapsed_s: float) -> None:
        route = scope.get("route")
        REQUESTS.labels(getattr(route, "path", "unmatched"), scope["method"], str(status)).inc()


def _registry() -> CollectorRegistry:
    """This process's metrics, or, with several API processes, all of theirs."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def process_exiting() -> None:
    """Drop this process's share of the live-process gauges (open streams) on a clean exit."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        multiprocess.mark_process_dead(os.getpid())


router = APIRouter(tags=["monitoring"], dependencies=[Depends(metrics_reader)])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    client: aioredis.Redis = request.app.state.redis
    ttl = get_settings().worker_heartbeat_ttl_s
    for queue in [*queues(), get_settings().training_queue]:
        QUEUE_DEPTH.labels(queue).set(await queue_depth(client, queue))
        LIVE_WORKERS.labels(queue).set(len(await live_workers(client, queue, ttl)))
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)
