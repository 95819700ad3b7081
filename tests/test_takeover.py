"""A stream survives its worker: when the worker running a job is killed (or stopped past its
heartbeat), the job goes to another worker, which continues the reply from the tokens its log holds;
the client's stream stays open and gets the rest. On a stack of its own in the default configuration
(one worker, the engine on threads of its main process), which its launcher restarts; processes are
found from the PIDs the stack started and signalled with psutil."""

import json
import os
import signal
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pymongo
import pytest
import redis
from httpx_sse import connect_sse

from embedded.processes import free_port
from embedded.stack import EmbeddedStack, StackConfig
from jobs.keys import job_state_key, quota_jobs_key, workers_key
from jobs.log import read_log
from tests.support.clients import ADMIN_KEY, NO_QUOTAS, RACHEL, keyed_client
from tests.support.faults import service, wait_healthy, wait_through_faults, wait_worker_ready
from tests.support.sse import StreamEvent, iter_events, post_stream, streamed_text
from tests.support.stacks import stack_broker, stack_db

pytestmark = pytest.mark.stack  # starts a stack of its own

QUESTIONS = [
    "*I ask Rachel to tell me a long story about the sea.*",
    "*I ask Rachel what she thinks of mountains, in detail.*",
    "*I ask Rachel to describe her favourite city.*",
    "*I ask Rachel how she spends a rainy day.*",
]
MAX_TOKENS = 40
FAULT_AFTER_TOKENS = 3
POISON = "POISON-7f3a"  # a prompt holding it kills its worker at its 2nd token (workers/fault_injection.py)


def greedy(question: str, **extra) -> dict:
    return {**RACHEL, "input_data": question, "max_tokens": MAX_TOKENS, "temperature": 0, **extra}


@pytest.fixture(scope="module")
def takeover_stack() -> Iterator[EmbeddedStack]:
    data_dir = Path(tempfile.mkdtemp(prefix="chatbot-takeover-stack-"))
    config = StackConfig(
        data_dir=data_dir,
        redis_port=free_port(),
        api_port=free_port(),
        mongo_uri=os.environ.get("MONGO_URI"),
        queues=["cpu"],
        extra_env={
            "MONGO_DB": f"chatbot_takeover_{uuid.uuid4().hex[:8]}",
            "ADMIN_API_KEY": ADMIN_KEY,
            **NO_QUOTAS,
            "QUEUE_MAX_DEPTH": "0",
            "CHATBOT_TEST_KILL_AT": f"{POISON}:2",
        },
    )
    with EmbeddedStack(config) as running:
        yield running


@pytest.fixture(scope="module")
def api(takeover_stack: EmbeddedStack) -> Iterator[httpx.Client]:
    with keyed_client(takeover_stack.api_url, ADMIN_KEY) as client:
        yield client


@pytest.fixture(scope="module")
def db(takeover_stack: EmbeddedStack) -> Iterator[pymongo.database.Database]:
    with stack_db(takeover_stack) as database:
        yield database


@pytest.fixture(scope="module")
def broker(takeover_stack: EmbeddedStack) -> Iterator[redis.Redis]:
    with stack_broker(takeover_stack) as client:
        yield client


@pytest.fixture(autouse=True)
def whole(api: httpx.Client, takeover_stack: EmbeddedStack) -> Iterator[None]:
    wait_healthy(api)
    wait_worker_ready(takeover_stack)
    yield
    wait_healthy(api)
    wait_worker_ready(takeover_stack)


@pytest.fixture(scope="module")
def uninterrupted(api: httpx.Client) -> dict[str, str]:
    """Each question's greedy reply with no fault: what a taken-over stream must give too."""
    texts = {}
    for question in QUESTIONS:
        response, events = post_stream(api, "/Lumimaid_stream", greedy(question))
        assert events[-1].event == "done", events[-1]
        texts[question] = streamed_text(events)
    return texts


def worker(stack: EmbeddedStack):
    return service(stack, "worker-cpu")


