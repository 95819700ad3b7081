"""LoRA fine-tuning runs on the training queue, their progress, and the registered adapters. Admin only."""

import asyncio
import uuid

from fastapi import APIRouter, Depends, Request

from api.http.auth import require_admin
from api.http.dependencies import settings_dep
from api.http.errors import ApiError
from api.streams.enqueue import enqueue_finetune
from mongo import datasets as dataset_store
from mongo.adapters import list_adapters
from mongo.finetune_runs import create_run, find_run
from schemas.finetune import FinetuneRequest
from settings import Settings

router = APIRouter(tags=["fine-tuning"], dependencies=[Depends(require_admin)])


@router.post("/finetune", status_code=202, summary="Start a LoRA fine-tuning run on a stored dataset")
async def start_run(
    body: FinetuneRequest, request: Request, settings: Settings = Depends(settings_dep)
) -> dict:
    if await asyncio.to_thread(dataset_store.find_dataset, body.dataset) is None:
        raise ApiError(404, "not_found", f"dataset {body.dataset!r} not found")
    run_id = uuid.uuid4().hex
    await asyncio.to_thread(create_run, run_id, body.model_dump())
    enqueue_finetune(request.app.state.celery, run_id, body.model_dump(), settings.training_queue)
    return {"run_id": run_id, "state": "queued"}


@router.get("/finetune/{run_id}", summary="State and progress of a run")
async def run_status(run_id: str) -> dict:
    run = await asyncio.to_thread(find_run, run_id)
    if run is None:
        raise ApiError(404, "not_found", f"fine-tuning run {run_id!r} not found")
    return {
        "run_id": run.run_id,
        "state": run.state,
        "step": run.step,
        "total_steps": run.total_steps,
        "loss": run.loss,
        "result": run.result or None,
        "error": run.error,
        "attempts": run.attempts,
        "duplicates_skipped": run.duplicates_skipped,
    }


@router.get("/adapters", summary="The registered LoRA adapters")
async def adapters() -> dict:
    found = await asyncio.to_thread(list_adapters)
    return {"adapters": [{"name": a.name, "base_model": a.base_model, "dataset": a.dataset, "path": a.path,
                          "metrics": a.metrics} for a in found]}  # fmt: skip
