"""FastAPI dependencies: settings, the shared Redis client, and what every chat route needs."""

from dataclasses import dataclass

import redis.asyncio as aioredis
from fastapi import Depends, Request

from api.http.auth import Caller, caller_dep
from settings import Settings, get_settings

# These are `async def` because they do no I/O: FastAPI runs a plain `def` dependency in its thread
# pool, a thread hop for each on every request.


async def settings_dep() -> Settings:
    return get_settings()


async def redis_dep(request: Request) -> aioredis.Redis:
    return request.app.state.redis


@dataclass
class ChatCall:
    """What every chat route needs besides its body."""

    request: Request
    caller: Caller
    client: aioredis.Redis
    settings: Settings

    @property
    def user_id(self) -> str:
        return self.caller.user_id


async def chat_call(
    request: Request,
    caller: Caller = Depends(caller_dep),
    client: aioredis.Redis = Depends(redis_dep),
    settings: Settings = Depends(settings_dep),
) -> ChatCall:
    return ChatCall(request, caller, client, settings)
