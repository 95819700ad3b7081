"""Characters over HTTP: cards imported and exported as SillyTavern writes them, the REST routes,
and bad uploads refused with a reason and nothing stored."""

import base64
import io
import json
import os
import uuid

import httpx
import pytest
from PIL import Image

from tests.support.cards import SERAPHINA_V2, card_png, encoded, named, sillytavern_png, v3_card


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:8]}"


def png_cards(png: bytes) -> dict[str, dict]:
    image = Image.open(io.BytesIO(png))
    image.load()
    return {keyword: json.loads(base64.b64decode(text)) for keyword, text in image.text.items()}


def import_png(api: httpx.Client, png: bytes) -> httpx.Response:
    return api.post("/characters/import", content=png, headers={"Content-Type": "image/png"})


def test_a_sillytavern_png_card_imports_and_exports_back_unchanged(api: httpx.Client) -> None:
    card = named(SERAPHINA_V2, unique("Seraphina"))

    imported = import_png(api, sillytavern_png(card, size=(40, 60)))
    character = imported.json()
    exported = api.get(f"/characters/{character['id']}/export", params={"format": "png"})

    assert imported.status_code == 201
    assert character["first_mes"] == card["data"]["first_mes"]
    assert character["character_book"]["entries"][0]["keys"] == ["glade", "sanctuary"]
    assert character["has_avatar"]
    assert exported.status_code == 200 and exported.headers["content-type"] == "image/png"
    assert png_cards(exported.content) == {"chara": card}
    assert Image.open(io.BytesIO(exported.content)).size == (40, 60)
    assert api.get(f"/characters/{character['id']}/avatar").content[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_v3_export_carries_both_chunks(api: httpx.Client) -> None:
    card = named(v3_card(), unique("Sera"))
    character = import_png(api, card_png({"ccv3": encoded(card)})).json()

    exported = api.get(f"/characters/{character['id']}/export", params={"format": "png", "spec": "v3"})
    chunks = png_cards(exported.content)

    assert chunks["ccv3"] == card
    assert chunks["chara"] == dict(card, spec="chara_card_v2", spec_version="2.0")


def test_a_card_imports_from_a_form_upload_and_exports_as_json(api: httpx.Client) -> None:
    card = named(SERAPHINA_V2, unique("Seraphina"))
    files = {"file": ("seraphina.png", sillytavern_png(card), "image/png")}

    character = api.post("/characters/import", files=files).json()
    exported = api.get(f"/characters/{character['id']}/export", params={"format": "json"})

    assert exported.json() == card
    assert "attachment" in exported.headers["content-disposition"]


def test_a_json_card_imports_from_the_body(api: httpx.Client) -> None:
    card = named(SERAPHINA_V2, unique("Seraphina"))

    response = api.post("/characters/import", json=card)

    assert response.status_code == 201
    assert response.json()["extensions"]["example.com/rating"] == {"stars": 5}
    assert not response.json()["has_avatar"]


def test_characters_are_created_read_updated_and_deleted(api: httpx.Client) -> None:
    name = unique("Luna")
    created = api.post("/characters", json={"name": name, "description": "a moon spirit", "tags": ["moon"]})
    path = f"/characters/{created.json()['id']}"

    read = api.get(path).json()
    updated = api.put(path, json={**read_fields(read), "description": "a full moon spirit"})
    deleted = api.delete(path)

    assert created.status_code == 201
    assert (read["name"], read["description"], read["tags"]) == (name, "a moon spirit", ["moon"])
    assert updated.json()["description"] == "a full moon spirit"
    assert deleted.status_code == 204
    assert api.get(path).status_code == 404


def read_fields(character: dict) -> dict:
    service_fields = {"id", "mine", "has_avatar", "avatar_url", "created_at", "updated_at"}
    return {key: value for key, value in character.items() if key not in service_fields}


def test_an_update_keeps_the_unknown_fields_of_an_imported_card(api: httpx.Client) -> None:
    card = named(SERAPHINA_V2, unique("Seraphina"))
    character = api.post("/characters/import", json=card).json()

    api.put(f"/characters/{character['id']}", json={**read_fields(character), "personality": "fierce"})
    exported = api.get(f"/characters/{character['id']}/export", params={"format": "json"}).json()

    assert exported["data"]["personality"] == "fierce"
    assert exported["personality"] == "fierce"  # the V1 copy follows
    assert exported["create_date"] == card["create_date"]
    assert exported["data"]["character_book"] == card["data"]["character_book"]


def test_listing_is_paged_and_searches_by_name_and_tag(api: httpx.Client) -> None:
    prefix, tag = unique("Lister"), f"tag-{uuid.uuid4().hex[:8]}"
    for index in range(3):
        api.post("/characters", json={"name": f"{prefix} {index}", "tags": [tag] if index else []})

    first = api.get("/characters", params={"q": prefix.upper(), "page_size": 2}).json()
    second = api.get("/characters", params={"q": prefix, "page_size": 2, "page": 2}).json()
    tagged = api.get("/characters", params={"tag": tag}).json()

    assert first["total"] == 3
    assert [c["name"] for c in first["items"] + second["items"]] == [f"{prefix} {i}" for i in range(3)]
    assert [c["name"] for c in tagged["items"]] == [f"{prefix} 1", f"{prefix} 2"]


def test_a_second_character_of_the_same_name_is_409(api: httpx.Client) -> None:
    name = unique("Twin")
    api.post("/characters", json={"name": name})

    again = api.post("/characters/import", json=named(SERAPHINA_V2, name))

    assert again.status_code == 409
    assert name in again.json()["error"]["message"]


def test_unknown_fields_in_a_created_character_are_422(api: httpx.Client) -> None:
    response = api.post("/characters", json={"name": unique("Typo"), "greting": "hi"})

    assert response.status_code == 422
    assert "greting" in response.json()["error"]["fields"]


def test_the_avatar_can_be_replaced_by_any_image(api: httpx.Client) -> None:
    character = api.post("/characters", json={"name": unique("Painted")}).json()
    jpeg = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 200, 10)).save(jpeg, "JPEG")

    response = api.put(f"/characters/{character['id']}/avatar", files={"file": ("a.jpg", jpeg.getvalue())})
    avatar = api.get(f"/characters/{character['id']}/avatar")

    assert response.status_code == 200 and response.json()["has_avatar"]
    assert Image.open(io.BytesIO(avatar.content)).format == "PNG"
    assert Image.open(io.BytesIO(avatar.content)).size == (30, 20)


