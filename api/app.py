"""The FastAPI application: routes, error shape, filters; Redis, MongoDB and Celery set up once."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api.http import metrics
from api.http.auth import caller_dep
from api.http.errors import install_error_handlers
from api.http.middleware import install_middleware
from api.http.redis_clients import listener_client, redis_client
from api.routes import (
    accounts,
    batches,
    characters,
    chat,
    conversations,
    datasets,
    finetune,
    health,
    jobs,
    llama_server,
    mongo_admin,
    openai,
    web,
)
from api.streams.batch_recovery import recover_forever
from api.streams.event_hub import EventHub
from api.streams.prompt_limit import preload_vocabularies
from mongo.accounts import ensure_admin_key
from mongo.batches import count_old_batches
from mongo.characters import adopt_ownerless_characters, link_conversations_to_characters
from mongo.connection import connect_mongo, disconnect_mongo
from settings import get_settings
from tasks.app import app as celery_app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    connect_mongo(settings.mongo_uri, settings.mongo_db)
    await asyncio.to_thread(adopt_ownerless_characters)
    await asyncio.to_thread(link_conversations_to_characters)
    await asyncio.to_thread(count_old_batches)
    if settings.admin_api_key is not None:
        await asyncio.to_thread(ensure_admin_key, settings.admin_api_key.get_secret_value())
    app.state.redis = redis_client(settings)
    listener = listener_client(settings)
    app.state.celery = celery_app
    app.state.event_hub = EventHub(app.state.redis, listener)
    await app.state.event_hub.start()
    preload_vocabularies(settings)
    recovery = asyncio.create_task(
        recover_forever(celery_app, app.state.redis, settings), name="batch-recovery"
    )
    try:
        yield
    finally:
        recovery.cancel()
        await app.state.event_hub.stop()
        await app.state.redis.aclose()
        await listener.aclose()
        disconnect_mongo()
        metrics.process_exiting()


def create_app() -> FastAPI:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = FastAPI(
        title="ChatBot AI",
        version="2.0",
        description="Character chat and assistant answers from models resident in Celery workers, streamed as SSE.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc: api/routes/web.py, with assets served here (no CDN)
        redoc_url=None,
    )
    install_error_handlers(app)
    install_middleware(app, get_settings())
    app.add_middleware(metrics.RequestMetricsMiddleware)
    # Every route needs an API key but these: /health, /metrics (its own check), the page and the docs.
    keyed = [Depends(caller_dep)]
    for router in (
        chat.router,
        characters.router,
        conversations.router,
        jobs.router,
        openai.router,
        llama_server.router,
        batches.router,
        datasets.router,
        finetune.router,
        mongo_admin.router,
        accounts.router,
        accounts.admin,
    ):
        app.include_router(router, dependencies=keyed)
    app.include_router(health.router)
    app.include_router(metrics.router)
    web.install_web(app)
    return app
