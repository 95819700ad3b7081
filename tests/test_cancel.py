"""A client that goes away cancels its job: the worker stops within a few tokens, keeps the partial
reply marked `cancelled`, and is free for the next job."""

from datetime import datetime

import httpx
import pytest
from httpx_sse import connect_sse

from tests.support.clients import RACHEL
from tests.support.jobs import job_status, wait_for_reply, wait_until_ended
from tests.support.sse import iter_events, post_stream, streamed_text

MAX_TOKENS = 1500


def moment(job: dict, step: str) -> datetime:
    return datetime.fromisoformat(job["timings"][f"{step}_at"])


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/Lumimaid_stream", {**RACHEL, "max_tokens": MAX_TOKENS}),  # llama.cpp runtime
        (
            "/Llama_stream",
            {"input_data": "Tell me a long story.", "max_tokens": MAX_TOKENS},
        ),  # transformers runtime
    ],
)
def test_disconnect_after_first_token_cancels_the_job_and_frees_the_worker(
    api: httpx.Client, db, path: str, body: dict
) -> None:
    with connect_sse(api, "POST", path, json=body) as source:
        job_id = source.response.headers["X-Job-Id"]
        first = next(iter_events(source))
        assert first.event == "token", first

    reply = wait_for_reply(db, job_id)
    cancelled = wait_until_ended(api, job_id)
    response, follow_up = post_stream(api, "/Lumimaid_stream", {**RACHEL, "max_tokens": 2})
    follow_up_job = job_status(api, response.headers["X-Job-Id"])
    follow_up_reply = wait_for_reply(db, response.headers["X-Job-Id"])

    assert reply["status"] == "cancelled" and reply["finish_reason"] == "cancelled"
    assert cancelled["state"] == "cancelled" and cancelled["tokens"] == reply["usage"]["completion_tokens"]
    # The worker saw the cancel flag within a few tokens of the hang-up, long before max_tokens.
    assert 1 <= reply["usage"]["completion_tokens"] < 200
    # The next chat ran whole on the freed worker, after the cancelled job stopped and long before that
    # job's last token would have come at its own pace.
    assert [event.event for event in follow_up][-1] == "done"
    assert streamed_text(follow_up) == follow_up_reply["content"] and follow_up_reply["status"] == "complete"
    pace = (moment(cancelled, "finished") - moment(cancelled, "first_token")) / reply["usage"][
        "completion_tokens"
    ]
    assert moment(cancelled, "finished") <= moment(follow_up_job, "started")
    assert moment(follow_up_job, "started") < moment(cancelled, "first_token") + pace * MAX_TOKENS
