"""Resumable streams: a client that reconnects to `GET /jobs/{id}/events` with the last event id it
saw gets exactly the events after it (from the job's log in Redis), then the live rest; `GET /jobs/{id}`
says where the job is."""

import json
from datetime import datetime
from itertools import islice

import httpx
import pytest
from httpx_sse import connect_sse

from tests.conftest import RACHEL
from tests.jobs import wait_until_ended
from tests.sse import StreamEvent, iter_events, streamed_text

# Long enough (~1.5 s here, much more on a busy machine) that the client reconnects mid-reply.
DETACHED = {**RACHEL, "max_tokens": 100, "temperature": 0, "detach": True}


def read_events(api: httpx.Client, path: str, headers: dict | None = None, limit: int | None = None):
    """GET an SSE route; its response and (the first `limit` of) its events."""
    with connect_sse(api, "GET", path, headers=headers or {}) as source:
        events = [
            StreamEvent(sse.id, sse.event, json.loads(sse.data)) for sse in islice(iter_events(source), limit)
        ]
        return source.response, events


def start_detached(api: httpx.Client, tokens: int) -> tuple[str, list[StreamEvent]]:
    """POST a detached chat, read `tokens` events, hang up (the job goes on)."""
    with connect_sse(api, "POST", "/Lumimaid_stream", json=DETACHED) as source:
        seen = [
            StreamEvent(sse.id, sse.event, json.loads(sse.data))
            for sse in islice(iter_events(source), tokens)
        ]
        return source.response.headers["X-Job-Id"], seen


@pytest.mark.parametrize("how", ["header", "query"])
def test_reconnecting_with_last_event_id_gives_exactly_the_rest_of_the_text(
    api: httpx.Client, db, how: str
) -> None:
    job_id, seen = start_detached(api, tokens=3)
    midway = api.get(f"/jobs/{job_id}").json()
    last = seen[-1].id
    if how == "header":
        response, rest = read_events(api, f"/jobs/{job_id}/events", headers={"Last-Event-ID": last})
    else:
        response, rest = read_events(api, f"/jobs/{job_id}/events?last_event_id={last}")

    reply = db.messages.find_one({"job_id": job_id, "role": "assistant"})
    _, replay = read_events(api, f"/jobs/{job_id}/events")  # from the start, after the end

    assert response.status_code == 200 and response.headers["X-Job-Id"] == job_id
    assert midway["state"] == "running", "the reconnect should have caught the job mid-reply"
    assert [int(event.id) for event in seen + rest] == list(range(len(seen) + len(rest)))
    assert (rest[-1].event, rest[-1].data.get("finish_reason")) == ("done", "length"), rest[-1].data
    assert streamed_text(seen + rest) == reply["content"] == streamed_text(replay)
    assert [event.id for event in replay] == [event.id for event in seen + rest]


def test_job_status_gives_state_text_so_far_and_timings(api: httpx.Client, db) -> None:
    job_id, seen = start_detached(api, tokens=2)
    running = api.get(f"/jobs/{job_id}").json()
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
