"""A job's state machine in Redis (jobs/transitions.py): the legal moves happen, every other is refused,
and a job has one writer at a time, its event ids strictly increasing."""

import asyncio
import uuid
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis

from embedded.processes import free_port
from embedded.services import start_redis
from jobs.keys import RUNNING_JOBS_KEY, job_cancel_key, job_state_key, quota_jobs_key
from jobs.log import ReplySoFar, read_log, reply_so_far
from jobs.states import LEGAL_FROM, allowed
from jobs.transitions import (
    ANY_CAUSE_FACTOR,
    JobFenced,
    Taken,
    emit,
    end_job,
    finish,
    open_job,
    requeue,
    runs_alone,
    take,
)
from schemas.events import DoneData, ErrorData, JobEvent, StartedData, TokenData, Usage
from schemas.job_log import QueuedRecord

pytestmark = pytest.mark.stack  # starts a Redis of its own

PASSWORD = "states-test"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    data = tmp_path_factory.mktemp("states")
    port = free_port()
    server = start_redis(port, data / "redis", data / "logs", PASSWORD)
    client = redis.Redis(port=port, password=PASSWORD)
    try:
        yield client
    finally:
        client.close()
        server.stop()


def _async(client: redis.Redis) -> aioredis.Redis:
    kwargs = client.connection_pool.connection_kwargs
    return aioredis.Redis(port=kwargs["port"], password=kwargs["password"])


def opened(client: redis.Redis, quota: str = "") -> str:
    job_id = uuid.uuid4().hex
    record = QueuedRecord(model="m", queue="q", quota=quota)

    async def go() -> None:
        api = _async(client)
        await open_job(api, job_id, record, log_ttl_s=60, job="{}")
        await api.aclose()

    asyncio.run(go())
    return job_id


def ended_by_api(client: redis.Redis, job_id: str, code: str = "worker_lost", quota: str | None = None):
    async def go() -> int | None:
        api = _async(client)
        try:
            return await end_job(api, job_id, ErrorData(code=code, message="m"), 60, quota=quota)
        finally:
            await api.aclose()

    return asyncio.run(go())


def requeued(client: redis.Redis, job_id: str, attempt: int) -> bool:
    async def go() -> bool:
        api = _async(client)
        try:
            return await requeue(api, job_id, attempt)
        finally:
            await api.aclose()

    return asyncio.run(go())


def taken(client: redis.Redis, job_id: str, max_attempts: int = 3) -> Taken:
    started = StartedData(worker="w", process="p")
    return take(client, job_id, max_attempts=max_attempts, started=started, log_ttl_s=60)


def token(event_id: int, index: int = 0) -> JobEvent:
    return JobEvent(id=event_id, event="token", data=TokenData(text="x", index=index))


def done(event_id: int) -> JobEvent:
    return JobEvent(id=event_id, event="done", data=DoneData(finish_reason="stop", usage=Usage()))


def state(client: redis.Redis, job_id: str) -> str:
    return (client.hget(job_state_key(job_id), "state") or b"").decode()


def logged_ids(client: redis.Redis, job_id: str) -> list[int]:
    return [entry.event.id for entry in read_log(client, job_id) if entry.event]


def test_a_job_runs_from_queued_to_done_and_its_log_holds_every_step(client: redis.Redis) -> None:
    job_id = opened(client, quota="k1")
    client.zadd(quota_jobs_key("k1"), {job_id: 1e12})
    assert state(client, job_id) == "queued"
    run = taken(client, job_id)
    assert (run.outcome, run.attempt, run.next_id, run.cancelled) == ("run", 1, 0, False)
    assert state(client, job_id) == "running"
    assert [emit(client, job_id, run.attempt, token(i, i), 60) for i in range(3)] == [False] * 3
    finish(client, job_id, run.attempt, done(3), 60, quota="k1")
    assert state(client, job_id) == "done"
    assert logged_ids(client, job_id) == [-1, 0, 1, 2, 3]
    assert read_log(client, job_id)[0].queued is not None
    assert client.zscore(quota_jobs_key("k1"), job_id) is None  # its key's quota counts it no more


def test_an_ended_job_refuses_every_write(client: redis.Redis) -> None:
    job_id = opened(client)
    run = taken(client, job_id)
    finish(client, job_id, run.attempt, done(0), 60)
    assert taken(client, job_id).outcome == "ended"  # a redelivered message is not run again
    with pytest.raises(JobFenced):
        emit(client, job_id, run.attempt, token(1), 60)
    with pytest.raises(JobFenced):
        finish(client, job_id, run.attempt, done(1), 60)
    assert ended_by_api(client, job_id) is None
    assert state(client, job_id) == "done" and logged_ids(client, job_id) == [-1, 0]


def test_a_worker_that_wakes_after_the_api_ended_its_job_writes_nothing(client: redis.Redis) -> None:
    job_id = opened(client, quota="k2")
    run = taken(client, job_id)
    emit(client, job_id, run.attempt, token(0), 60)
    emit(client, job_id, run.attempt, token(1, 1), 60)
    assert ended_by_api(client, job_id, quota="k2") == 2  # the error follows the last event written
    assert client.exists(job_cancel_key(job_id))
    with pytest.raises(JobFenced):  # the stopped worker, woken up, at its next token
        emit(client, job_id, run.attempt, token(2, 2), 60)
    with pytest.raises(JobFenced):
        finish(client, job_id, run.attempt, done(2), 60)
    assert state(client, job_id) == "error"
    assert logged_ids(client, job_id) == [-1, 0, 1, 2]  # one event per id


