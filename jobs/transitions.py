"""Every change of a job's state, each one Redis script (atomic, one round trip), for the worker
(sync client) and the API (asyncio client) alike.

A script checks the job's state hash (jobs/keys.py `job_state_key`) against the legal moves
(jobs/states.py), changes it, and appends the event to the job's log and publishes it, in that order,
so an event a client has seen is already in the log. The worker's writes also carry its attempt
number: a worker whose job was ended by the API (its client told `worker_lost`) or taken by another
attempt is refused at its next write and stops, so a job has one writer at a time and its event ids
never repeat. The ids: the worker numbers its events (it is the only writer while it runs) and the
state hash keeps the next one, which the API's `end` uses.

A redis-py script object is bound to no client: each is made once per kind of client (sync, asyncio)
and run with the client (or pipeline) it is given.
"""

import time
from dataclasses import dataclass
from typing import Literal

import redis
import redis.asyncio as aioredis

from jobs.keys import (
    CANCEL_FLAG_TTL_S,
    RUNNING_JOBS_KEY,
    STATE_TTL_S,
    admission_key,
    job_cancel_key,
    job_channel,
    job_log_key,
    job_state_key,
    job_turn_key,
    quota_jobs_key,
    quota_queued_key,
    quota_tokens_key,
)
from jobs.log import EVENT_FIELD, IDS_FIELD, LOG_MAX_ENTRIES, QUEUED_FIELD
from jobs.states import ENDED, LEGAL_FROM, Transition
from schemas.events import ErrorData, JobEvent, StartedData
from schemas.job_log import QueuedRecord

_PRELUDE = """
local function allowed(state, legal)
  return string.find(legal, ',' .. (state or '') .. ',', 1, true) ~= nil
end
local function append(log, channel, event, ttl, maxlen, ids)
  if ids and ids ~= '' then
    redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'EVENT_FIELD', event, 'IDS_FIELD', ids)
  else
    redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'EVENT_FIELD', event)
  end
  redis.call('EXPIRE', log, ttl)
  redis.call('PUBLISH', channel, event)
end
"""
_PRELUDE = _PRELUDE.replace("EVENT_FIELD", EVENT_FIELD).replace("IDS_FIELD", IDS_FIELD)

# KEYS: state, log, channel, cancel, admission|'', quota queued|'', quota tokens|'', running jobs
# ARGV: legal, max strikes, `started` data without its attempt, log ttl, state ttl, log maxlen, job id,
#       the worker process, now, max attempts
_TAKE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not allowed(state, ARGV[1]) then return {'ended', 0, 0, 0} end
local was = redis.call('HMGET', KEYS[1], 'attempt', 'alone_attempt', 'alone_from', 'next_id')
if was[1] and was[1] == was[2] and was[3] == (was[4] or '0') then
  -- its last attempt ran alone and its worker died before it streamed a token: its own fault
  redis.call('HINCRBY', KEYS[1], 'strikes', 1)
end
local strikes = tonumber(redis.call('HGET', KEYS[1], 'strikes') or '0')
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'state', 'running', 'process', ARGV[8])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[8], ARGV[9], ARGV[7])
if KEYS[5] ~= '' then redis.call('ZREM', KEYS[5], ARGV[7]) end
if KEYS[6] ~= '' then
  redis.call('ZREM', KEYS[6], ARGV[7])
  redis.call('HDEL', KEYS[7], ARGV[7])
end
local next_id = tonumber(redis.call('HGET', KEYS[1], 'next_id') or '0')
if strikes >= tonumber(ARGV[2]) or attempt > tonumber(ARGV[10]) then
  return {'exhausted', attempt, next_id, 0}