def test_a_noisy_4096_square_jpeg_avatar_is_stored_downscaled(api: httpx.Client) -> None:
    character = api.post("/characters", json={"name": unique("Noisy")}).json()
    jpeg = io.BytesIO()
    Image.frombytes("RGB", (4096, 4096), os.urandom(4096 * 4096 * 3)).save(jpeg, "JPEG", quality=40)

    response = api.put(f"/characters/{character['id']}/avatar", content=jpeg.getvalue())
    avatar = api.get(f"/characters/{character['id']}/avatar")

    assert response.status_code == 200 and response.json()["has_avatar"]
    assert max(Image.open(io.BytesIO(avatar.content)).size) <= 1024  # AVATAR_MAX_SIDE
    assert len(avatar.content) <= 1024 * 1024  # AVATAR_MAX_BYTES


@pytest.mark.parametrize(
    ("upload", "status", "reason"),
    [
        (card_png({"Software": "a paint program"}), 422, "no character card"),
        (sillytavern_png(SERAPHINA_V2)[:-300], 422, "truncated"),
        (card_png({"chara": "%%% not base64 %%%"}), 422, "base64"),
        (card_png({"chara": encoded(SERAPHINA_V2)}, (10_000, 10_000), "1"), 413, "pixels"),
        (b"\x89PNG\r\n\x1a\n" + bytes(9 * 1024 * 1024), 413, "limit"),
        (b"", 400, "empty"),
    ],
    ids=["png-without-card", "truncated-png", "bad-base64", "10000x10000", "over-size", "empty"],
)
def test_bad_card_uploads_are_refused_with_a_reason_and_nothing_is_stored(
    api: httpx.Client, db, upload: bytes, status: int, reason: str
) -> None:
    before = db.characters.count_documents({})

    response = import_png(api, upload)

    assert response.status_code == status
    assert reason in response.json()["error"]["message"]
    assert db.characters.count_documents({}) == before


def test_an_unknown_character_is_404_and_a_malformed_id_422(api: httpx.Client) -> None:
    assert api.get(f"/characters/{'0' * 24}").status_code == 404
    assert api.get("/characters/not-an-id").status_code == 422
