"""FastAPI dependencies: settings, the shared Redis client, the caller's identity, the admin check."""

import hmac
import re
from dataclasses import dataclass

import redis.asyncio as aioredis
from fastapi import Depends, Header, Request

from api.http.errors import ApiError
from settings import Settings, get_settings

USER_ID = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}$")


def settings_dep() -> Settings:
    return get_settings()


def redis_dep(request: Request) -> aioredis.Redis:
    return request.app.state.redis


def user_id_dep(x_user_id: str | None = Header(default=None)) -> str:
    """Who the conversation belongs to; anonymous until API keys map callers to users."""
    if x_user_id is None:
        return "anonymous"
    if not USER_ID.match(x_user_id):
        raise ApiError(400, "bad_request", "X-User-Id must be 1-64 characters of letters, digits and _.@:-")
    return x_user_id


def require_admin(
    authorization: str | None = Header(default=None), x_api_key: str | None = Header(default=None)
) -> None:
    expected = get_settings().admin_api_key
    if expected is None:
        raise ApiError(403, "forbidden", "admin routes are disabled: set ADMIN_API_KEY to enable them")
    presented = x_api_key
    if presented is None and authorization and authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    if not presented:
        raise ApiError(
            401,
            "unauthorized",
            "an admin API key is required (Authorization: Bearer <key>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(presented.encode(), expected.get_secret_value().encode()):
        raise ApiError(403, "forbidden", "this API key is not an admin key")


@dataclass
class ChatCall:
    """What every chat route needs besides its body."""

    request: Request
    user_id: str
    client: aioredis.Redis
    settings: Settings


def chat_call(
    request: Request,
    user_id: str = Depends(user_id_dep),
    client: aioredis.Redis = Depends(redis_dep),
    settings: Settings = Depends(settings_dep),
) -> ChatCall:
    return ChatCall(request, user_id, client, settings)