end
local data = string.sub(ARGV[3], 1, -2) .. ',"attempt":' .. attempt .. '}'
append(KEYS[2], KEYS[3], '{"id":-1,"event":"started","data":' .. data .. '}', ARGV[4], ARGV[6])
return {'run', attempt, next_id, redis.call('EXISTS', KEYS[4])}
"""

# KEYS: state, log, channel, cancel
# ARGV: legal, attempt, event, its id, log ttl, log maxlen, the reply token ids its text completes
_EMIT = """
local now = redis.call('HMGET', KEYS[1], 'state', 'attempt')
if not allowed(now[1], ARGV[1]) or now[2] ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], 'next_id', tonumber(ARGV[4]) + 1)
append(KEYS[2], KEYS[3], ARGV[3], ARGV[5], ARGV[6], ARGV[7])
return redis.call('EXISTS', KEYS[4])
"""

# KEYS: state, log, channel, quota jobs|'', running jobs
# ARGV: legal, attempt, event, its id, log ttl, log maxlen, final state, state ttl, job id
_FINISH = """
local now = redis.call('HMGET', KEYS[1], 'state', 'attempt')
if not allowed(now[1], ARGV[1]) or now[2] ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], 'state', ARGV[7], 'next_id', tonumber(ARGV[4]) + 1)
redis.call('EXPIRE', KEYS[1], ARGV[8])
append(KEYS[2], KEYS[3], ARGV[3], ARGV[5], ARGV[6])
if KEYS[4] ~= '' then redis.call('ZREM', KEYS[4], ARGV[9]) end
redis.call('ZREM', KEYS[5], ARGV[9])
return 0
"""

# KEYS: state, log, channel, cancel, quota jobs|'', quota queued|'', quota tokens|'', admission|'',
#       running jobs
# ARGV: legal, error data (JSON), log ttl, state ttl, cancel ttl, job id, log maxlen
_END = """
local state = redis.call('HGET', KEYS[1], 'state')
if not allowed(state, ARGV[1]) then return -1 end
local id = tonumber(redis.call('HGET', KEYS[1], 'next_id') or '0')
local event = '{"id":' .. id .. ',"event":"error","data":' .. ARGV[2] .. '}'
redis.call('HSET', KEYS[1], 'state', 'error', 'next_id', id + 1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[4], 1, 'EX', ARGV[5])
if KEYS[5] ~= '' then
  redis.call('ZREM', KEYS[5], ARGV[6])
  redis.call('ZREM', KEYS[6], ARGV[6])
  redis.call('HDEL', KEYS[7], ARGV[6])
