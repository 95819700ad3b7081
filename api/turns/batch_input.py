"""A batch submission (JSON or JSONL) turned into chat jobs, or refused as a whole.

Every problem is answered before anything is stored: 415 for another body type, 413 past the item
limit, 422 naming the item (`items.3.messages`) or JSONL line (`line 4.character`) and the reason.
"""

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.http.errors import ApiError
from api.turns.chat_messages import character_dialogue, chat_job, inline_card
from api.turns.sampling import chat_sampling
from model_registry import ModelSpec
from mongo.characters import card_data, characters_named
from schemas.batches import BatchItemRequest, BatchRequest, InlineCharacter
from schemas.cards import CardData
from schemas.jobs import ChatJob, ChatMessage
from settings import Settings

JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")

# Where an item came from, for error messages: ("items", 3) or ("line 4",).
Location = tuple[str | int, ...]


def _located(exc: ValidationError, where: Location) -> list[dict]:
    return [{**error, "loc": ("body", *where, *error["loc"])} for error in exc.errors(include_url=False)]


def _invalid(where: Location, field: str, message: str) -> dict:
    return {"loc": ("body", *where, field), "msg": message, "type": "value_error"}


def parse_items(content_type: str, body: bytes, max_items: int) -> list[tuple[Location, BatchItemRequest]]:
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/json":
        try:
            items = BatchRequest.model_validate_json(body).items
        except ValidationError as exc:
            raise RequestValidationError(_located(exc, ())) from None
        located: list[tuple[Location, BatchItemRequest]] = [
            (("items", i), item) for i, item in enumerate(items)
        ]
    elif media_type in JSONL_TYPES:
        located, errors = [], []
        for number, line in enumerate(body.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                located.append(((f"line {number}",), BatchItemRequest.model_validate_json(line)))
            except ValidationError as exc:
                errors += _located(exc, (f"line {number}",))
        if errors:
            raise RequestValidationError(errors)
        if not located:
            raise RequestValidationError(
                [_invalid((), "items", "the batch has no items (no non-blank line)")]
            )
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            'send application/json ({"items": [...]}) or application/x-ndjson (one item per line), '
            f"not {media_type or 'no Content-Type'}",
        )
    if len(located) > max_items:
        raise ApiError(413, "batch_too_large", f"{len(located)} items; a batch takes at most {max_items}")
    return located


def _card(character: InlineCharacter) -> CardData:
    return inline_card(character.name, character.description, character.greeting)


def build_jobs(
    located: list[tuple[Location, BatchItemRequest]],
    registry: dict[str, ModelSpec],
    settings: Settings,
    user_id: str,
) -> list[tuple[ChatJob, str | None]]:
    """Each item as a ChatJob (with its custom_id); characters named by the items are looked up
    (the user's own of a name, else a public one)."""
    names = {item.character for _, item in located if isinstance(item.character, str)}
    found = characters_named(names, user_id)
    stored = {name: card_data(character) for name, character in found.items()}
    errors = []
    for where, item in located:
        if item.model not in registry:
            errors.append(
                _invalid(where, "model", f"unknown model {item.model!r} (have: {', '.join(registry)})")
            )
        if isinstance(item.character, str) and item.character not in stored:
            errors.append(_invalid(where, "character", f"no stored character named {item.character!r}"))
    if errors:
        raise RequestValidationError(errors)

    jobs = []
    for _, item in located:
        card = stored[item.character] if isinstance(item.character, str) else _card(item.character)
        turns = [ChatMessage(role=turn.role, content=turn.content) for turn in item.messages]
        prompt = character_dialogue(card, turns)
        job = chat_job(
            item.model,
            prompt.messages,
            sampling=chat_sampling(item.params, settings),
            context_fit=prompt.context_fit,
        )
        jobs.append((job, item.custom_id))
    return jobs
