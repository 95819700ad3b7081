"""Character Card V1/V2/V3 as JSON and PNG: what comes in goes back out, bad files are refused."""

import base64
import io
import json
import os

import pytest
from PIL import Image

from api.http.card_upload import card_limits
from cards.card_json import card_bytes, export_card
from cards.card_png import avatar_png, read_png_card, write_png_card
from cards.importing import ImportedCard, import_card
from cards.limits import CardError, CardLimits
from settings import Settings
from tests.support.cards import SERAPHINA_V2, V1_CARD, card_png, encoded, sillytavern_png, v3_card

LIMITS = CardLimits()


def exported_json(card: ImportedCard, spec: str) -> bytes:
    return card_bytes(export_card(card.data, card.card_extras, spec))


def exported_png(card: ImportedCard, spec: str) -> bytes:
    chunks = {"chara": export_card(card.data, card.card_extras, "v2")}
    if spec == "v3":
        chunks["ccv3"] = export_card(card.data, card.card_extras, "v3")
    return write_png_card(card.avatar_png, chunks)


def png_text(png: bytes) -> dict[str, dict]:
    image = Image.open(io.BytesIO(png))
    image.load()
    return {keyword: json.loads(base64.b64decode(text)) for keyword, text in image.text.items()}


def same_card(first: ImportedCard, second: ImportedCard) -> None:
    assert second.data.card_dict() == first.data.card_dict()
    assert second.card_extras == first.card_extras


@pytest.mark.parametrize(
    ("card", "spec"), [(V1_CARD, "v2"), (SERAPHINA_V2, "v2"), (v3_card(), "v3")], ids=["v1", "v2", "v3"]
)
def test_json_cards_round_trip_with_their_unknown_fields(card: dict, spec: str) -> None:
    imported = import_card(json.dumps(card).encode(), LIMITS)

    again = import_card(exported_json(imported, spec), LIMITS)

    same_card(imported, again)
    assert again.spec == spec


def test_a_sillytavern_v2_card_keeps_every_field_it_came_with() -> None:
    imported = import_card(json.dumps(SERAPHINA_V2).encode(), LIMITS)

    exported = export_card(imported.data, imported.card_extras, "v2")

    assert exported["data"] == SERAPHINA_V2["data"]
    assert exported == SERAPHINA_V2
    book = imported.data.character_book
    assert [entry.keys for entry in book.entries] == [["glade", "sanctuary"], ["Shadowfang"]]
    assert imported.data.extensions["example.com/rating"] == {"stars": 5}


def test_a_v1_card_becomes_v2_with_its_extra_keys_beside_data() -> None:
    imported = import_card(json.dumps(V1_CARD).encode(), LIMITS)

    exported = export_card(imported.data, imported.card_extras, "v2")

    assert imported.spec == "v1"
    assert exported["spec"] == "chara_card_v2"
    assert exported["data"]["first_mes"] == "What do you want?"
    assert exported["char_persona"] == "a field some V1 tools wrote"


def test_v3_keeps_its_own_fields() -> None:
    imported = import_card(json.dumps(v3_card()).encode(), LIMITS)

    exported = export_card(imported.data, imported.card_extras, "v3")

    assert exported["spec"] == "chara_card_v3" and exported["spec_version"] == "3.0"
    assert exported["data"]["nickname"] == "Sera"
    assert exported["data"]["assets"] == v3_card()["data"]["assets"]


@pytest.mark.parametrize(
    ("card", "spec"), [(V1_CARD, "v2"), (SERAPHINA_V2, "v2"), (v3_card(), "v3")], ids=["v1", "v2", "v3"]
)
def test_png_cards_round_trip_with_their_picture(card: dict, spec: str) -> None:
    imported = import_card(sillytavern_png(card, size=(40, 60)), LIMITS)

    again = import_card(exported_png(imported, spec), LIMITS)

    same_card(imported, again)
    assert Image.open(io.BytesIO(again.avatar_png)).size == (40, 60)


