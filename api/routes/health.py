"""`GET /health`: Redis, MongoDB, and for each device queue its live workers, models and depth."""

import asyncio

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.http.dependencies import redis_dep, settings_dep
from api.streams.worker_status import live_workers, queue_depth
from model_registry import get_registry
from mongo.connection import mongo_client
from settings import Settings

router = APIRouter(tags=["health"])


async def _redis_ok(client: aioredis.Redis) -> bool:
    try:
        return bool(await client.ping())
    except Exception:
        return False


def _mongo_ok() -> bool:
    try:
        mongo_client().admin.command("ping")
        return True
    except Exception:
        return False


@router.get("/health", summary="Dependencies and workers")
async def health(
    client: aioredis.Redis = Depends(redis_dep), settings: Settings = Depends(settings_dep)
) -> JSONResponse:
    redis_ok, mongo_ok = await asyncio.gather(_redis_ok(client), asyncio.to_thread(_mongo_ok))
    queues: dict[str, dict] = {}
    for spec in get_registry().values():
        entry = queues.setdefault(spec.queue, {"models": [], "workers": [], "depth": None})
        entry["models"].append(spec.name)
    if redis_ok:
        for name, entry in queues.items():
            entry["workers"] = await live_workers(client, name, settings.worker_heartbeat_ttl_s)
            entry["depth"] = await queue_depth(client, name)
    all_served = all(entry["workers"] for entry in queues.values())
    status = "ok" if redis_ok and mongo_ok and all_served else "degraded"
    body = {"status": status, "redis": {"ok": redis_ok}, "mongodb": {"ok": mongo_ok}, "queues": queues}
    return JSONResponse(body, status_code=200 if redis_ok and mongo_ok else 503)
