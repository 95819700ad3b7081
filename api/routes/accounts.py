"""Users and API keys: an admin creates users, gives them keys (shown once) and revokes keys;
`GET /me` tells a caller who their key says they are."""

import asyncio

from fastapi import APIRouter, Depends, Path

from api.http.auth import Caller, caller_dep, require_admin
from api.http.errors import ApiError
from mongo.accounts import (
    ApiKey,
    User,
    UserExists,
    create_key,
    create_user,
    find_user,
    list_keys,
    list_users,
    revoke_key,
)
from schemas.accounts import USER_NAME, KeyCreate, KeyCreated, KeyOut, Me, UserCreate, UserOut

router = APIRouter(tags=["accounts"])
admin = APIRouter(prefix="/admin", tags=["accounts"], dependencies=[Depends(require_admin)])

UserName = Path(pattern=USER_NAME)
KeyPrefix = Path(pattern=r"^[a-z]{2,3}_[a-z0-9]{8}$", description="the key's prefix, as listed")


def user_out(user: User) -> UserOut:
    return UserOut(name=user.name, role=user.role, created_at=user.created_at)


def key_out(record: ApiKey, user_name: str) -> KeyOut:
    return KeyOut(
        prefix=record.prefix,
        user=user_name,
        label=record.label,
        created_at=record.created_at,
        revoked_at=record.revoked_at,
    )


async def _user(name: str) -> User:
    user = await asyncio.to_thread(find_user, name)
    if user is None:
        raise ApiError(404, "not_found", f"user {name!r} not found")
    return user


@router.get("/me", summary="Who this API key belongs to")
async def me(caller: Caller = Depends(caller_dep)) -> Me:
    return Me(user_id=caller.user_id, name=caller.name, role=caller.role, key_prefix=caller.key_prefix)


@admin.post("/users", status_code=201, summary="Create a user")
async def new_user(body: UserCreate) -> UserOut:
    try:
        return user_out(await asyncio.to_thread(create_user, body.name, body.role))
    except UserExists as exc:
        raise ApiError(409, "conflict", str(exc)) from exc


@admin.get("/users", summary="List users")
async def users() -> list[UserOut]:
    return [user_out(user) for user in await asyncio.to_thread(list_users)]


@admin.post(
    "/users/{name}/keys",
    status_code=201,
    summary="Create an API key for a user: the key is in this answer only, never again",
)
async def new_key(body: KeyCreate, name: str = UserName) -> KeyCreated:
    user = await _user(name)
    record, key = await asyncio.to_thread(create_key, user, body.label)
    return KeyCreated(**key_out(record, user.name).model_dump(), key=key)


@admin.get("/users/{name}/keys", summary="A user's keys (prefixes, never the keys)")
async def keys(name: str = UserName) -> list[KeyOut]:
    user = await _user(name)
    return [key_out(record, user.name) for record in await asyncio.to_thread(list_keys, user)]


@admin.delete("/keys/{prefix}", status_code=204, summary="Revoke a key: it stops working at once")
async def revoke(prefix: str = KeyPrefix) -> None:
    if not await asyncio.to_thread(revoke_key, prefix):
        raise ApiError(404, "not_found", f"no live key with prefix {prefix!r}")