def test_v3_png_carries_a_v2_chara_chunk_and_a_v3_ccv3_chunk() -> None:
    imported = import_card(card_png({"ccv3": encoded(v3_card())}), LIMITS)

    chunks = png_text(exported_png(imported, "v3"))

    assert set(chunks) == {"chara", "ccv3"}
    assert chunks["chara"]["spec"] == "chara_card_v2"
    assert chunks["ccv3"]["spec"] == "chara_card_v3"
    assert chunks["ccv3"]["data"]["nickname"] == "Sera"


def test_ccv3_is_read_before_chara_as_sillytavern_does() -> None:
    old = dict(SERAPHINA_V2, data=dict(SERAPHINA_V2["data"], description="stale"))
    png = card_png({"chara": encoded(old), "ccv3": encoded(v3_card())})

    imported = import_card(png, LIMITS)

    assert imported.spec == "v3"
    assert imported.data.description == SERAPHINA_V2["data"]["description"]


def deep_card(levels: int) -> bytes:
    return b'{"name": "Deep", "x": ' + b"[" * levels + b"]" * levels + b"}"


@pytest.mark.parametrize(
    ("upload", "status", "code", "reason"),
    [
        (card_png({"Software": "a paint program"}), 422, "no_card_data", "no `chara` or `ccv3`"),
        (sillytavern_png(SERAPHINA_V2)[:-200], 422, "invalid_image", "truncated"),
        (card_png({"chara": "not base64 at all!"}), 422, "invalid_card", "not valid base64"),
        (card_png({"chara": encoded(SERAPHINA_V2)}, (10_000, 10_000), "1"), 413, "image_too_large", "pixels"),
        (card_png({"chara": base64.b64encode(b"{oops").decode()}), 422, "invalid_card", "not valid JSON"),
        (json.dumps({"spec": "chara_card_v9", "data": {}}).encode(), 422, "invalid_card", "chara_card_v9"),
        (
            json.dumps({"spec": "chara_card_v2", "data": {"description": "x"}}).encode(),
            422,
            "invalid_card",
            "name",
        ),
        (deep_card(100), 422, "card_too_deep", "deeper than 32"),
        (deep_card(100_000), 422, "card_too_deep", "deeper than 32"),
        (b"GIF89a not a card", 415, "unsupported_media_type", "PNG image or a JSON object"),
    ],
    ids=[
        "png-without-card",
        "truncated-png",
        "bad-base64",
        "10000x10000",
        "bad-json",
        "unknown-spec",
        "no-name",
        "deep-json",
        "very-deep-json",
        "not-a-card",
    ],
)
def test_bad_uploads_are_refused_with_a_reason(upload: bytes, status: int, code: str, reason: str) -> None:
    with pytest.raises(CardError) as refused:
        import_card(upload, LIMITS)

    assert (refused.value.status, refused.value.code) == (status, code)
    assert reason in refused.value.message and str(refused.value) == refused.value.message


def with_description(size: int) -> dict:
    return dict(SERAPHINA_V2, data=dict(SERAPHINA_V2["data"], description="x" * size))


@pytest.mark.parametrize(
    ("upload", "code"),
    [
        (json.dumps(with_description(3_000_000)).encode(), "card_too_large"),
        (sillytavern_png(with_description(3_000_000)), "card_too_large"),
        (sillytavern_png(with_description(7_000_000)), "upload_too_large"),
    ],
    ids=["json-card", "card-in-png", "upload"],
)
def test_a_card_over_the_size_limits_is_refused(upload: bytes, code: str) -> None:
    with pytest.raises(CardError) as refused:
        import_card(upload, LIMITS)

    assert (refused.value.status, refused.value.code) == (413, code)
    assert "limit" in refused.value.message


# The service's own limits, as the upload routes build them from the settings.
SERVICE_LIMITS = card_limits(Settings())


