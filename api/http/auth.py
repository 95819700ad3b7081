"""Who is calling: the API key (`Authorization: Bearer <key>`, as the openai SDK sends it, or
`X-API-Key`) names a user and a role. Every route but /health, the web page and the docs needs one.

A missing, unknown or revoked key is 401; an admin route called with a user's key is 403. The key is
looked up on every request (one indexed read) so that a revoked key stops at once on every replica;
each request counts against the key's requests-per-minute quota (api/streams/quotas.py).
"""

import hmac
from dataclasses import dataclass

from fastapi import Depends, Header, Request

from api.http.errors import ApiError
from api.streams.quotas import check_request_rate
from mongo.accounts import key_user
from settings import get_settings


@dataclass(frozen=True)
class Caller:
    user_id: str
    name: str
    role: str
    key_prefix: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def owner_filter(self) -> str | None:
        """The owner a query keeps to: the caller's own, or anybody's for an admin (None)."""
        return None if self.is_admin else self.user_id


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def caller_dep(
    request: Request,
    authorization: str | None = Header(default=None, include_in_schema=False),
    x_api_key: str | None = Header(default=None, include_in_schema=False),
) -> Caller:
    key = presented_key(authorization, x_api_key)
    if key is None:
        raise _unauthorized("an API key is required: send Authorization: Bearer <key>")
    found = key_user(key)
    if found is None:
        raise _unauthorized("this API key is not valid (unknown or revoked)")
    user, record = found
    check_request_rate(get_settings(), record.prefix)
    return Caller(str(user.id), user.name, user.role, record.prefix)


def require_admin(caller: Caller = Depends(caller_dep)) -> Caller:
    if not caller.is_admin:
        raise ApiError(403, "forbidden", "this route needs an admin key")
    return caller


def metrics_reader(
    request: Request,
    authorization: str | None = Header(default=None, include_in_schema=False),
    x_api_key: str | None = Header(default=None, include_in_schema=False),
) -> None:
    """/metrics: Prometheus's scrape token (METRICS_TOKEN, as its `authorization` credentials), or an admin key."""
    key = presented_key(authorization, x_api_key)
    token = get_settings().metrics_token
    if key and token and hmac.compare_digest(key.encode(), token.get_secret_value().encode()):
        return
    require_admin(caller_dep(request, authorization, x_api_key))
