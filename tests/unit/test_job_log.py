"""The job log's resume rule, on log entries as Redis returns them: the events after the client's last
id, and always the `started` record (id -1) that tells the relay the job has left the queue."""

import asyncio
import json
from datetime import UTC, datetime

from api.streams.job_log import LogSource
from api.streams.job_status import summarize
from jobs.log import EVENT_FIELD, IDS_FIELD, QUEUED_FIELD, ReplySoFar, parse_entry, reply_so_far
from schemas.events import JobEvent
from schemas.job_log import QueuedRecord

DATA = {"started": {"worker": "w"}, "token": {"text": "a", "index": 0}, "done": {"finish_reason": "length"}}


def event_entry(entry_id: str, event_id: int, name: str = "token") -> tuple[bytes, dict]:
    event = {"id": event_id, "event": name, "data": DATA[name]}
    return entry_id.encode(), {EVENT_FIELD.encode(): json.dumps(event).encode()}


def logged(tokens: int) -> list:
    """A finished job's log: queued, started (-1), `tokens` tokens, done."""
    queued = (
        b"1700000000000-0",
        {QUEUED_FIELD.encode(): QueuedRecord(model="m", queue="q").model_dump_json()},
    )
    events = [event_entry("1700000000001-0", -1, "started")]
    events += [event_entry(f"1700000000{2 + i:03d}-0", i) for i in range(tokens)]
    events.append(event_entry("1700000000999-0", tokens, "done"))
    return [parse_entry(entry_id, fields) for entry_id, fields in [queued, *events]]


def backlog(entries: list, after_id: int | None) -> list[int]:
    """What a client resuming after `after_id` is sent first, read from the log alone (no Redis)."""
    source = LogSource(None, "job", entries, after_id)
    return [event.id for event in asyncio.run(source.receive(timeout_s=0))]


def test_an_entry_is_read_with_the_time_redis_stored_it() -> None:
    queued = parse_entry(
        "1700000000123-4", {QUEUED_FIELD: QueuedRecord(model="m", queue="q", detach=True).model_dump_json()}
    )
    token = parse_entry(*event_entry("1700000000500-0", 3))

    assert (queued.entry_id, queued.at) == (
        "1700000000123-4",
        datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC),
    )
    assert queued.queued == QueuedRecord(model="m", queue="q", detach=True) and queued.event is None
    assert token.at == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)
    assert (token.entry_id, token.event, token.queued) == (
        "1700000000500-0",
        JobEvent(id=3, event="token", data={"text": "a", "index": 0}),
        None,
    )


def test_resuming_after_an_early_event_gives_exactly_the_events_after_it() -> None:
    entries = logged(tokens=50)

    assert backlog(entries, after_id=4) == [-1, *range(5, 51)]
    assert backlog(entries, after_id=0) == [-1, *range(1, 51)]
    assert backlog(entries, after_id=49) == [-1, 50]
    assert backlog(entries, after_id=50) == [-1]


def test_a_client_without_a_last_id_gets_every_event() -> None:
    assert backlog(logged(tokens=3), after_id=None) == [-1, 0, 1, 2, 3]


def test_the_backlog_is_sent_once_then_the_source_follows_the_log_from_its_last_entry() -> None:
    entries = logged(tokens=2)
    source = LogSource(None, "job", entries, after_id=None)

    first = asyncio.run(source.receive(timeout_s=0))

    assert [event.id for event in first] == [-1, 0, 1, 2]
    assert source._backlog == [] and source._cursor == "1700000000999-0"
    assert LogSource(None, "job", [], after_id=None)._cursor == "0-0"


def test_a_taken_over_job_reads_as_one_reply_with_its_first_start_and_its_last_worker() -> None:
    def started(entry_id: str, worker: str, attempt: int) -> tuple[bytes, dict]:
        event = {"id": -1, "event": "started", "data": {"worker": worker, "attempt": attempt}}
        return entry_id.encode(), {EVENT_FIELD.encode(): json.dumps(event).encode()}

    def token(entry_id: str, event_id: int, text: str, ids: str) -> tuple[bytes, dict]:
        event = {"id": event_id, "event": "token", "data": {"text": text, "index": event_id}}
        return entry_id.encode(), {
            EVENT_FIELD.encode(): json.dumps(event).encode(),
            IDS_FIELD.encode(): ids.encode(),
        }

    raw = [
        started("1700000001000-0", "w1", 1),
        token("1700000001100-0", 0, "Once", "11"),
        token("1700000001200-0", 1, " upon", "12,13"),
        started("1700000009000-0", "w2", 2),  # w1 died; w2 continues
        token("1700000009100-0", 2, " a time", "14,15"),
        event_entry("1700000009200-0", 3, "done"),
    ]
    entries = [parse_entry(entry_id, fields) for entry_id, fields in raw]

    status = summarize("job", entries, queue_timeout_s=300, now=entries[-1].at)

    assert (status.state, status.text, status.tokens, status.worker) == ("done", "Once upon a time", 3, "w2")
    assert status.timings.started_at == entries[0].at
    assert reply_so_far(entries[:3]) == ReplySoFar("Once upon", [11, 12, 13], 2)
