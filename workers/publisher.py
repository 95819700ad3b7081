"""Publishes a job's events on its Redis pub/sub channel, numbering them for the SSE `id`.

Each event is also appended to the job's log (a capped Redis stream that expires `log_ttl_s` after
the last event) in the same pipeline as the PUBLISH, so a token still costs one round trip; the
XADD goes first, so any event a client has seen is already in the log when it resumes.
"""

import redis

from schemas.events import DoneData, ErrorData, JobEvent, SourceRef, StartedData, TokenData, Usage
from schemas.job_log import EVENT_FIELD, LOG_MAX_ENTRIES
from schemas.redis_keys import admission_key, job_cancel_key, job_channel, job_log_key


class EventPublisher:
    def __init__(self, client: redis.Redis, job_id: str, log_ttl_s: int, queue: str | None = None) -> None:
        """`queue`: the queue that admitted the job (api/backpressure.py), freed once it starts."""
        self._client = client
        self._job_id = job_id
        self._admission_key = admission_key(queue) if queue else None
        self._channel = job_channel(job_id)
        self._cancel_key = job_cancel_key(job_id)
        self._log_key = job_log_key(job_id)
        self._log_ttl_s = log_ttl_s
        self._next_id = 0
        self._token_index = 0

    def _event(self, event: str, data) -> str:
        message = JobEvent(id=self._next_id, event=event, data=data).model_dump_json()
        self._next_id += 1
        return message

    def _send(self, message: str) -> bool:
        """Log and publish one event; True when the client asked for the job to stop."""
        pipe = self._client.pipeline(transaction=False)
        pipe.xadd(self._log_key, {EVENT_FIELD: message}, maxlen=LOG_MAX_ENTRIES, approximate=True)
        pipe.expire(self._log_key, self._log_ttl_s)
        pipe.publish(self._channel, message)
        pipe.exists(self._cancel_key)
        return bool(pipe.execute()[-1])

    def started(self, worker: str) -> bool:
        """Tell the API the job left the queue; True when it was cancelled while it waited."""
        if self._admission_key:
            self._client.zrem(self._admission_key, self._job_id)
        # Not part of the client's numbered stream (id -1).
        return self._send(JobEvent(id=-1, event="started", data=StartedData(worker=worker)).model_dump_json())

    def token(self, text: str) -> bool:
        """Publish one token; True when the client asked for the job to stop."""
        cancelled = self._send(self._event("token", TokenData(text=text, index=self._token_index)))
        self._token_index += 1
        return cancelled

    def done(
        self, finish_reason: str, usage: Usage, message_id: str | None, sources: list[SourceRef] | None = None
    ) -> None:
        data = DoneData(
            finish_reason=finish_reason, usage=usage, message_id=message_id, sources=sources or []
        )
        self._send(self._event("done", data))

    def error(self, code: str, message: str) -> None:
        self._send(self._event("error", ErrorData(code=code, message=message)))
