"""The job log's resume rule, on log entries as Redis returns them: the events after the client's last
id, and always the `started` record (id -1) that tells the relay the job has left the queue."""

import asyncio
import json
from datetime import UTC, datetime

from api.streams.job_log import LogSource
from jobs.log import EVENT_FIELD, QUEUED_FIELD, parse_entry
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
