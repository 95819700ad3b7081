"""Publishes a job's events on its Redis pub/sub channel, numbering them for the SSE `id`."""

import redis

from schemas.events import DoneData, ErrorData, JobEvent, SourceRef, StartedData, TokenData, Usage
from schemas.redis_keys import job_cancel_key, job_channel


class EventPublisher:
    def __init__(self, client: redis.Redis, job_id: str) -> None:
        self._client = client
        self._channel = job_channel(job_id)
        self._cancel_key = job_cancel_key(job_id)
        self._next_id = 0
        self._token_index = 0

    def _event(self, event: str, data) -> str:
        message = JobEvent(id=self._next_id, event=event, data=data).model_dump_json()
        self._next_id += 1
        return message

    def started(self, worker: str) -> None:
        # Not part of the client's numbered stream: it only tells the API the job left the queue.
        self._client.publish(
            self._channel, JobEvent(id=-1, event="started", data=StartedData(worker=worker)).model_dump_json()
        )

    def token(self, text: str) -> bool:
        """Publish one token; True when the client asked for the job to stop."""
        pipe = self._client.pipeline(transaction=False)
        pipe.publish(self._channel, self._event("token", TokenData(text=text, index=self._token_index)))
        pipe.exists(self._cancel_key)
        _, cancelled = pipe.execute()
        self._token_index += 1
        return bool(cancelled)

    def done(
        self, finish_reason: str, usage: Usage, message_id: str | None, sources: list[SourceRef] | None = None
    ) -> None:
        data = DoneData(
            finish_reason=finish_reason, usage=usage, message_id=message_id, sources=sources or []
        )
        self._client.publish(self._channel, self._event("done", data))

    def error(self, code: str, message: str) -> None:
        self._client.publish(self._channel, self._event("error", ErrorData(code=code, message=message)))