@pytest.mark.parametrize("size", [(4096, 4096), (4096, 1), (1, 4096)], ids=["4096x4096", "4096x1", "1x4096"])
def test_a_card_image_at_the_limits_is_imported_with_its_picture_downscaled(size: tuple[int, int]) -> None:
    imported = import_card(card_png({"chara": encoded(SERAPHINA_V2)}, size, "1"), SERVICE_LIMITS)
    side = SERVICE_LIMITS.avatar_max_side

    assert imported.data.name == SERAPHINA_V2["data"]["name"]
    assert Image.open(io.BytesIO(imported.avatar_png)).size == tuple(max(1, n * side // 4096) for n in size)


@pytest.mark.parametrize(
    "size",
    [(4097, 1), (1, 4097), (4097, 4097), (5000, 5000)],
    ids=["4097x1", "1x4097", "4097x4097", "5000x5000"],
)
def test_a_card_image_one_pixel_over_a_side_is_refused(size: tuple[int, int]) -> None:
    with pytest.raises(CardError) as refused:
        import_card(card_png({"chara": encoded(SERAPHINA_V2)}, size, "1"), SERVICE_LIMITS)

    assert (refused.value.status, refused.value.code) == (413, "image_too_large")
    assert (
        f"{size[0]}x{size[1]} pixels" in refused.value.message
        and "4096 pixels a side" in refused.value.message
    )


@pytest.mark.parametrize(
    ("size", "accepted"),
    [((4096, 100), True), ((100, 4096), True), ((4096, 101), False), ((101, 4096), False)],
    ids=["4096x100", "100x4096", "4096x101", "101x4096"],
)
def test_the_pixel_limit_counts_width_times_height(size: tuple[int, int], accepted: bool) -> None:
    limits = CardLimits(max_image_side=4096, max_image_pixels=4096 * 100)
    upload = card_png({"chara": encoded(SERAPHINA_V2)}, size, "1")

    if accepted:
        assert import_card(upload, limits).data.name == SERAPHINA_V2["data"]["name"]
    else:
        with pytest.raises(CardError) as refused:
            import_card(upload, limits)
        assert refused.value.code == "image_too_large" and "409600 pixels in all" in refused.value.message


def test_a_card_without_an_avatar_is_exported_on_a_plain_placeholder() -> None:
    png = write_png_card(
        None, {"chara": export_card(import_card(json.dumps(V1_CARD).encode(), LIMITS).data, {}, "v2")}
    )

    image = Image.open(io.BytesIO(png))
    assert (image.format, image.mode, image.size) == ("PNG", "RGB", (400, 600))
    assert image.getpixel((0, 0)) == image.getpixel((399, 599)) == (72, 72, 84)
    assert png_text(png)["chara"]["data"]["name"] == V1_CARD["name"]


def test_a_v3_export_gives_a_card_without_group_greetings_an_empty_list() -> None:
    imported = import_card(json.dumps(SERAPHINA_V2).encode(), LIMITS)

    assert export_card(imported.data, imported.card_extras, "v3")["data"]["group_only_greetings"] == []
    assert "group_only_greetings" not in export_card(imported.data, imported.card_extras, "v2")["data"]


def test_exported_card_json_keeps_non_ascii_text_as_utf8() -> None:
    raw = card_bytes({"name": "Séraphine 세라핀"})

    assert raw == '{"name": "Séraphine 세라핀"}'.encode()


def test_an_uploaded_avatar_becomes_a_plain_png_of_the_same_picture() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 200, 30)).save(buffer, "JPEG")

    png = avatar_png(buffer.getvalue(), LIMITS)

    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (30, 20))
    assert not getattr(image, "text", {})


