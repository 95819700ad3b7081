"""Resumable streams: a client that reconnects to `GET /jobs/{id}/events` with the last event id it
saw gets exactly the events after it (from the job's log in Redis), then the live rest; `GET /jobs/{id}`
says where the job is."""

from datetime import datetime

import httpx
import pytest

from tests.support.jobs import job_status, wait_until_ended
from tests.support.sse import DETACHED, read_events, start_detached, streamed_text
from tests.support.waiting import wait_until

# Far longer than a reconnect takes on any machine: the job is still running when the client is back.
LONG_DETACHED = {**DETACHED, "max_tokens": 1500}


def resume(api: httpx.Client, job_id: str, last: str, how: str, limit: int | None = None):
    if how == "header":
        return read_events(api, f"/jobs/{job_id}/events", headers={"Last-Event-ID": last}, limit=limit)
    return read_events(api, f"/jobs/{job_id}/events?last_event_id={last}", limit=limit)


@pytest.mark.parametrize("how", ["header", "query"])
def test_reconnecting_mid_reply_gives_exactly_the_events_after_the_last_one_seen(
    api: httpx.Client, how: str
) -> None:
    job_id, seen = start_detached(api, tokens=3, body=LONG_DETACHED)
    # The worker has gone well past what the client saw: the rest starts in the log, then goes live.
    midway = wait_until(
        lambda: job_status(api, job_id), lambda job: job["tokens"] >= 20, what="20 tokens logged"
    )
    response, rest = resume(api, job_id, seen[-1].id, how, limit=40)
    running = job_status(api, job_id)
    api.delete(f"/jobs/{job_id}")
    wait_until_ended(api, job_id)

    assert response.status_code == 200 and response.headers["X-Job-Id"] == job_id
    assert midway["state"] == running["state"] == "running"
    assert [int(event.id) for event in seen + rest] == list(range(len(seen) + 40))
    assert [event.event for event in rest] == ["token"] * 40
    assert running["text"].startswith(streamed_text(seen + rest))


@pytest.mark.parametrize("how", ["header", "query"])
def test_replaying_a_finished_job_from_an_early_event_gives_exactly_the_events_after_it(
    api: httpx.Client, db, how: str
) -> None:
    job_id, seen = start_detached(api, tokens=1)
    done = wait_until_ended(api, job_id)
    reply = db.messages.find_one({"job_id": job_id, "role": "assistant"})
    _, everything = read_events(api, f"/jobs/{job_id}/events")

    response, rest = resume(api, job_id, "4", how)

    assert done["state"] == "done" and done["last_event_id"] == 100  # 100 tokens, then `done`
    assert response.status_code == 200
    assert [int(event.id) for event in everything] == list(range(101))
    assert [int(event.id) for event in rest] == list(range(5, 101))
    assert rest == everything[5:]
    assert (rest[-1].event, rest[-1].data.get("finish_reason")) == ("done", "length")
    assert streamed_text(everything[:5] + rest) == reply["content"] == streamed_text(everything)


def test_job_status_gives_state_text_so_far_and_timings(api: httpx.Client, db) -> None:
    job_id, seen = start_detached(api, tokens=2)
    running = job_status(api, job_id)
    done = wait_until_ended(api, job_id)
    reply = db.messages.find_one({"job_id": job_id, "role": "assistant"})

    assert running["state"] == "running" and running["model"] == "lumimaid" and running["queue"] == "cpu"
    assert running["text"].startswith(streamed_text(seen)) and reply["content"].startswith(running["text"])
    assert done["state"] == "done", done
    assert done["text"] == reply["content"]
    assert done["tokens"] == done["usage"]["completion_tokens"] == 100
    assert done["message_id"] == str(reply["_id"]) and done["last_event_id"] == 100
    timings = done["timings"]
    moments = [
        datetime.fromisoformat(timings[f"{step}_at"])
        for step in ("queued", "started", "first_token", "finished")
    ]
    assert moments == sorted(moments)
    assert timings["queue_wait_s"] >= 0 and 0 < timings["time_to_first_token_s"] < timings["generation_s"]


def test_last_event_id_past_the_end_of_an_ended_job_is_204_and_a_bad_one_422(api: httpx.Client) -> None:
    job_id, _ = start_detached(api, tokens=1)
    last_id = wait_until_ended(api, job_id)["last_event_id"]

    past = api.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": str(last_id + 1)})
    bad = api.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": "seven"})

    assert past.status_code == 204  # nothing more: an EventSource stops reconnecting
    assert bad.status_code == 422 and bad.json()["error"]["fields"] == ["Last-Event-ID"]
