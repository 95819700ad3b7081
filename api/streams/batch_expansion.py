"""A submitted batch becomes its items and their queue messages after the client has its answer:
the submission stores its jobs in a few chunks (mongo/batches.py) and returns; here each chunk is
expanded into items, which are then enqueued. A chunk left by an API that stopped meanwhile is
expanded by the recovery sweep (api/streams/batch_recovery.py); a chunk expanded twice stores and
enqueues each item once."""

import asyncio
import logging

from celery import Celery

from api.streams.enqueue import enqueue_batch_items
from model_registry import get_registry
from mongo.batches import BatchChunk, expand_chunk

log = logging.getLogger(__name__)

_running: set[asyncio.Task] = set()  # kept referenced until done


def expand_chunks(celery_app: Celery, chunks: list[BatchChunk]) -> None:
    registry = get_registry()
    for chunk in chunks:
        jobs = expand_chunk(chunk)
        if jobs:
            enqueue_batch_items(celery_app, str(chunk.batch_id), jobs, registry)


async def _expand(celery_app: Celery, chunks: list[BatchChunk]) -> None:
    try:
        await asyncio.to_thread(expand_chunks, celery_app, chunks)
    except Exception:  # MongoDB or Redis down: the recovery sweep takes the rest
        log.warning(
            "expanding batch %s failed; the recovery sweep goes on", chunks[0].batch_id, exc_info=True
        )


def expand_later(celery_app: Celery, chunks: list[BatchChunk]) -> None:
    if chunks:
        task = asyncio.create_task(_expand(celery_app, chunks), name=f"expand-batch-{chunks[0].batch_id}")
        _running.add(task)
        task.add_done_callback(_running.discard)
