"""Publishes one attempt's events of a job (jobs/transitions.py `emit`, `finish`), numbering them for
the SSE `id`.

A token costs one round trip: the script logs it, publishes it and answers whether the client asked
the job to stop. The terminal event (`done`, `error`) is retried while Redis is unreachable (a token
is not: the client's stream has ended with `redis_unavailable` by then, and the job stops). A write
refused because the job is no longer this attempt's (the API ended it, or another attempt took it)
marks the publisher `fenced`: the job stops and nothing more is written.
"""

import logging
import time

import redis

from jobs.transitions import JobFenced, emit, finish
from schemas.events import DoneData, ErrorData, JobEvent, SourceRef, TokenData, TokenLogprob, Usage

log = logging.getLogger(__name__)

# A terminal event is retried this long while Redis is unreachable, backing off up to FINAL_MAX_BACKOFF_S.
FINAL_RETRY_S = 300.0
FINAL_MAX_BACKOFF_S = 5.0


class EventPublisher:
    def __init__(
        self,
        client: redis.Redis,
        job_id: str,
        attempt: int,
        next_id: int,
        log_ttl_s: int,
        quota: str | None = None,
        token_index: int = 0,
    ) -> None:
        """`next_id`: the id of the attempt's first event; `token_index`: of its first token.
        `quota`: the API key whose concurrent jobs count the job until its terminal event."""
        self.client = client
        self.job_id = job_id
        self.fenced = False
        self._attempt = attempt
        self._next_id = next_id
        self._token_index = token_index
        self._log_ttl_s = log_ttl_s
        self._quota = quota

    def _event(self, event: str, data) -> JobEvent:
        numbered = JobEvent(id=self._next_id, event=event, data=data)
        self._next_id += 1
        return numbered

    def token(
        self, text: str, logprobs: list[TokenLogprob] | None = None, token_ids: list[int] | None = None
    ) -> bool:
        """Publish one piece of the reply (logged with the token ids its text completes); True when the
        job must stop (its client asked, or it is fenced)."""
        data = TokenData(text=text, index=self._token_index, logprobs=logprobs)
        event = self._event("token", data)
        try:
            stop = emit(self.client, self.job_id, self._attempt, event, self._log_ttl_s, token_ids)
        except JobFenced:
            self._fence()
            return True
        self._token_index += 1
        return stop

    def done(
        self, finish_reason: str, usage: Usage, message_id: str | None, sources: list[SourceRef] | None = None
    ) -> None:
        data = DoneData(
            finish_reason=finish_reason, usage=usage, message_id=message_id, sources=sources or []
        )
        self._final(self._event("done", data))

    def error(self, code: str, message: str) -> None:
        self._final(self._event("error", ErrorData(code=code, message=message)))

    def _fence(self) -> None:
        if not self.fenced:
            log.warning("job %s: no longer this worker's (ended or taken again); it stops here", self.job_id)
        self.fenced = True

    def _final(self, event: JobEvent) -> None:
        """The terminal event, retried with a backoff while Redis is unreachable."""
        if self.fenced:
            return
        deadline, backoff_s = time.monotonic() + FINAL_RETRY_S, 0.25
        while True:
            try:
                finish(self.client, self.job_id, self._attempt, event, self._log_ttl_s, self._quota)
                return
            except JobFenced:
                self._fence()
                return
            except redis.RedisError as exc:
                if time.monotonic() > deadline:
                    log.error("job %s: its terminal event could not be published: %s", self.job_id, exc)
                    raise
                log.warning("job %s: terminal event not published (%s); retrying", self.job_id, exc)
                time.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, FINAL_MAX_BACKOFF_S)
