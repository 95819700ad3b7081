"""Starting a chat job, the same way for every route: check the model is served, then register with the
event hub and open its log BEFORE enqueueing it, so no event can be published unheard. What the route
stores (the user's turn) is written while the job is queued, and the stream answers once it is."""

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import redis.asyncio as aioredis

from api.http.dependencies import ChatCall
from api.http.errors import ApiError
from api.streams.backpressure import admit_job
from api.streams.enqueue import enqueue_chat
from api.streams.event_hub import HubSource
from api.streams.prompt_limit import ensure_prompt_fits
from api.streams.quotas import admit_to_quota
from api.streams.relay import JobStream
from api.streams.takeover import take_over
from api.streams.worker_status import live_workers
from jobs.transitions import cancel_job, mark_turn_stored, open_job, release
from model_registry import ModelSpec, get_registry
from mongo.conversations import save_job_reply
from schemas.job_log import QueuedRecord
from schemas.jobs import ChatJob
from settings import Settings

log = logging.getLogger(__name__)


async def serving_spec(client: aioredis.Redis, settings: Settings, model: str) -> ModelSpec:
    """The model's registry entry, checked before anything is stored: 503 when no live worker serves it."""
    spec = get_registry().get(model)
    if spec is None:
        raise ApiError(503, "model_not_configured", f"model {model!r} is not in the model registry")
    if not await live_workers(client, spec.queue, settings.worker_heartbeat_ttl_s):
        raise ApiError(
            503,
            "no_worker",
            f"no live worker is serving queue {spec.queue!r} for model {model!r}",
            headers={"Retry-After": "10"},
        )
    return spec


async def start_job(
    call: ChatCall,
    spec: ModelSpec,
    job: ChatJob,
    detach: bool,
    writing: Coroutine[Any, Any, None] | None = None,
) -> JobStream:
    """Admit, check the prompt and quotas, subscribe, open the log, enqueue; the returned stream relays the
    job's events.

    A prompt that cannot fit the context window (400), a job past its key's quotas or one its queue
    has no room for (429) is refused before `writing` starts: nothing is stored or enqueued.

    `writing` (the user's turn going into MongoDB) runs while the job is enqueued: the worker's
    prompt processing hides the write instead of waiting behind it. The stream is returned only once
    the write is done; if it fails, the job is cancelled and the error raised."""
    quota = call.caller.key_prefix
    job = job.model_copy(update={"quota": quota})
    try:
        # Admitted first: from now on its worker's idle engine knows it is on its way (jobs/arrivals.py).
        await admit_job(call.client, call.settings, spec.queue, job.job_id)
        try:
            await ensure_prompt_fits(job, spec, call.settings)
            await admit_to_quota(call.client, call.settings, quota, job.job_id, job.sampling.max_tokens)
        except BaseException:
            await release(call.client, job.job_id, queue=spec.queue, quota=quota)
            raise
    except BaseException:
        if writing is not None:
            writing.close()
        raise
    pending = asyncio.ensure_future(writing) if writing is not None else None
    source = HubSource(call.request.app.state.event_hub, job.job_id)

    async def keep_partial(text: str) -> None:
        try:
            await asyncio.to_thread(save_job_reply, job, text, "error", "error", {})
        except Exception:
            log.exception("job %s: the partial reply of its lost worker could not be stored", job.job_id)

    async def to_another_worker(attempt: int) -> bool:
        celery_app = call.request.app.state.celery
        return await take_over(celery_app, call.client, job, spec, attempt, call.settings.queue_timeout_s)

    stream = JobStream(
        call.client,
        job.job_id,
        spec.queue,
        call.settings,
        source=source,
        detach=detach,
        keep_partial=keep_partial,
        quota=quota,
        take_over=to_another_worker,
    )
    try:
        record = QueuedRecord(
            model=spec.name, queue=spec.queue, detach=detach, owner=call.user_id, quota=quota
        )
        log_ttl_s = call.settings.job_log_ttl_s + int(call.settings.queue_timeout_s)
        # Both before the job is enqueued; neither needs the other, so one round trip's wait, not two.
        opened = await asyncio.gather(
            stream.subscribe(),
            open_job(call.client, job.job_id, record, log_ttl_s, job.model_dump_json()),
            return_exceptions=True,
        )
        failures = [result for result in opened if isinstance(result, BaseException)]
        if failures:
            raise failures[0]
        enqueue_chat(call.request.app.state.celery, job, spec, call.settings.queue_timeout_s)
        if pending is not None:
            await pending
            await mark_turn_stored(call.client, job.job_id, log_ttl_s)
    except BaseException:
        if pending is not None:
            await asyncio.gather(pending, return_exceptions=True)
        await cancel_job(call.client, job.job_id, spec.queue, quota)
        await stream.close()
        raise
    return stream
