"""What happens to a job when its client goes away: it is cancelled and the worker is free again at
once, unless the client asked for the job to finish anyway (`detach: true`); `DELETE /jobs/{id}`
stops a detached job."""

from itertools import islice

import httpx
from httpx_sse import connect_sse

from embedded.stack import EmbeddedStack
from model_registry import get_registry
from tests.support.clients import RACHEL
from tests.support.jobs import job_status, wait_for_reply, wait_until_ended
from tests.support.metrics import samples, value
from tests.support.sse import iter_events
from tests.support.waiting import wait_until

LONG_REPLY = {**RACHEL, "max_tokens": 1500}


ACTIVE = "chatbot_worker_active_sequences"


def running_sequences(stack: EmbeddedStack) -> float:
    """What the chat worker says it is generating now (its own metrics; Celery's remote control
    answers late or not at all from a worker whose cores the model keeps busy)."""
    url = f"http://127.0.0.1:{stack.worker_metrics_ports['cpu']}/metrics"
    return value(samples(httpx.get(url, timeout=30).text), ACTIVE, model="lumimaid")


def start_and_leave(api: httpx.Client, body: dict, tokens: int = 1) -> str:
    """POST a chat, read `tokens` tokens, hang up; the job's id."""
    with connect_sse(api, "POST", "/Lumimaid_stream", json=body) as source:
        assert [sse.event for sse in islice(iter_events(source), tokens)] == ["token"] * tokens
        return source.response.headers["X-Job-Id"]


def test_disconnect_after_the_first_token_stops_the_job_within_a_few_tokens_and_frees_the_worker(
    api: httpx.Client, db, stack: EmbeddedStack
) -> None:
    with connect_sse(api, "POST", "/Lumimaid_stream", json=LONG_REPLY) as source:
        first = next(iter_events(source))
        job_id = source.response.headers["X-Job-Id"]
        at_hang_up = job_status(api, job_id)
        tokens_at_hang_up = at_hang_up["tokens"]

    idle = wait_until(
        lambda: running_sequences(stack), lambda running: running == 0, what="the worker to be idle"
    )
    reply = wait_for_reply(db, job_id)

    assert first.event == "token" and at_hang_up["state"] == "running"
    assert idle == 0
    assert reply["status"] == "cancelled" and reply["finish_reason"] == "cancelled"
    # The cancel flag was seen within a few tokens of the hang-up, long before max_tokens.
    assert tokens_at_hang_up <= reply["usage"]["completion_tokens"] < tokens_at_hang_up + 100
    assert reply["usage"]["completion_tokens"] < LONG_REPLY["max_tokens"]
    assert job_status(api, job_id)["state"] == "cancelled"


def test_a_detached_job_finishes_and_stores_its_reply_after_the_client_leaves(api: httpx.Client, db) -> None:
    job_id = start_and_leave(api, {**RACHEL, "max_tokens": 24, "detach": True})

    reply = wait_for_reply(db, job_id)
    job = api.get(f"/jobs/{job_id}").json()

    assert reply["status"] == "complete" and reply["finish_reason"] in ("stop", "length")
    assert job["state"] == "done" and job["detach"] is True
    assert job["text"] == reply["content"]
    assert job["tokens"] == reply["usage"]["completion_tokens"] > 1


def test_delete_stops_a_detached_job(api: httpx.Client, db) -> None:
    job_id = start_and_leave(api, {**LONG_REPLY, "detach": True})

    response = api.delete(f"/jobs/{job_id}")
    reply = wait_for_reply(db, job_id, timeout_s=10)
    ended = wait_until_ended(api, job_id)

    assert response.status_code == 202
    assert response.json()["state"] in ("queued", "running")
    assert reply["status"] == "cancelled" and ended["state"] == "cancelled"
    assert api.delete(f"/jobs/{job_id}").status_code == 409  # it has ended


def test_a_job_whose_client_left_while_it_waited_never_reaches_the_model(api: httpx.Client, db) -> None:
    slots = get_registry()["lumimaid"].max_sequences
    busy = [start_and_leave(api, {**LONG_REPLY, "detach": True}) for _ in range(slots)]  # a full worker
    with connect_sse(api, "POST", "/Lumimaid_stream", json=RACHEL) as source:
        waiting = source.response.headers["X-Job-Id"]
    queued = api.get(f"/jobs/{waiting}").json()["state"]
    for job_id in busy:
        api.delete(f"/jobs/{job_id}")

    reply = wait_for_reply(db, waiting)

    assert queued == "queued"
    assert reply["status"] == "cancelled" and reply["content"] == ""
    assert reply["usage"]["prompt_tokens"] == reply["usage"]["completion_tokens"] == 0


def test_unknown_job_is_404(api: httpx.Client) -> None:
    for response in (
        api.get("/jobs/0123abcd"),
        api.delete("/jobs/0123abcd"),
        api.get("/jobs/0123abcd/events"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
