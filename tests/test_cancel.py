"""A client that goes away cancels its job: the worker stops within a few tokens, keeps the partial
reply marked `cancelled`, and is free for the next job."""

import time

import httpx
import pytest
from httpx_sse import connect_sse

from tests.conftest import RACHEL
from tests.jobs import wait_for_reply
from tests.sse import iter_events


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/Lumimaid_stream", {**RACHEL, "max_tokens": 1500}),  # llama.cpp runtime
        (
            "/Llama_stream",
            {"input_data": "Tell me a long story.", "max_tokens": 1500},
        ),  # transformers runtime
    ],
)
def test_disconnect_after_first_token_cancels_the_job(api: httpx.Client, db, path: str, body: dict) -> None:
    with connect_sse(api, "POST", path, json=body) as source:
        job_id = source.response.headers["X-Job-Id"]
        first = next(iter_events(source))
    disconnected = time.monotonic()

    reply = wait_for_reply(db, job_id, timeout_s=20)
    stored_after_s = time.monotonic() - disconnected
    _, next_first_token_s = time_to_first_token(api)

    assert first.event == "token"
    assert reply["status"] == "cancelled" and reply["finish_reason"] == "cancelled"
    assert reply["usage"]["completion_tokens"] < 200
    assert stored_after_s < 5
    assert next_first_token_s < 5  # the worker is free again


def time_to_first_token(api: httpx.Client) -> tuple[str, float]:
    started = time.monotonic()
    with connect_sse(api, "POST", "/Lumimaid_stream", json={**RACHEL, "max_tokens": 2}) as source:
        event = next(iter_events(source))
        return event.event, time.monotonic() - started