def test_only_the_latest_attempt_writes_and_ids_follow_on(client: redis.Redis) -> None:
    job_id = opened(client)
    first = taken(client, job_id)
    emit(client, job_id, first.attempt, token(0), 60)
    second = taken(client, job_id)  # the message redelivered to another worker
    assert (second.attempt, second.next_id) == (2, 1)
    with pytest.raises(JobFenced):
        emit(client, job_id, first.attempt, token(1), 60)
    emit(client, job_id, second.attempt, token(second.next_id), 60)
    finish(client, job_id, second.attempt, done(second.next_id + 1), 60)
    ids = [event_id for event_id in logged_ids(client, job_id) if event_id >= 0]
    assert ids == sorted(set(ids)) == [0, 1, 2]


def test_a_job_whose_worker_is_gone_is_requeued_once_and_taken_over_where_its_log_ends(
    client: redis.Redis,
) -> None:
    job_id = opened(client)
    lost = taken(client, job_id)
    assert client.zscore(RUNNING_JOBS_KEY, job_id) is not None
    for i in range(2):
        emit(client, job_id, lost.attempt, token(i, i), 60, token_ids=[100 + i])
    assert requeued(client, job_id, lost.attempt)
    assert not requeued(client, job_id, lost.attempt)  # a second stream watching it sends nothing
    assert state(client, job_id) == "queued" and client.zscore(RUNNING_JOBS_KEY, job_id) is None
    with pytest.raises(JobFenced):  # the lost worker, should it wake
        emit(client, job_id, lost.attempt, token(2, 2), 60)
    over = taken(client, job_id)
    assert (over.outcome, over.attempt, over.next_id) == ("run", 2, 2)
    entries = read_log(client, job_id)
    assert reply_so_far(entries) == ReplySoFar("xx", [100, 101], 2)
    started = [entry.event.data.attempt for entry in entries if entry.event and entry.event.id < 0]
    assert started == [1, 2]


def test_a_job_is_exhausted_by_strikes_its_deaths_while_alone_without_progress(client: redis.Redis) -> None:
    job_id = opened(client)
    first = taken(client, job_id, max_attempts=2)
    emit(client, job_id, first.attempt, token(0), 60)
    second = taken(client, job_id, max_attempts=2)  # its worker died beside others: no strike
    runs_alone(client, job_id, second.attempt)  # then it died alone, before a token: strike 1
    third = taken(client, job_id, max_attempts=2)
    assert third.outcome == "run"
    runs_alone(client, job_id, third.attempt)
    emit(client, job_id, third.attempt, token(third.next_id), 60)  # progress in its window: no strike
    fourth = taken(client, job_id, max_attempts=2)
    assert fourth.outcome == "run"
    runs_alone(client, job_id, fourth.attempt)  # alone, no token: strike 2
    last = taken(client, job_id, max_attempts=2)
    assert last.outcome == "exhausted"
    error = JobEvent(id=last.next_id, event="error", data=ErrorData(code="worker_lost", message="m"))
    finish(client, job_id, last.attempt, error, 60)
    assert state(client, job_id) == "error"


def test_a_job_is_exhausted_after_takeovers_of_any_cause(client: redis.Redis) -> None:
    job_id = opened(client)
    outcomes = [taken(client, job_id, max_attempts=1).outcome for _ in range(ANY_CAUSE_FACTOR + 1)]
    assert outcomes == ["run"] * ANY_CAUSE_FACTOR + ["exhausted"]


def reach(client: redis.Redis, start: str) -> tuple[str, int]:
    """A job in state `start` ("" for none), and the attempt that holds it."""
    job_id = uuid.uuid4().hex if start == "" else opened(client)
    attempt = 0
    if start in ("running", "done", "cancelled"):
        attempt = taken(client, job_id).attempt
    if start == "done":
        finish(client, job_id, attempt, done(0), 60)
    if start == "cancelled":
        event = JobEvent(id=0, event="done", data=DoneData(finish_reason="cancelled"))
        finish(client, job_id, attempt, event, 60)
    if start == "error":
        ended_by_api(client, job_id, code="no_worker")
    assert state(client, job_id) == start
    return job_id, attempt


def tried(client: redis.Redis, transition: str, job_id: str, attempt: int) -> bool:
    """Whether the transition happened."""
    try:
        if transition == "take":
            return taken(client, job_id).outcome == "run"
        if transition == "emit":
            emit(client, job_id, attempt, token(0), 60)
        elif transition == "finish":
            finish(client, job_id, attempt, done(0), 60)
        elif transition == "requeue":
            return requeued(client, job_id, attempt)
        else:
            return ended_by_api(client, job_id) is not None
    except JobFenced:
        return False
    return True


@pytest.mark.parametrize("start", ["", "queued", "running", "done", "error", "cancelled"])
@pytest.mark.parametrize("transition", sorted(LEGAL_FROM))
def test_every_transition_happens_exactly_from_its_legal_states(
    client: redis.Redis, transition: str, start: str
) -> None:
    job_id, attempt = reach(client, start)
    assert tried(client, transition, job_id, attempt) == allowed(transition, start)
