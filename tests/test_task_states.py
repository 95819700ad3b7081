"""What Flower shows of a chat job: Celery's task events from the real worker, read the way Flower
reads them (celery.events.state): a job its client cancelled ends CANCELLED, never SUCCESS; a job that
ran to its end is SUCCESS."""

import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from celery.events.state import State
from httpx_sse import connect_sse

from embedded.stack import EmbeddedStack
from tasks.app import app as celery_app
from tests.support.clients import RACHEL
from tests.support.jobs import wait_until_ended
from tests.support.sse import iter_events, post_stream
from tests.support.waiting import wait_until


@pytest.fixture
def task_states(stack: EmbeddedStack) -> Iterator[State]:
    """Every task event the stack's workers send, folded into states as Flower does."""
    state = State()
    with celery_app.connection_for_read(stack.redis_url) as connection:
        receiver = celery_app.events.Receiver(connection, handlers={"*": state.event})
        listening = threading.Thread(target=receiver.capture, kwargs={"wakeup": False}, daemon=True)
        listening.start()
        yield state
        receiver.should_stop = True
        listening.join(timeout=10)


def task_state(states: State, job_id: str) -> str | None:
    task = states.tasks.get(job_id)
    return task.state if task is not None else None


def test_a_cancelled_chat_is_not_shown_as_a_success(api: httpx.Client, task_states: State) -> None:
    with connect_sse(api, "POST", "/Lumimaid_stream", json={**RACHEL, "max_tokens": 1500}) as source:
        cancelled = source.response.headers["X-Job-Id"]
        assert next(iter_events(source)).event == "token"
    assert wait_until_ended(api, cancelled)["state"] == "cancelled"
    response, _ = post_stream(api, "/Lumimaid_stream", {**RACHEL, "max_tokens": 2})
    finished = response.headers["X-Job-Id"]

    wait_until(
        lambda: task_state(task_states, finished),
        lambda state: state == "SUCCESS",
        what="the finished job's state",
    )
    assert wait_until(
        lambda: task_state(task_states, cancelled),
        lambda state: state == "CANCELLED",
        what="the cancelled job's state",
    )


def test_a_running_item_of_a_cancelled_batch_is_not_shown_as_a_success(
    api: httpx.Client, task_states: State
) -> None:
    item = {
        "character": {"name": "Rachel"},
        "messages": [{"role": "user", "content": "Tell me a long story."}],
    }
    batch = api.post("/batches", json={"items": [{**item, "params": {"max_tokens": 1500}}]}).json()

    def lines() -> list[dict]:
        return [json.loads(line) for line in api.get(f"/batches/{batch['id']}/results").text.splitlines()]

    (running,) = wait_until(lines, lambda found: found[0]["state"] == "running", what="the item to run")
    api.post(f"/batches/{batch['id']}/cancel")

    assert wait_until(
        lambda: task_state(task_states, running["job_id"]),
        lambda state: state == "CANCELLED",
        what="the item's state",
    )
    assert lines()[0]["state"] == "cancelled"
