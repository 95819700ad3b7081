"""Two keys on one worker through the whole stack (real Redis, the worker with the real Gemma GGUF,
FerretDB, the API): one key's allowed load never starves another's. A fills every slot of the engine
with long streams; B's short chat still gets a slot (one of A's pauses) and ends before any of A's,
and each of A's streams ends `done` with the very text it has when nobody else is there. A worker
gives back to its queue a job it cannot start yet; should it die holding one, the recovery sweep does."""

import asyncio
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import redis
import redis.asyncio as aioredis
from celery import Celery
from httpx_sse import connect_sse
from kombu import Queue

from accounts.keys import key_prefix
from api.streams.takeover import UNSTARTED_HELD_S, give_back_unstarted
from jobs.broker import UNACKED_INDEX_KEY
from jobs.keys import PRIORITY_SEP, PRIORITY_STEPS, job_state_key
from model_registry import get_registry
from schemas.jobs import CHAT_TASK
from tests.support.batches import RACHEL_INLINE, submit, wait_until_settled
from tests.support.clients import keyed_client, new_user_key
from tests.support.metrics import samples, value
from tests.support.sse import iter_events
from tests.support.waiting import wait_until

TOPICS = ["dragons", "the sea", "a lighthouse", "two cats", "a robot", "the moon", "a baker", "winter"]
LONG = 48
SHARE = "chatbot_worker_share_sequences"
PREEMPTIONS = "chatbot_worker_preemptions_total"


