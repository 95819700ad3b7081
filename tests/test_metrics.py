"""Prometheus metrics on the API and on each worker, after real chats."""

import httpx

from tests.support.clients import RACHEL
from tests.support.metrics import samples, value
from tests.support.sse import post_stream


def test_api_metrics_count_requests_streams_and_first_tokens(api: httpx.Client, admin_headers) -> None:
    before = samples(api.get("/metrics", headers=admin_headers).text)
    post_stream(api, "/Lumimaid_stream", {**RACHEL, "max_tokens": 4})
    api.post("/Llama_stream", json={"input_data": ""})  # a 422

    after = samples(api.get("/metrics", headers=admin_headers).text)

    chat = {"route": "/Lumimaid_stream", "method": "POST", "status": "200"}
    assert (
        value(after, "chatbot_http_requests_total", **chat)
        == value(before, "chatbot_http_requests_total", **chat) + 1
    )
    bad = {"route": "/Llama_stream", "method": "POST", "status": "422"}
    assert (
        value(after, "chatbot_http_requests_total", **bad)
        == value(before, "chatbot_http_requests_total", **bad) + 1
    )
    assert (
        value(after, "chatbot_time_to_first_token_seconds_count")
        == value(before, "chatbot_time_to_first_token_seconds_count") + 1
    )
    assert value(after, "chatbot_queue_wait_seconds_count") > value(
        before, "chatbot_queue_wait_seconds_count"
    )
    assert value(after, "chatbot_open_streams") == 0
    assert value(after, "chatbot_live_workers", queue="cpu") == 1  # the test stack's one chat worker
    assert ("chatbot_queue_depth", frozenset({"queue": "cpu"}.items())) in after


def worker_samples(stack) -> dict[tuple[str, frozenset], float]:
    return samples(httpx.get(f"http://127.0.0.1:{stack.worker_metrics_ports['cpu']}/metrics").text)


def test_worker_metrics_count_tokens_and_model_load(api: httpx.Client, stack) -> None:
    before = worker_samples(stack)
    _, events = post_stream(api, "/Lumimaid_stream", {**RACHEL, "max_tokens": 5})

    found = worker_samples(stack)

    lumimaid = {"model": "lumimaid"}
    assert (
        value(found, "chatbot_worker_tokens_total", **lumimaid)
        == value(before, "chatbot_worker_tokens_total", **lumimaid)
        + events[-1].data["usage"]["completion_tokens"]
    )
    assert value(found, "chatbot_worker_model_load_seconds", **lumimaid) > 0
    assert (
        value(found, "chatbot_worker_generation_seconds_count", **lumimaid)
        == value(before, "chatbot_worker_generation_seconds_count", **lumimaid) + 1
    )
