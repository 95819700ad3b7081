"""Batch jobs: submit many character dialogue jobs at once, follow their progress, read the results, cancel.

A batch is stored in MongoDB (its jobs in a few chunks) and answered; its items are then expanded and
enqueued, below every interactive chat, on their models' queues (api/streams/batch_expansion.py); the
worker keeps each item's result on it. An `Idempotency-Key` makes a retried submission answer with the
batch it made. A batch belongs to the
caller (their API key's user): another user's batch is not found; an admin sees every batch.
"""

import asyncio
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, StreamingResponse

from api.http.dependencies import ChatCall, chat_call
from api.http.errors import ApiError
from api.http.openapi_body import inline_schema
from api.streams.batch_expansion import expand_later
from api.streams.quotas import take_batch_items
from api.turns.batch_input import JSONL_TYPES, build_jobs, parse_items
from jobs.transitions import cancel_jobs
from model_registry import get_registry
from mongo.batches import (
    Batch,
    batch_items,
    cancel_batch,
    count_items_by_state,
    create_batch,
    find_batch,
    keyed_batch,
    list_batches,
)
from schemas.batches import BatchCounts, BatchProgress, BatchRequest, BatchResult
from schemas.common import Page, PageNumber, PageSize

router = APIRouter(prefix="/batches", tags=["batches"])

JSONL_MEDIA_TYPE = JSONL_TYPES[0]
NOT_FOUND = {404: {"description": "no batch of yours has this id"}}


SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": inline_schema(BatchRequest)},
            JSONL_MEDIA_TYPE: {
                "schema": {"type": "string", "description": "one BatchItemRequest (JSON) per line"}
            },
        },
    }
}


def _progress(batch: Batch) -> BatchProgress:
    counts = BatchCounts(**count_items_by_state(batch))
    if batch.cancelled_at is not None:
        state = "cancelled"
    elif counts.pending + counts.running == 0:
        state = "completed"
    elif counts.pending == batch.total:
        state = "queued"
    else:
        state = "running"
    return BatchProgress(
        id=str(batch.id),
        state=state,
        total=batch.total,
        counts=counts,
        created_at=batch.created_at,
        cancelled_at=batch.cancelled_at,
    )


async def _find(batch_id: str, owner: str | None) -> Batch:
    batch = await asyncio.to_thread(find_batch, batch_id, owner)
    if batch is None:
        raise ApiError(404, "not_found", f"no batch {batch_id!r}")
    return batch


def _accepted(progress: BatchProgress, replayed: bool) -> JSONResponse:
    headers = {"Location": f"/batches/{progress.id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(progress.model_dump(mode="json"), status_code=202, headers=headers)


@router.post(
    "",
    status_code=202,
    response_model=BatchProgress,
    summary="Submit a batch of character dialogue jobs (JSON or JSONL)",
    openapi_extra=SUBMIT_BODY,
    responses={
        202: {
            "description": "stored; its items are expanded and queued after this answer. With an "
            "`Idempotency-Key` header, a retry answers with the batch it made "
            "(`Idempotent-Replayed: true`)"
        },
        413: {"description": "more items than BATCH_MAX_ITEMS"},
        429: {"description": "more items than the key's QUOTA_BATCH_ITEMS_PER_DAY leaves for today"},
        415: {"description": "neither application/json nor application/x-ndjson"},
        422: {"description": "an item is invalid (which item or line, which field, why); nothing stored"},
    },
)
async def submit_batch(
    request: Request,
    key: str | None = Header(
        default=None,
        alias="Idempotency-Key",
        pattern=r"^[\x21-\x7e]{1,255}$",
        description="the client's name for this submission (1 to 255 visible ASCII characters): "
        "a retry with the same key answers with the batch it made, never a second one",
    ),
    call: ChatCall = Depends(chat_call),
) -> JSONResponse:
    if key is not None and (earlier := await asyncio.to_thread(keyed_batch, call.user_id, key)):
        return _accepted(await asyncio.to_thread(_progress, earlier), replayed=True)
    located = parse_items(
        request.headers.get("content-type", ""), await request.body(), call.settings.batch_max_items
    )
    jobs = await asyncio.to_thread(build_jobs, located, get_registry(), call.settings, call.user_id)
    await asyncio.to_thread(take_batch_items, call.settings, call.caller.key_prefix, len(jobs))
    batch, chunks = await asyncio.to_thread(create_batch, call.user_id, jobs, key)
    expand_later(request.app.state.celery, chunks)
    return _accepted(await asyncio.to_thread(_progress, batch), replayed=not chunks)


@router.get("", summary="The caller's batches with their progress, newest first")
async def batches(
    page: PageNumber = 1, page_size: PageSize = 20, call: ChatCall = Depends(chat_call)
) -> Page[BatchProgress]:
    def listed() -> tuple[list[BatchProgress], int]:
        found, total = list_batches(call.user_id, page, page_size)
        return [_progress(batch) for batch in found], total

    items, total = await asyncio.to_thread(listed)
    return Page[BatchProgress](items=items, total=total, page=page, page_size=page_size)


@router.get("/{batch_id}", response_model=BatchProgress, summary="A batch's progress", responses=NOT_FOUND)
async def batch_progress(batch_id: str, call: ChatCall = Depends(chat_call)) -> BatchProgress:
    batch = await _find(batch_id, call.caller.owner_filter)
    return await asyncio.to_thread(_progress, batch)


@router.get(
    "/{batch_id}/results",
    summary="Every item of a batch as JSONL (BatchResult per line, in submission order)",
    response_class=StreamingResponse,
    responses={200: {"content": {JSONL_MEDIA_TYPE: {}}}, **NOT_FOUND},
)
async def batch_results(batch_id: str, call: ChatCall = Depends(chat_call)) -> StreamingResponse:
    batch = await _find(batch_id, call.caller.owner_filter)

    def lines() -> Iterator[str]:  # a plain iterator: Starlette runs it in a thread, so the cursor may block
        for item in batch_items(batch):
            yield BatchResult.model_validate(item).model_dump_json() + "\n"

    return StreamingResponse(lines(), media_type=JSONL_MEDIA_TYPE)


@router.post(
    "/{batch_id}/cancel",
    response_model=BatchProgress,
    summary="Cancel a batch: pending items never run, running ones stop within a few tokens",
    responses=NOT_FOUND,
)
async def cancel(batch_id: str, call: ChatCall = Depends(chat_call)) -> BatchProgress:
    batch = await _find(batch_id, call.caller.owner_filter)
    running = await asyncio.to_thread(cancel_batch, batch)
    if running:
        await cancel_jobs(call.client, running)
    return await asyncio.to_thread(_progress, batch)
