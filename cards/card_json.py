"""Character cards as JSON: recognise V1, V2 (`chara_card_v2`) and V3 (`chara_card_v3`), and write V2/V3.

A card keeps everything it came with: unknown keys of `data` stay in the CardData (as extras), unknown
keys beside `data` (SillyTavern writes `create_date`, `talkativeness`, `fav`, ...) are returned apart
as `card_extras` and written back on export. The V1 fields beside `data` are a copy SillyTavern keeps
for old readers; they are rewritten from `data` on export rather than kept stale.
"""

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from cards.limits import CardError, CardLimits
from schemas.cards import V1_FIELDS, CardData

SPEC_V2 = "chara_card_v2"
SPEC_V3 = "chara_card_v3"
ExportSpec = Literal["v2", "v3"]


@dataclass
class ImportedCard:
    data: CardData
    card_extras: dict[str, Any] = field(default_factory=dict)
    spec: str = "v1"
    avatar_png: bytes | None = None


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _depth_error(limits: CardLimits) -> CardError:
    return CardError(
        422, "card_too_deep", f"the card JSON is nested deeper than {limits.max_json_depth} levels"
    )


def load_card_json(raw: bytes, limits: CardLimits) -> dict[str, Any]:
    """The card document, refused when over the size or depth limit or not a JSON object."""
    if len(raw) > limits.max_json_bytes:
        raise CardError(
            413, "card_too_large", f"the card JSON is {len(raw)} bytes, the limit is {limits.max_json_bytes}"
        )
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise CardError(422, "invalid_card", f"the card is not UTF-8 text: {exc}") from None
    except json.JSONDecodeError as exc:
        raise CardError(422, "invalid_card", f"the card is not valid JSON: {exc}") from None
    except RecursionError:
        raise _depth_error(limits) from None
    if not isinstance(document, dict):
        raise CardError(422, "invalid_card", "the card must be a JSON object")
    if _too_deep(document, limits.max_json_depth):
        raise _depth_error(limits)
    return document


def card_from_document(document: dict[str, Any]) -> ImportedCard:
    spec = document.get("spec")
    if spec in (SPEC_V2, SPEC_V3):
        data = document.get("data")
        if not isinstance(data, dict):
            raise CardError(422, "invalid_card", f"a {spec} card needs a `data` object")
        skip = {"spec", "spec_version", "data", *V1_FIELDS}
        version = "v2" if spec == SPEC_V2 else "v3"
    elif spec is None and "name" in document:
        data = {key: document[key] for key in V1_FIELDS if key in document}
        skip = set(V1_FIELDS)
        version = "v1"
    else:
        raise CardError(
            422,
            "invalid_card",
            f"not a character card: spec {spec!r} (expected {SPEC_V2}, {SPEC_V3}, or a V1 card with a name)",
        )
    try:
        card_data = CardData.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'data'}: {error['msg']}"
            for error in exc.errors()
        )
        raise CardError(422, "invalid_card", f"the card's data is invalid: {reasons}") from None
    extras = {key: value for key, value in document.items() if key not in skip}
    return ImportedCard(card_data, extras, version)


def parse_card_json(raw: bytes, limits: CardLimits) -> ImportedCard:
    return card_from_document(load_card_json(raw, limits))


def export_card(data: CardData, card_extras: dict[str, Any], spec: ExportSpec) -> dict[str, Any]:
    """The card as SillyTavern writes it: V1 copy, spec, data; V3 is the same with its spec and
    the one field V3 requires that V2 lacks."""
    body = data.card_dict()
    card = {
        **card_extras,
        **{key: body[key] for key in V1_FIELDS},
        "spec": SPEC_V2,
        "spec_version": "2.0",
        "data": body,
    }
    if spec == "v3":
        card.update(spec=SPEC_V3, spec_version="3.0")
        body.setdefault("group_only_greetings", [])
    return card


def card_bytes(card: dict[str, Any]) -> bytes:
    return json.dumps(card, ensure_ascii=False).encode("utf-8")