class Streams:
    """Streams read on threads; `fault` runs once every one of them has FAULT_AFTER_TOKENS tokens."""

    def __init__(self, api: httpx.Client, bodies: list[dict]) -> None:
        self.api, self.bodies = api, bodies
        self.events: list[list[StreamEvent]] = [[] for _ in bodies]
        self.job_ids: list[str] = [""] * len(bodies)
        self.ready = threading.Barrier(len(bodies) + 1)

    def _read(self, index: int) -> None:
        with connect_sse(self.api, "POST", "/Lumimaid_stream", json=self.bodies[index]) as source:
            self.job_ids[index] = source.response.headers["X-Job-Id"]
            for sse in iter_events(source):
                self.events[index].append(StreamEvent(sse.id, sse.event, json.loads(sse.data)))
                if len(self.events[index]) == FAULT_AFTER_TOKENS:
                    self.ready.wait(timeout=600)

    def run(self, fault) -> None:
        threads = [threading.Thread(target=self._read, args=(i,)) for i in range(len(self.bodies))]
        for thread in threads:
            thread.start()
        self.ready.wait(timeout=600)
        fault()
        for thread in threads:
            thread.join(timeout=900)


def assert_whole(events: list[StreamEvent], expected: str) -> None:
    assert [event.event for event in events] == ["token"] * (len(events) - 1) + ["done"], events[-1]
    assert [int(event.id) for event in events] == list(range(len(events)))  # no gap, no repeat
    assert streamed_text(events) == expected


def test_streams_whose_worker_is_killed_continue_on_its_restart_with_the_text_they_would_have_had(
    api: httpx.Client, db, broker: redis.Redis, takeover_stack: EmbeddedStack, uninterrupted: dict[str, str]
) -> None:
    killed = worker(takeover_stack)
    streams = Streams(api, [greedy(question) for question in QUESTIONS])
    streams.run(lambda: killed.send_signal(signal.SIGKILL))

    assert worker(takeover_stack).pid != killed.pid  # the launcher started another
    for question, events, job_id in zip(QUESTIONS, streams.events, streams.job_ids, strict=True):
        assert_whole(events, uninterrupted[question])
        replies = list(db.messages.find({"job_id": job_id, "role": "assistant"}))
        assert [(reply["status"], reply["content"]) for reply in replies] == [
            ("complete", uninterrupted[question])
        ]
        assert api.get(f"/jobs/{job_id}").json()["state"] == "done"


def test_a_worker_stopped_past_its_heartbeat_then_woken_writes_nothing_more(
    api: httpx.Client, broker: redis.Redis, takeover_stack: EmbeddedStack, uninterrupted: dict[str, str]
) -> None:
    stopped = worker(takeover_stack)
    streams = Streams(api, [greedy(QUESTIONS[0])])

    def stop_until_taken_over() -> None:
        stopped.send_signal(signal.SIGSTOP)
        try:  # the stream sees the heartbeat lapse and sends the job to another worker
            wait_through_faults(lambda: broker.hget(job_state_key(streams.job_ids[0]), "state") == b"queued",
                     what="the job taken over")  # fmt: skip
        finally:
            stopped.send_signal(signal.SIGCONT)

    streams.run(stop_until_taken_over)

    assert worker(takeover_stack).pid == stopped.pid  # woken, not restarted
    assert_whole(streams.events[0], uninterrupted[QUESTIONS[0]])
    logged = [entry.event for entry in read_log(broker, streams.job_ids[0]) if entry.event]
    ids = [event.id for event in logged if event.id >= 0]
    assert ids == list(range(len(ids)))  # one writer: every id once, in order
    assert [event.data.attempt for event in logged if event.id < 0] == [1, 2]


def test_a_detached_chat_whose_client_left_and_whose_worker_died_is_stored_whole(
    api: httpx.Client, db, broker: redis.Redis, takeover_stack: EmbeddedStack, uninterrupted: dict[str, str]
) -> None:
    question = QUESTIONS[1]
    with connect_sse(api, "POST", "/Lumimaid_stream", json=greedy(question, detach=True)) as source:
        job_id = source.response.headers["X-Job-Id"]
        for count, _ in enumerate(iter_events(source), start=1):
            if count == FAULT_AFTER_TOKENS:
                break  # the client goes away; the job goes on without it
    worker(takeover_stack).send_signal(signal.SIGKILL)

    reply = wait_through_faults(  # the recovery sweep takes it over once the launcher's worker is back
        lambda: db.messages.find_one({"job_id": job_id, "role": "assistant", "status": "complete"}),
        what="the detached reply stored whole",
    )
    assert reply["content"] == uninterrupted[question]
    quota = read_log(broker, job_id)[0].queued.quota
    assert broker.zscore(quota_jobs_key(quota), job_id) is None  # its key's place is free


