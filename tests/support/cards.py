"""Character cards shaped as frontends write them, made here with Pillow.

`SERAPHINA_V2` follows a SillyTavern export: the V1 fields copied beside `data`, SillyTavern's own
top-level keys (`creatorcomment`, `talkativeness`, `fav`, `create_date`, ...), a lorebook whose
entries carry SillyTavern's `extensions`, and a `.` in one extension key (which FerretDB cannot
store as a document key).
"""

import base64
import copy
import io
import json

from PIL import Image, PngImagePlugin

LOREBOOK_ENTRY_CONTENT = "The Glade is a hidden sanctuary of glowing moss where Seraphina heals travellers."

_SERAPHINA_DATA = {
    "name": "Seraphina",
    "description": "{{char}} is a guardian of the forest with long pink hair and amber eyes.",
    "personality": "caring, protective, gentle",
    "scenario": "{{user}} wakes up in {{char}}'s cottage after being attacked in the woods.",
    "first_mes": "*{{char}} leans over you.* You're awake, {{user}}. Rest now.",
    "mes_example": "<START>\n{{user}}: Who are you?\n{{char}}: I am Seraphina, keeper of this forest.",
    "creator_notes": "A gentle healer.",
    "system_prompt": "{{original}} Write {{char}}'s next reply only.",
    "post_history_instructions": "Keep {{char}}'s reply under three sentences.",
    "alternate_greetings": ["*{{char}} hums while tending the fire.* Oh, {{user}}, good morning."],
    "character_book": {
        "name": "Seraphina's world",
        "extensions": {},
        "entries": [
            {
                "id": 0,
                "keys": ["glade", "sanctuary"],
                "secondary_keys": [],
                "comment": "the Glade",
                "content": LOREBOOK_ENTRY_CONTENT,
                "constant": False,
                "selective": True,
                "insertion_order": 100,
                "enabled": True,
                "position": "before_char",
                "use_regex": True,
                "extensions": {
                    "position": 0,
                    "exclude_recursion": False,
                    "display_index": 0,
                    "probability": 100,
                    "useProbability": True,
                    "depth": 4,
                    "selectiveLogic": 0,
                    "group": "",
                    "scan_depth": None,
                    "case_sensitive": None,
                    "automation_id": "",
                    "role": 0,
                    "vectorized": False,
                },
            },
            {
                "id": 1,
                "keys": ["Shadowfang"],
                "secondary_keys": [],
                "comment": "disabled",
                "content": "Shadowfang is a cursed wolf.",
                "constant": False,
                "selective": False,
                "insertion_order": 50,
                "enabled": False,
                "position": "after_char",
                "extensions": {"position": 1},
            },
        ],
    },
    "tags": ["fantasy", "healer"],
    "creator": "tester",
    "character_version": "1.0",
    "extensions": {
        "talkativeness": "0.5",
        "fav": False,
        "world": "Seraphina's world",
        "depth_prompt": {"prompt": "", "depth": 4, "role": "system"},
        "example.com/rating": {"stars": 5},
    },
}

SERAPHINA_V2 = {
    **{key: _SERAPHINA_DATA[key] for key in ("name", "description", "personality", "scenario", "first_mes")},
    "mes_example": _SERAPHINA_DATA["mes_example"],
    "creatorcomment": "A gentle healer.",
    "avatar": "none",
    "chat": "Seraphina - 2024-05-01@12h00m00s",
    "talkativeness": "0.5",
    "fav": False,
    "tags": ["fantasy", "healer"],
    "spec": "chara_card_v2",
    "spec_version": "2.0",
    "data": _SERAPHINA_DATA,
    "create_date": "2024-05-01T12:00:00.000Z",
}

V1_CARD = {
    "name": "Old Timer",
    "description": "A card from before V2.",
    "personality": "grumpy",
    "scenario": "",
    "first_mes": "What do you want?",
    "mes_example": "",
    "char_persona": "a field some V1 tools wrote",
}


def v3_card() -> dict:
    card = copy.deepcopy(SERAPHINA_V2)
    card.update(spec="chara_card_v3", spec_version="3.0")
    card["data"].update(
        nickname="Sera",
        group_only_greetings=["*{{char}} waves at everyone.*"],
        creation_date=1714564800,
        assets=[{"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}],
    )
    return card


def named(card: dict, name: str) -> dict:
    """The card under another name (names are unique in the service)."""
    card = copy.deepcopy(card)
    card["name"] = name
    if "data" in card:
        card["data"]["name"] = name
    return card


def card_png(chunks: dict[str, str], size: tuple[int, int] = (400, 600), mode: str = "RGB") -> bytes:
    image = Image.new(mode, size, 0 if mode == "1" else (180, 120, 200)[: len(mode)])
    info = PngImagePlugin.PngInfo()
    for keyword, text in chunks.items():
        info.add_text(keyword, text)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def encoded(card: dict) -> str:
    return base64.b64encode(json.dumps(card).encode("utf-8")).decode("ascii")


def sillytavern_png(card: dict, size: tuple[int, int] = (400, 600)) -> bytes:
    """A card PNG as SillyTavern exports one: the card as base64 JSON in a `chara` tEXt chunk."""
    return card_png({"chara": encoded(card)}, size)
