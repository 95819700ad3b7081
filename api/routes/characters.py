"""Characters: create, read, list, update, delete; import and export Character Cards; the avatar."""

import asyncio
import re
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from api.http.auth import Caller, caller_dep
from api.http.card_upload import (
    CARD_BODY,
    card_body,
    card_limits,
    refusing_bad_cards,
    upload_body,
    uploaded_file,
)
from api.http.dependencies import settings_dep
from api.http.errors import ApiError
from cards.card_json import export_card
from cards.card_png import avatar_png, write_png_card
from cards.importing import import_card
from mongo.characters import (
    CARD_FIELDS,
    Character,
    CharacterNameTaken,
    card_data,
    create_character,
    delete_character,
    find_character,
    list_characters,
    set_avatar,
    update_character,
)
from schemas.characters import CharacterIn, CharacterOut
from schemas.common import ObjectIdStr, Page, PageNumber, PageSize
from settings import Settings

router = APIRouter(prefix="/characters", tags=["characters"])

Visibility = Literal["private", "public"]
REFUSALS = {
    409: {"description": "the caller already has a character of that name"},
    413: {"description": "the file, its card JSON or its image is over a limit"},
    415: {"description": "neither a PNG nor a JSON card"},
    422: {"description": "damaged or truncated image, no card in the PNG, bad base64 or JSON, invalid card"},
}


def character_out(character: Character, caller: Caller, has_avatar: bool | None = None) -> CharacterOut:
    data = {"character_book": None, **card_data(character).model_dump(include=set(CARD_FIELDS))}
    return CharacterOut(
        **data,
        id=str(character.id),
        visibility=character.visibility,
        mine=character.owner == caller.user_id,
        has_avatar=bool(character.avatar) if has_avatar is None else has_avatar,
        avatar_url=character.avatar_url or "",
        created_at=character.created_at,
        updated_at=character.updated_at,
    )


async def _existing(character_id: str, caller: Caller) -> Character:
    """A character the caller sees (their own or a public one); others' private ones are not found."""
    character = await asyncio.to_thread(find_character, character_id, caller.owner_filter)
    if character is None:
        raise ApiError(404, "not_found", f"character {character_id!r} not found")
    return character


async def _changeable(character_id: str, caller: Caller) -> Character:
    """A character the caller may change or delete: their own (any, for an admin)."""
    character = await _existing(character_id, caller)
    if not caller.is_admin and character.owner != caller.user_id:
        raise ApiError(403, "forbidden", "only its owner or an admin may change or delete this character")
    return character


async def _saved(caller: Caller, save, *args) -> CharacterOut:
    try:
        return character_out(await asyncio.to_thread(save, *args), caller)
    except CharacterNameTaken as exc:
        raise ApiError(409, "conflict", str(exc)) from exc


def _attachment(name: str, extension: str) -> dict[str, str]:
    """A download named after the character: plain ASCII for old clients, UTF-8 (RFC 6266) for others."""
    plain = re.sub(r'[^\x20-\x7e]|["\\]', "_", name)
    encoded = quote(name, safe="")
    return {
        "Content-Disposition": f"attachment; filename=\"{plain}.{extension}\"; filename*=UTF-8''{encoded}.{extension}"
    }


CARD_JSON = {"openapi_extra": CARD_BODY}
JSON_REFUSALS = {
    409: REFUSALS[409],
    413: {"description": "the card JSON is over CARD_MAX_JSON_BYTES"},
    422: {"description": "an invalid card, or one nested deeper than CARD_MAX_JSON_DEPTH"},
}


@router.post("", status_code=201, summary="Create a character", responses=JSON_REFUSALS, **CARD_JSON)
async def create(
    body: CharacterIn = Depends(card_body), caller: Caller = Depends(caller_dep)
) -> CharacterOut:
    return await _saved(caller, create_character, caller.user_id, body, body.visibility)