def noisy_jpeg(side: int, quality: int = 90) -> bytes:
    """A photo's worst case: random pixels, which neither JPEG nor PNG compresses much."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def test_a_noisy_4096_square_jpeg_under_the_upload_limit_is_stored_downscaled_within_the_budget() -> None:
    upload = noisy_jpeg(4096, quality=40)

    png = avatar_png(upload, SERVICE_LIMITS)

    image = Image.open(io.BytesIO(png))
    assert len(upload) <= SERVICE_LIMITS.max_upload_bytes
    assert image.format == "PNG" and max(image.size) <= SERVICE_LIMITS.avatar_max_side
    assert len(png) <= SERVICE_LIMITS.avatar_max_bytes


def test_a_picture_whose_png_is_over_the_byte_budget_shrinks_until_it_fits() -> None:
    limits = CardLimits(avatar_max_side=1024, avatar_max_bytes=64 * 1024)

    png = avatar_png(noisy_jpeg(512), limits)

    image = Image.open(io.BytesIO(png))
    assert len(png) <= 64 * 1024
    assert 0 < image.size[0] == image.size[1] < 512


def jpeg_bytes(mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (4, 4)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("read", "upload", "refusal"),
    [
        (import_card, card_png({"chara": base64.b64encode(b"[1, 2]").decode()}),
         (422, "invalid_card", "the card must be a JSON object")),
        (import_card, b'{"name": "\xff"}',
         (422, "invalid_card", "the card is not UTF-8 text: 'utf-8' codec can't decode byte 0xff in position 10: invalid start byte")),
        (import_card, json.dumps({"spec": "chara_card_v2", "name": "x"}).encode(),
         (422, "invalid_card", "a chara_card_v2 card needs a `data` object")),
        (import_card, json.dumps({"spec": "chara_card_v3", "data": []}).encode(),
         (422, "invalid_card", "a chara_card_v3 card needs a `data` object")),
        (import_card, json.dumps({"spec": "chara_card_v9", "name": "x"}).encode(),
         (422, "invalid_card", "not a character card: spec 'chara_card_v9' (expected chara_card_v2, chara_card_v3, or a V1 card with a name)")),
        (import_card, json.dumps({"spec": "chara_card_v2", "data": {"description": "x", "tags": 5}}).encode(),
         (422, "invalid_card", "the card's data is invalid: name: Field required; tags: Input should be a valid list")),
        (import_card, json.dumps({"spec": "chara_card_v2", "data": {"name": "x", "character_book": {"entries": [{"keys": 5}]}}}).encode(),
         (422, "invalid_card", "the card's data is invalid: character_book.entries.0.keys: Input should be a valid list")),
        (import_card, b"[1, 2]", (415, "unsupported_media_type", "a character card must be a PNG image or a JSON object")),
        (avatar_png, b"not an image at all", (422, "invalid_image", "the file is not an image Pillow can read")),
        (read_png_card, jpeg_bytes(), (415, "unsupported_media_type", "a card image must be a PNG, not JPEG")),
        (import_card, card_png({"Software": "a paint program"}),
         (422, "no_card_data", "the PNG holds no character card (no `chara` or `ccv3` text chunk)")),
        (import_card, card_png({"chara": encoded(SERAPHINA_V2) + "!"}),
         (422, "invalid_card", "the `chara` chunk is not valid base64")),
    ],
    ids=["json-list", "not-utf8", "v2-without-data", "v3-data-not-object", "unknown-spec", "invalid-data",
         "invalid-nested-field", "json-not-object", "not-an-image", "jpeg-as-card", "png-without-card", "junk-in-base64"],
)  # fmt: skip
def test_each_refusal_says_exactly_what_is_wrong(read, upload: bytes, refusal: tuple) -> None:
    with pytest.raises(CardError) as refused:
        read(upload, LIMITS)

    assert (refused.value.status, refused.value.code, refused.value.message) == refusal


def test_a_json_card_after_a_byte_order_mark_and_blank_lines_is_read() -> None:
    raw = b"\xef\xbb\xbf \r\n\t" + json.dumps(SERAPHINA_V2).encode()

    assert import_card(raw, LIMITS).data.name == SERAPHINA_V2["data"]["name"]


def test_size_and_depth_limits_are_inclusive() -> None:
    raw = json.dumps(SERAPHINA_V2).encode()
    exact = CardLimits(max_upload_bytes=len(raw), max_json_bytes=len(raw))
    deep = b'{"name": "Deep", "x": ' + b"[" * 31 + b"]" * 31 + b"}"  # 32 levels with the card itself

    assert import_card(raw, exact).data.name == SERAPHINA_V2["data"]["name"]
    assert import_card(deep, LIMITS).data.name == "Deep"
    with pytest.raises(CardError, match="the upload is|the limit is"):
        import_card(raw + b" ", exact)
    with pytest.raises(CardError, match="deeper than 32"):
        import_card(b'{"name": "Deep", "x": ' + b"[" * 32 + b"]" * 32 + b"}", LIMITS)


@pytest.mark.parametrize(("mode", "kept"), [("RGB", "RGB"), ("L", "L"), ("CMYK", "RGBA")])
def test_an_avatar_keeps_a_png_mode_and_any_other_becomes_rgba(mode: str, kept: str) -> None:
    assert Image.open(io.BytesIO(avatar_png(jpeg_bytes(mode), LIMITS))).mode == kept
