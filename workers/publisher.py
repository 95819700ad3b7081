"""Publishes a job's events on its Redis pub/sub channel, numbering them for the SSE `id`.

Each event is also appended to the job's log (a capped Redis stream that expires `log_ttl_s` after
the last event) in the same pipeline as the PUBLISH, so a token still costs one round trip; the
XADD goes first, so any event a client has seen is already in the log when it resumes.

The terminal event (`done`, `error`) also marks the job ended, so a redelivered message of it is not
run again; it is retried while Redis is unreachable (a token is not: the client's stream has ended
with `redis_unavailable` by then, and the job stops).
"""

import logging
import time
from enum import Enum

import redis

from schemas.events import (
    DoneData,
    ErrorData,
    JobEvent,
    SourceRef,
    StartedData,
    TokenData,
    TokenLogprob,
    Usage,
)
from schemas.job_log import EVENT_FIELD, LOG_MAX_ENTRIES
from schemas.redis_keys import (
    admission_key,
    job_attempts_key,
    job_cancel_key,
    job_channel,
    job_ended_key,
    job_log_key,
    job_turn_key,
    quota_jobs_key,
    quota_queued_key,
    quota_tokens_key,
)

log = logging.getLogger(__name__)

TURN_POLL_S = 0.02
# A terminal event is retried this long while Redis is unreachable, backing off up to FINAL_MAX_BACKOFF_S.
FINAL_RETRY_S = 300.0
FINAL_MAX_BACKOFF_S = 5.0
# The end mark and the attempt count outlive any redelivery of the job's message (kombu's Redis
# transport restores an unacked message after its visibility timeout, an hour by default).
MARK_TTL_S = 24 * 3600


class Admission(Enum):
    RUN = "run"
    ENDED = "ended"  # already ended (finished, or ended by the API): a redelivered message
    EXHAUSTED = "exhausted"  # taken too many times (each run lost its worker)


class EventPublisher:
    def __init__(
        self,
        client: redis.Redis,
        job_id: str,
        log_ttl_s: int,
        queue: str | None = None,
        quota: str | None = None,
    ) -> None:
        """`queue`: the queue that admitted the job (api/streams/backpressure.py), freed once it starts.
        `quota`: the API key whose quotas count the job (api/streams/quotas.py): its queued tokens are
        freed once it starts, its place among the key's concurrent jobs once it ends."""
        self._quota = quota
        self.client = client
        self.job_id = job_id
        self._admission_key = admission_key(queue) if queue else None
        self._channel = job_channel(job_id)
        self._cancel_key = job_cancel_key(job_id)
        self._ended_key = job_ended_key(job_id)
        self._turn_key = job_turn_key(job_id)
        self._log_key = job_log_key(job_id)
        self._log_ttl_s = log_ttl_s
        self._next_id = 0
        self._token_index = 0

    def _event(self, event: str, data) -> str:
        message = JobEvent(id=self._next_id, event=event, data=data).model_dump_json()
        self._next_id += 1
        return message

    def _send(self, message: str, final: bool = False) -> bool:
        """Log and publish one event; True when the client asked for the job to stop."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(self._log_key, {EVENT_FIELD: message}, maxlen=LOG_MAX_ENTRIES, approximate=True)
        pipe.expire(self._log_key, self._log_ttl_s)
        pipe.publish(self._channel, message)
        if final:
            pipe.set(self._ended_key, 1, ex=MARK_TTL_S)
            if self._quota:
                pipe.zrem(quota_jobs_key(self._quota), self.job_id)
        pipe.exists(self._cancel_key)
        return bool(pipe.execute()[-1])

    def _send_final(self, message: str) -> None:
        """The terminal event, retried with a backoff while Redis is unreachable."""
        deadline, backoff_s = time.monotonic() + FINAL_RETRY_S, 0.25
        while True:
            try:
                self._send(message, final=True)
                return
            except redis.RedisError as exc:
                if time.monotonic() > deadline:
                    log.error("job %s: its terminal event could not be published: %s", self.job_id, exc)
                    raise
                log.warning("job %s: terminal event not published (%s); retrying", self.job_id, exc)
                time.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, FINAL_MAX_BACKOFF_S)

    def admit(self, max_attempts: int) -> Admission:
        """Whether to run the job now that a worker has taken its message."""
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(self._ended_key)
        pipe.incr(job_attempts_key(self.job_id))
        pipe.expire(job_attempts_key(self.job_id), MARK_TTL_S)
        ended, attempts, _ = pipe.execute()
        if ended:
            return Admission.ENDED
        return Admission.EXHAUSTED if attempts > max_attempts else Admission.RUN

    def continue_log(self) -> str:
        """Number the next events after the log's last one; the text of the last run in the log."""
        pieces: list[str] = []
        for _entry_id, fields in self.client.xrange(self._log_key):
            raw = fields.get(EVENT_FIELD.encode())
            if raw is None:
                continue
            event = JobEvent.model_validate_json(raw)
            if event.event == "started":
                pieces.clear()
            elif event.event == "token":
                pieces.append(event.data.text)
                self._token_index = event.data.index + 1
            self._next_id = max(self._next_id, event.id + 1)
        return "".join(pieces)

    def started(self, worker: str, process: str | None = None) -> bool:
        """Tell the API the job left the queue; True when it was cancelled while it waited."""
        pipe = self.client.pipeline(transaction=False)
        if self._admission_key:
            pipe.zrem(self._admission_key, self.job_id)
        if self._quota:
            pipe.zrem(quota_queued_key(self._quota), self.job_id)
            pipe.hdel(quota_tokens_key(self._quota), self.job_id)
        if len(pipe):
            pipe.execute()
        # Not part of the client's numbered stream (id -1).
        data = StartedData(worker=worker, process=process)
        return self._send(JobEvent(id=-1, event="started", data=data).model_dump_json())

    def wait_for_turn(self, timeout_s: float) -> None:
        """Until the API has stored the user's turn (or given up on the job: its cancel flag), so a
        short reply is not stored before, or instead of, the turn it answers."""
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline and not self.client.exists(self._turn_key, self._cancel_key):
                time.sleep(TURN_POLL_S)
        except redis.RedisError:
            log.warning(
                "job %s: Redis unavailable; storing the reply without waiting for its turn", self.job_id
            )

    def token(self, text: str, logprobs: list[TokenLogprob] | None = None) -> bool:
        """Publish one token; True when the client asked for the job to stop."""
        data = TokenData(text=text, index=self._token_index, logprobs=logprobs)
        cancelled = self._send(self._event("token", data))
        self._token_index += 1
        return cancelled

    def done(
        self, finish_reason: str, usage: Usage, message_id: str | None, sources: list[SourceRef] | None = None
    ) -> None:
        data = DoneData(
            finish_reason=finish_reason, usage=usage, message_id=message_id, sources=sources or []
        )
        self._send_final(self._event("done", data))

    def error(self, code: str, message: str) -> None:
        self._send_final(self._event("error", ErrorData(code=code, message=message)))