end
if KEYS[8] ~= '' then redis.call('ZREM', KEYS[8], ARGV[6]) end
redis.call('ZREM', KEYS[9], ARGV[6])
append(KEYS[2], KEYS[3], event, ARGV[3], ARGV[7])
return id
"""

# KEYS: state
# ARGV: legal, attempt
_ALONE = """
local now = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'next_id')
if not allowed(now[1], ARGV[1]) or now[2] ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], 'alone_attempt', ARGV[2], 'alone_from', now[3] or '0')
return 0
"""

# KEYS: state, running jobs
# ARGV: legal, the attempt whose worker is gone, job id
_REQUEUE = """
local now = redis.call('HMGET', KEYS[1], 'state', 'attempt')
if not allowed(now[1], ARGV[1]) or now[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued')
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
"""

_scripts: dict[tuple[str, bool], object] = {}


def _run(source: str, client, keys: list[str], args: list):
    """Run a script (with the helpers every script may call) with `client` (sync or asyncio; await
    the result of the latter)."""
    kind = (source, isinstance(client, aioredis.Redis))
    if kind not in _scripts:
        _scripts[kind] = client.register_script(_PRELUDE + source)
    return _scripts[kind](keys=keys, args=args, client=client)


def _legal(transition: Transition) -> str:
    return "," + ",".join(sorted(LEGAL_FROM[transition])) + ","


def _quota_keys(quota: str | None) -> list[str]:
    if not quota:
        return ["", "", ""]
    return [quota_jobs_key(quota), quota_queued_key(quota), quota_tokens_key(quota)]


# A job's takeovers, whatever killed its workers, are capped at this many times its strikes (below).
ANY_CAUSE_FACTOR = 4


class JobFenced(Exception):
    """The job is no longer this attempt's: ended by the API, or taken again by another attempt."""


# ---- the worker's side (sync client) ----


@dataclass(frozen=True)
class Taken:
    """What `take` found: run the job, or not (already ended; taken too many times)."""

    outcome: Literal["run", "ended", "exhausted"]
    attempt: int  # this attempt's number: every later write carries it
    next_id: int  # the id of the job's next event
    cancelled: bool  # its client had gone while it waited


def take(
    client: redis.Redis,
    job_id: str,
    *,
    max_attempts: int,
    started: StartedData,
    log_ttl_s: int,
    queue: str | None = None,
    quota: str | None = None,
) -> Taken:
    """A worker has the job's message: count the attempt and, unless the job has ended or is
    exhausted, mark it running and say so (`started`, id -1: the API learns the job left the queue).
    The job's place in its queue's admission and its key's queued tokens are free from now on.

    Exhausted: a job whose worker died while it ran alone, before it streamed a token, `max_attempts`
    times (a strike each: poison input, see workers/takeover_gate.py), or taken over
    ANY_CAUSE_FACTOR times that often whatever killed its workers."""
    data = started.model_dump_json(exclude={"attempt"})  # the script adds the attempt it counts
    keys = [
        job_state_key(job_id), job_log_key(job_id), job_channel(job_id), job_cancel_key(job_id),
        admission_key(queue) if queue else "", *_quota_keys(quota)[1:], RUNNING_JOBS_KEY,
    ]  # fmt: skip
    args = [
        _legal("take"), max_attempts, data, log_ttl_s, STATE_TTL_S, LOG_MAX_ENTRIES, job_id,
        started.process or "", time.time(), max_attempts * ANY_CAUSE_FACTOR,
    ]  # fmt: skip
    outcome, attempt, next_id, cancelled = _run(_TAKE, client, keys, args)
    outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
    return Taken(outcome, int(attempt), int(next_id), bool(cancelled))


def emit(
    client: redis.Redis,
    job_id: str,
    attempt: int,
    event: JobEvent,
    log_ttl_s: int,
    token_ids: list[int] | None = None,
) -> bool:
    """Log and publish one event of the running attempt (the log also keeps the reply token ids its
    text completes, for a takeover); True when its client asked it to stop. Raises JobFenced when the
    job is no longer this attempt's."""
    keys = [job_state_key(job_id), job_log_key(job_id), job_channel(job_id), job_cancel_key(job_id)]
    ids = ",".join(map(str, token_ids or ()))
    args = [_legal("emit"), attempt, event.model_dump_json(), event.id, log_ttl_s, LOG_MAX_ENTRIES, ids]
    answer = _run(_EMIT, client, keys, args)
    if answer < 0:
        raise JobFenced(job_id)
    return bool(answer)


def finish(
    client: redis.Redis,
    job_id: str,
    attempt: int,
    event: JobEvent,
    log_ttl_s: int,
    quota: str | None = None,
) -> None:
    """The attempt's terminal event (`done` or `error`): the job ends, its key's quota counts it no
    more. Raises JobFenced when the job is no longer this attempt's."""
    state = "cancelled" if event.event == "done" and event.data.finish_reason == "cancelled" else None
    state = state or ("done" if event.event == "done" else "error")
    keys = [
        job_state_key(job_id), job_log_key(job_id), job_channel(job_id), _quota_keys(quota)[0],
        RUNNING_JOBS_KEY,
    ]  # fmt: skip
    args = [
        _legal("finish"), attempt, event.model_dump_json(), event.id, log_ttl_s, LOG_MAX_ENTRIES,
        state, STATE_TTL_S, job_id,
    ]  # fmt: skip
    if _run(_FINISH, client, keys, args) < 0:
        raise JobFenced(job_id)


def runs_alone(client: redis.Redis, job_id: str, attempt: int) -> None:
    """The attempt runs alone on its worker (a takeover, until it streams a token): should the worker
    die meanwhile, the job is to blame, a strike (`take`). Raises JobFenced when the job is no
    longer this attempt's."""
    if _run(_ALONE, client, [job_state_key(job_id)], [_legal("emit"), attempt]) < 0:
        raise JobFenced(job_id)


def cancel_requested(client: redis.Redis, job_id: str) -> bool:
    """Whether the job's client (or the API) has asked for it to stop."""
    return bool(client.exists(job_cancel_key(job_id)))


def still_wanted(client: redis.Redis, job_id: str) -> bool:
    """Whether nobody has asked the job to stop; with Redis unreachable, yes for now (its next write
    will tell)."""
    try:
        return not cancel_requested(client, job_id)
    except redis.RedisError:
        return True


def turn_stored_or_cancelled(client: redis.Redis, job_id: str) -> bool:
    """Whether the API has stored the user's turn the job answers (or given up on the job)."""
    return bool(client.exists(job_turn_key(job_id), job_cancel_key(job_id)))


# ---- the API's side (asyncio client) ----


@dataclass(frozen=True)
class RunningJob:
    """A running job as its state hash has it: what the recovery sweep needs to take it over."""

    job_id: str
    attempt: int
    process: str
    job: str | None  # the job's JSON (a chat's; a batch item has its own recovery)


async def running_jobs(client: aioredis.Redis) -> list[RunningJob]:
    job_ids = [job_id.decode() for job_id in await client.zrange(RUNNING_JOBS_KEY, 0, -1)]
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hmget(job_state_key(job_id), "state", "attempt", "process", "job")
    running, gone = [], []
    for job_id, (state, attempt, process, job) in zip(job_ids, await pipe.execute(), strict=True):
        if state == b"running":
            running.append(RunningJob(job_id, int(attempt), process.decode(), job and job.decode()))
        elif state is None:  # its state has lapsed (STATE_TTL_S): nothing is left to take over
            gone.append(job_id)
    if gone:
        await client.zrem(RUNNING_JOBS_KEY, *gone)
    return running


async def ended(client: aioredis.Redis, job_ids: list[str]) -> set[str]:
    """Those of the jobs that have ended."""
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(job_state_key(job_id), "state")
    states = await pipe.execute()
    return {
        job_id for job_id, state in zip(job_ids, states, strict=True) if state and state.decode() in ENDED
    }


async def never_started(client: aioredis.Redis, job_ids: list[str]) -> set[str]:
    """Those of the jobs no worker has taken yet: still `queued`, or without a state (a batch item
    gets one when it is taken)."""
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(job_state_key(job_id), "state")
    states = await pipe.execute()
    return {job_id for job_id, state in zip(job_ids, states, strict=True) if state in (None, b"queued")}


async def requeue(client: aioredis.Redis, job_id: str, attempt: int) -> bool:
    """The worker of `attempt` is gone: the job waits for another worker, which takes it over (its
    old worker, should it wake, is refused at its next write). False when the job has moved on
    meanwhile (ended, or taken again): then nothing is to be sent."""
    keys = [job_state_key(job_id), RUNNING_JOBS_KEY]
    return bool(await _run(_REQUEUE, client, keys, [_legal("requeue"), attempt, job_id]))


async def open_job(
    client: aioredis.Redis, job_id: str, record: QueuedRecord, log_ttl_s: int, job: str
) -> None:
    """Before the job is enqueued: its state `queued`, with the job itself (JSON, to send it again
    if its worker is lost), and its log started with what the API knows."""
    pipe = client.pipeline(transaction=False)
    pipe.hsetnx(job_state_key(job_id), "state", "queued")
    pipe.hset(job_state_key(job_id), "job", job)
    pipe.expire(job_state_key(job_id), STATE_TTL_S)
    pipe.xadd(job_log_key(job_id), {QUEUED_FIELD: record.model_dump_json()})
    pipe.expire(job_log_key(job_id), log_ttl_s)
    await pipe.execute()


async def mark_turn_stored(client: aioredis.Redis, job_id: str, ttl_s: int) -> None:
    await client.set(job_turn_key(job_id), 1, ex=ttl_s)


async def end_job(
    client: aioredis.Redis,
    job_id: str,
    error: ErrorData,
    log_ttl_s: int,
    *,
    quota: str | None = None,
    queue: str | None = None,
) -> int | None:
    """The API ends the job for its client (no_worker, queue_timeout, worker_lost): the error goes
    into its log, its cancel flag stops a worker that is still on it, its quotas and queue place are
    free. The error event's id; None when the job had already ended."""
    keys = [
        job_state_key(job_id), job_log_key(job_id), job_channel(job_id), job_cancel_key(job_id),
        *_quota_keys(quota), admission_key(queue) if queue else "", RUNNING_JOBS_KEY,
    ]  # fmt: skip
    args = [
        _legal("end"), error.model_dump_json(), log_ttl_s, STATE_TTL_S, CANCEL_FLAG_TTL_S, job_id,
        LOG_MAX_ENTRIES,
    ]  # fmt: skip
    event_id = await _run(_END, client, keys, args)
    return None if event_id < 0 else int(event_id)


def _release(pipe, job_id: str, queue: str | None, quota: str | None) -> None:
    if queue:
        pipe.zrem(admission_key(queue), job_id)
    if quota:
        pipe.zrem(quota_jobs_key(quota), job_id)
        pipe.zrem(quota_queued_key(quota), job_id)
        pipe.hdel(quota_tokens_key(quota), job_id)


async def release(client: aioredis.Redis, job_id: str, queue: str | None = None, quota: str | None = None):
    """A job that will not run (refused, or never enqueued) gives back its queue place and quotas."""
    pipe = client.pipeline(transaction=False)
    _release(pipe, job_id, queue, quota)
    if len(pipe):
        await pipe.execute()


async def cancel_jobs(client: aioredis.Redis, job_ids: list[str]) -> None:
    """Ask the workers to stop the jobs at their next token (or before they start), in one round trip."""
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.set(job_cancel_key(job_id), 1, ex=CANCEL_FLAG_TTL_S)
    await pipe.execute()


async def cancel_job(
    client: aioredis.Redis, job_id: str, queue: str | None = None, quota: str | None = None
) -> None:
    """Stop one job; one still waiting gives its queue place back at once (it is skipped when its
    turn comes), and its key's quotas count it no more."""
    pipe = client.pipeline(transaction=False)
    pipe.set(job_cancel_key(job_id), 1, ex=CANCEL_FLAG_TTL_S)
    _release(pipe, job_id, queue, quota)
    await pipe.execute()
