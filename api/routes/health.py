"""`GET /health`: Redis, MongoDB, and for each device queue its models, depth and live workers.

It needs no key (load balancers and the launcher ask it); worker names (host and pid) are only told to
an admin key, everyone else gets their number.

It answers within about PROBE_TIMEOUT_S whatever hangs: every probe has its own deadline, and a
probe past it counts as down. 503 (naming what is down in `down`) when Redis or MongoDB is.
"""

import asyncio
from functools import lru_cache

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pymongo import MongoClient

from api.http.auth import caller_dep
from api.http.dependencies import redis_dep, settings_dep
from api.streams.worker_status import live_workers, queue_depth
from model_registry import get_registry
from settings import Settings

router = APIRouter(tags=["health"])

PROBE_TIMEOUT_S = 1.0


@lru_cache
def _probe_client(uri: str) -> MongoClient:
    """Its own client with short timeouts: a hung server fails the ping instead of holding a thread."""
    ms = int(PROBE_TIMEOUT_S * 1000)
    return MongoClient(uri, serverSelectionTimeoutMS=ms, socketTimeoutMS=ms, connectTimeoutMS=ms)


def _mongo_ping(uri: str) -> bool:
    return bool(_probe_client(uri).admin.command("ping"))


async def _within_deadline(probe, default):
    try:
        return await asyncio.wait_for(probe, PROBE_TIMEOUT_S)
    except Exception:
        return default


async def _queue(client: aioredis.Redis, name: str, ttl_s: float) -> tuple[list[str], int]:
    return await live_workers(client, name, ttl_s), await queue_depth(client, name)


async def _is_admin(request: Request, authorization: str, mongo_ok: bool) -> bool:
    """Whether the caller's key is an admin's; a bad or missing one only hides the worker names."""
    if not mongo_ok:
        return False
    caller = await _within_deadline(asyncio.to_thread(caller_dep, request, authorization, None), None)
    return caller is not None and caller.is_admin


@router.get("/health", summary="Dependencies and workers")
async def health(
    request: Request,
    authorization: str | None = Header(default=None, include_in_schema=False),
    client: aioredis.Redis = Depends(redis_dep),
    settings: Settings = Depends(settings_dep),
) -> JSONResponse:
    queues: dict[str, dict] = {}
    for spec in get_registry().values():
        entry = queues.setdefault(spec.queue, {"models": [], "live_workers": 0, "depth": None})
        entry["models"].append(spec.name)
    ttl_s = settings.worker_heartbeat_ttl_s
    redis_ok, mongo_ok, *served = await asyncio.gather(
        _within_deadline(client.ping(), False),
        _within_deadline(asyncio.to_thread(_mongo_ping, settings.mongo_uri), False),
        *(_within_deadline(_queue(client, name, ttl_s), ([], None)) for name in queues),
    )
    shows_workers = authorization is not None and await _is_admin(request, authorization, bool(mongo_ok))
    for entry, (workers, depth) in zip(queues.values(), served, strict=True):
        entry["live_workers"], entry["depth"] = len(workers), depth
        if shows_workers:
            entry["workers"] = workers
    down = [name for name, ok in (("redis", redis_ok), ("mongodb", mongo_ok)) if not ok]
    down += [f"workers:{name}" for name, entry in queues.items() if not entry["live_workers"]]
    status = "ok" if not down else "degraded"
    body = {
        "status": status,
        "down": down,
        "redis": {"ok": bool(redis_ok)},
        "mongodb": {"ok": bool(mongo_ok)},
        "queues": queues,
    }
    return JSONResponse(body, status_code=503 if not (redis_ok and mongo_ok) else 200)