def test_a_job_that_kills_every_worker_ends_with_an_error_and_the_streams_beside_it_finish(
    api: httpx.Client, db, takeover_stack: EmbeddedStack, uninterrupted: dict[str, str]
) -> None:
    first = worker(takeover_stack)
    poison = greedy(f"*I whisper {POISON} to Rachel.*")
    streams = Streams(api, [greedy(QUESTIONS[2])])
    results: dict[str, list[StreamEvent]] = {}

    def poison_it() -> None:
        results["poison"] = post_stream(api, "/Lumimaid_stream", poison)[1]

    streams.run(poison_it)

    events = results["poison"]
    assert (events[-1].event, events[-1].data["code"]) == ("error", "worker_lost")
    assert "poison" in events[-1].data["message"]
    assert [int(event.id) for event in events] == list(range(len(events)))
    assert worker(takeover_stack).pid != first.pid
    assert_whole(streams.events[0], uninterrupted[QUESTIONS[2]])  # taken over each time too


def test_a_second_worker_on_the_queue_takes_the_jobs_of_the_one_killed(
    api: httpx.Client, broker: redis.Redis, takeover_stack: EmbeddedStack, uninterrupted: dict[str, str]
) -> None:
    survivor = takeover_stack.start_worker("cpu", name="cpu-2")
    try:
        wait_healthy(api)
        killed = worker(takeover_stack)
        streams = Streams(api, [greedy(question) for question in QUESTIONS])
        streams.run(lambda: killed.send_signal(signal.SIGKILL))

        for question, events in zip(QUESTIONS, streams.events, strict=True):
            assert_whole(events, uninterrupted[question])
        takers = {
            entry.event.data.process
            for job_id in streams.job_ids
            for entry in read_log(broker, job_id)
            if entry.event and entry.event.id < 0 and entry.event.data.attempt > 1
        }
        survivors = {member.decode() for member in broker.zrange(workers_key("cpu"), 0, -1)}
        assert takers and takers <= survivors  # taken over by a live worker
        assert psutil.pid_exists(survivor.pid)  # the survivor was untouched
    finally:
        takeover_stack.stop_process("worker-cpu-2")


def test_a_batch_whose_worker_dies_completes_every_item_once_each_reply_taken_over_not_rerun(
    api: httpx.Client, broker: redis.Redis, takeover_stack: EmbeddedStack
) -> None:
    items = [{"custom_id": str(index), "character": {"name": "Bard", "description": "A travelling bard."},
              "messages": [{"role": "user", "content": f"Sing me ballad number {index}."}],
              "params": {"max_tokens": 24, "temperature": 0}} for index in range(20)]  # fmt: skip
    batch = api.post("/batches", json={"items": items}).json()

    def some_generating() -> bool:
        rows = [json.loads(line) for line in api.get(f"/batches/{batch['id']}/results").text.splitlines()]
        return any(
            row["state"] == "running" and api.get(f"/jobs/{row['job_id']}").json().get("tokens", 0) > 2
            for row in rows
        )

    wait_through_faults(some_generating, what="items generating")
    worker(takeover_stack).send_signal(signal.SIGKILL)

    wait_through_faults(
        lambda: api.get(f"/batches/{batch['id']}").json()["state"] == "completed",
        what="the batch to complete",
    )
    rows = [json.loads(line) for line in api.get(f"/batches/{batch['id']}/results").text.splitlines()]

    assert sorted(row["custom_id"] for row in rows) == sorted(str(index) for index in range(20))
    assert [row["state"] for row in rows] == ["complete"] * 20
    for row in rows:  # each reply one run of tokens: a taken-over one goes on, none starts again
        tokens = [
            entry.event.data
            for entry in read_log(broker, row["job_id"])
            if entry.event and entry.event.event == "token"
        ]
        assert [token.index for token in tokens] == list(range(len(tokens)))
        assert "".join(token.text for token in tokens) == row["text"]