def body(topic: str, max_tokens: int) -> dict:
    return {
        "model": "lumimaid",
        "messages": [{"role": "user", "content": f"Tell me a very long story about {topic}."}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }


def stream(client: httpx.Client, request: dict, on_token=None) -> tuple[str, str]:
    """(text, finish reason) of one streamed /v1 chat completion; `on_token()` at its first token."""
    pieces, reason = [], None
    with connect_sse(client, "POST", "/v1/chat/completions", json=request) as source:
        assert source.response.status_code == 200, source.response.read()
        for sse in iter_events(source):
            if sse.data == "[DONE]":
                break
            chunk = json.loads(sse.data)
            assert "choices" in chunk, f"the stream failed: {chunk}"
            choice = chunk["choices"][0]
            if choice["delta"].get("content"):
                if not pieces and on_token is not None:
                    on_token()
                pieces.append(choice["delta"]["content"])
            reason = choice.get("finish_reason") or reason
    return "".join(pieces), reason


def worker_metrics(stack) -> dict:
    return samples(httpx.get(f"http://127.0.0.1:{stack.worker_metrics_ports['cpu']}/metrics").text)


def a_fills_the_worker(stack, a_key: str, while_running=None) -> tuple[list[str], list[str], list[str]]:
    """A's eight long greedy streams at once; `while_running(ended)` once each has a token.
    (texts, finish reasons, the order streams ended in: `a` for each of A's, and what while_running adds)."""
    slots = get_registry()["lumimaid"].max_sequences
    started = [threading.Event() for _ in range(slots)]
    ended: list[str] = []

    def one(client: httpx.Client, i: int) -> tuple[str, str]:
        result = stream(client, body(TOPICS[i], LONG), on_token=started[i].set)
        ended.append("a")
        return result

    with keyed_client(stack.api_url, a_key) as client, ThreadPoolExecutor(slots) as pool:
        futures = [pool.submit(one, client, i) for i in range(slots)]
        if while_running is not None:
            for event in started:
                assert event.wait(300), "one of A's streams never started"
            while_running(ended)
        results = [future.result() for future in futures]
    return [text for text, _ in results], [reason for _, reason in results], ended


def test_another_keys_chat_ends_before_any_of_the_streams_of_a_key_holding_every_slot(stack) -> None:
    a_key, b_key = new_user_key(stack.api_url), new_user_key(stack.api_url)
    slots = get_registry()["lumimaid"].max_sequences
    seen_alone: list[float] = []

    def count_a_running(ended: list[str]) -> None:
        found = wait_until(
            lambda: value(
                worker_metrics(stack), SHARE, model="lumimaid", key=key_prefix(a_key), state="running"
            ),
            lambda running: running == slots or len(ended) > 0,
            what="A's streams to hold every slot",
        )
        seen_alone.append(found)

    alone, alone_reasons, _ = a_fills_the_worker(stack, a_key, while_running=count_a_running)
    preempted_before = value(worker_metrics(stack), PREEMPTIONS, model="lumimaid")
    b_result: list[tuple[str, str]] = []

    def b_chats(ended: list[str]) -> None:
        with keyed_client(stack.api_url, b_key) as client:
            b_result.append(stream(client, body("a mouse", 3)))
        ended.append("b")

    shared, shared_reasons, order = a_fills_the_worker(stack, a_key, while_running=b_chats)

    assert seen_alone == [slots]  # a lone key runs as many at once as there are slots
    assert alone_reasons == ["length"] * slots  # A's replies run long: B's must end first
    assert b_result[0][1] == "length" and b_result[0][0]
    assert order[0] == "b", order
    assert value(worker_metrics(stack), PREEMPTIONS, model="lumimaid") > preempted_before
    assert shared_reasons == alone_reasons
    assert shared == alone  # paused, not changed


def test_a_job_a_dead_worker_received_but_never_started_goes_back_to_the_head_of_its_queue(
    stack, broker: redis.Redis
) -> None:
    queue = f"nobody-{uuid.uuid4().hex[:8]}"  # no worker consumes it: this test is the worker
    app = Celery(broker=stack.redis_url)
    app.conf.task_queues = [Queue(queue)]
    app.conf.broker_transport_options = {"priority_steps": PRIORITY_STEPS, "sep": PRIORITY_SEP}
    never, started = uuid.uuid4().hex, uuid.uuid4().hex
    for job_id in (never, started):
        app.send_task(CHAT_TASK, args=[{}], queue=queue, task_id=job_id, priority=3)
    with app.connection_for_write() as connection:
        received = [connection.default_channel.basic_get(queue, no_ack=False) for _ in range(2)]
        broker.hset(job_state_key(started), "state", "running")  # its worker took it
        # ... and then died, long enough ago (kombu stamps each delivery in this index).
        long_ago = time.time() - UNSTARTED_HELD_S - 1
        broker.zadd(UNACKED_INDEX_KEY, {message.delivery_tag: long_ago for message in received})

        async def sweep() -> int:
            async with aioredis.from_url(stack.redis_url) as client:
                return await give_back_unstarted(app, client)

        given_back = asyncio.run(sweep())
        waiting = [
            json.loads(raw)["headers"]["id"] for raw in broker.lrange(f"{queue}{PRIORITY_SEP}3", 0, -1)
        ]
        still_held = broker.zscore(UNACKED_INDEX_KEY, received[1].delivery_tag)
        broker.delete(job_state_key(started))

    assert given_back == 1
    assert waiting == [never]  # at the head (kombu's workers pop the right end), the only one
    assert still_held is not None  # a started job's message stays with its worker (takeover's)


def test_a_chat_takes_a_slot_from_a_batch_that_holds_every_one(stack, api: httpx.Client) -> None:
    slots = get_registry()["lumimaid"].max_sequences
    long_story = {
        "character": RACHEL_INLINE,
        "messages": [{"role": "user", "content": "Tell me a very long story."}],
        "params": {"max_tokens": 1500, "temperature": 0},
    }
    batch = submit(api, [long_story] * (slots + 2))
    try:
        wait_until(  # in the engine, past its prompt or not
            lambda: value(
                worker_metrics(stack), SHARE, model="lumimaid", key=f"batch:{batch['id']}", state="running"
            ),
            lambda running: running == slots,
            what="the batch to hold every slot",
        )
        preempted_before = value(worker_metrics(stack), PREEMPTIONS, model="lumimaid")

        text, reason = stream(api, body("a mouse", 3))
        counts = api.get(f"/batches/{batch['id']}").json()["counts"]
    finally:
        api.post(f"/batches/{batch['id']}/cancel")
        wait_until_settled(api, batch["id"])

    assert reason == "length" and text
    assert counts["complete"] == 0  # it did not wait for an item to end
    assert value(worker_metrics(stack), PREEMPTIONS, model="lumimaid") > preempted_before
