"""QA datasets for grounding and fine-tuning: import (JSONL, CSV, Parquet), split, describe. Admin only."""

import asyncio
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.http.auth import require_admin
from api.http.dependencies import settings_dep
from api.http.errors import ApiError
from mongo import datasets as store
from qa_datasets import service
from qa_datasets.describe import length_plot_png
from qa_datasets.rows import FORMATS, ColumnMapping, DatasetFormatError
from schemas.common import FolderName
from settings import Settings

router = APIRouter(prefix="/datasets", tags=["datasets"], dependencies=[Depends(require_admin)])


class SplitRequest(BaseModel):
    eval_fraction: float = Field(default=0.1, gt=0, lt=1)
    seed: int = 0


def _existing(name: str) -> str:
    if store.find_dataset(name) is None:
        raise ApiError(404, "not_found", f"dataset {name!r} not found")
    return name


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"the file is over the {limit} byte limit")
    data = await request.body()
    if len(data) > limit:
        raise ApiError(413, "payload_too_large", f"the file is over the {limit} byte limit")
    if not data:
        raise ApiError(400, "bad_request", "the request body (the dataset file) is empty")
    return data


@router.post("/{name}", status_code=201, summary="Import a dataset file (the body) under this name")
async def import_dataset(
    name: FolderName,
    request: Request,
    format: Annotated[str, Query(description=f"one of {', '.join(FORMATS)}")] = "jsonl",
    instruction_column: str = "instruction",
    output_column: str = "output",
    drop_invalid: bool = False,
    eval_fraction: Annotated[float, Query(gt=0, lt=1)] = 0.1,
    seed: int = 0,
    settings: Settings = Depends(settings_dep),
) -> dict:
    data = await _body(request, settings.dataset_max_upload_bytes)
    mapping = ColumnMapping(instruction_column, output_column)
    try:
        report = await asyncio.to_thread(
            service.import_dataset,
            name,
            data,
            format,
            mapping,
            settings.dataset_max_chars,
            drop_invalid,
            eval_fraction,
            seed,
        )
    except service.DatasetRejected as exc:
        raise ApiError(422, "invalid_rows", f"{exc}; fix them or import with drop_invalid=true") from exc
    except (DatasetFormatError, ValueError) as exc:
        raise ApiError(400, "bad_dataset", str(exc)) from exc
    return asdict(report)


@router.get("", summary="List the datasets")
async def list_datasets() -> dict:
    datasets = await asyncio.to_thread(store.list_datasets)
    return {"datasets": [{"name": d.name, "rows": d.rows, "source": d.source} for d in datasets]}


@router.get("/{name}", summary="Counts, splits and length distribution")
async def describe_dataset(name: FolderName) -> dict:
    return await asyncio.to_thread(lambda: service.description(_existing(name)))


@router.get("/{name}/plot.png", summary="Length distribution as a PNG", response_class=Response)
async def plot_dataset(name: FolderName) -> Response:
    png = await asyncio.to_thread(lambda: length_plot_png(store.dataset_rows(_existing(name)), name))
    return Response(png, media_type="image/png")


@router.post("/{name}/split", summary="Split into train/eval again, reproducibly by seed")
async def split_dataset(name: FolderName, body: SplitRequest) -> dict:
    return await asyncio.to_thread(lambda: service.resplit(_existing(name), body.eval_fraction, body.seed))


@router.delete("/{name}", status_code=204, summary="Delete a dataset")
async def delete_dataset(name: FolderName) -> Response:
    if not await asyncio.to_thread(store.delete_dataset, name):
        raise ApiError(404, "not_found", f"dataset {name!r} not found")
    return Response(status_code=204)