@router.post(
    "/import",
    status_code=201,
    summary="Import a Character Card (V1/V2/V3, PNG or JSON)",
    description="The card as the body (image/png or application/json) or as the file of a form. "
    "Unknown fields are kept and come back on export; a PNG's picture becomes the avatar.",
    openapi_extra=upload_body("image/png", "application/json"),
    responses=REFUSALS,
)
async def import_(
    request: Request,
    visibility: Visibility = "private",
    settings: Settings = Depends(settings_dep),
    caller: Caller = Depends(caller_dep),
) -> CharacterOut:
    raw = await uploaded_file(request, settings.card_max_upload_bytes)
    with refusing_bad_cards():
        card = await asyncio.to_thread(import_card, raw, card_limits(settings))
    return await _saved(
        caller, create_character, caller.user_id, card.data, visibility, card.card_extras, card.avatar_png
    )


@router.get("", summary="List characters, by name or tag")
async def list_(
    q: str | None = Query(default=None, max_length=100, description="part of the name, any case"),
    tag: str | None = Query(default=None, max_length=100),
    page: PageNumber = 1,
    page_size: PageSize = 20,
    caller: Caller = Depends(caller_dep),
) -> Page[CharacterOut]:
    owner = caller.owner_filter
    found, total, with_avatar = await asyncio.to_thread(list_characters, owner, q, tag, page, page_size)
    items = [character_out(character, caller, character.id in with_avatar) for character in found]
    return Page[CharacterOut](items=items, total=total, page=page, page_size=page_size)


@router.get("/{character_id}", summary="Read a character")
async def read(character_id: ObjectIdStr, caller: Caller = Depends(caller_dep)) -> CharacterOut:
    return character_out(await _existing(character_id, caller), caller)


@router.put(
    "/{character_id}",
    summary="Replace a character's card fields",
    responses=JSON_REFUSALS,
    **CARD_JSON,
)
async def update(
    character_id: ObjectIdStr, body: CharacterIn = Depends(card_body), caller: Caller = Depends(caller_dep)
) -> CharacterOut:
    character = await _changeable(character_id, caller)
    return await _saved(caller, update_character, character, body, body.visibility)


@router.delete("/{character_id}", status_code=204, summary="Delete a character")
async def delete(character_id: ObjectIdStr, caller: Caller = Depends(caller_dep)) -> Response:
    await asyncio.to_thread(delete_character, await _changeable(character_id, caller))
    return Response(status_code=204)


@router.get(
    "/{character_id}/export",
    summary="Export as a Character Card",
    description="PNG: the avatar with the card in the `chara` text chunk (V2), and for V3 also `ccv3`, "
    "as SillyTavern writes them. JSON: the card alone.",
    responses={200: {"content": {"image/png": {}, "application/json": {}}}},
)
async def export(
    character_id: ObjectIdStr,
    format: Literal["png", "json"] = "png",
    spec: Literal["v2", "v3"] = "v2",
    caller: Caller = Depends(caller_dep),
) -> Response:
    character = await _existing(character_id, caller)
    data, extras = card_data(character), character.card_extras or {}
    card = export_card(data, extras, spec)
    if format == "json":
        return JSONResponse(card, headers=_attachment(character.name, "json"))
    chunks = {"chara": export_card(data, extras, "v2")}
    if spec == "v3":
        chunks["ccv3"] = card
    png = await asyncio.to_thread(write_png_card, character.avatar, chunks)
    return Response(png, media_type="image/png", headers=_attachment(character.name, "png"))


@router.get(
    "/{character_id}/avatar", summary="The avatar image", responses={200: {"content": {"image/png": {}}}}
)
async def avatar(character_id: ObjectIdStr, caller: Caller = Depends(caller_dep)) -> Response:
    character = await _existing(character_id, caller)
    if not character.avatar:
        raise ApiError(404, "not_found", f"character {character_id!r} has no avatar")
    return Response(bytes(character.avatar), media_type="image/png")


@router.put(
    "/{character_id}/avatar",
    summary="Set the avatar (any image Pillow reads; stored as PNG)",
    openapi_extra=upload_body("image/png", "image/jpeg", "image/webp"),
    responses=REFUSALS,
)
async def replace_avatar(
    character_id: ObjectIdStr,
    request: Request,
    settings: Settings = Depends(settings_dep),
    caller: Caller = Depends(caller_dep),
) -> CharacterOut:
    character = await _changeable(character_id, caller)
    raw = await uploaded_file(request, settings.card_max_upload_bytes)
    with refusing_bad_cards():
        png = await asyncio.to_thread(avatar_png, raw, card_limits(settings))
    return character_out(await asyncio.to_thread(set_avatar, character, png), caller)
