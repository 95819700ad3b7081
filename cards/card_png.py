"""Character cards inside PNG images, read and written with Pillow.

The card is base64 JSON in a `tEXt` chunk: `chara` (V2, read by every frontend) and, for V3, also
`ccv3`. Like SillyTavern, reading prefers `ccv3` and matches keywords case-insensitively. Images are
checked before their pixels are decoded: byte size, then the dimensions in the header (a small file
can declare a huge image: a decompression bomb), and Pillow's own bomb check is made an error. What
is stored of a picture is sized to fit the avatar limits (`stored_png`): a noisy 4096x4096 photo
is a 50 MB PNG, past MongoDB's 16 MB document.
"""

import base64
import binascii
import io
import math
import warnings
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from cards.card_json import ImportedCard, card_bytes, parse_card_json
from cards.limits import CardError, CardLimits

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_KEYWORDS = ("ccv3", "chara")  # in the order they are read
PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}
# What an exported card shows when its character has no avatar (SillyTavern's avatars are 400x600).
PLACEHOLDER_SIZE = (400, 600)
PLACEHOLDER_COLOUR = (72, 72, 84)


def open_image(raw: bytes, limits: CardLimits, draft_side: int | None = None) -> Image.Image:
    """Decode an image within the limits; every failure is a CardError naming the reason.
    `draft_side`: a JPEG may be decoded at a fraction of its size, still at least this a side."""
    limits.check_upload(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(raw))
            _check_dimensions(probe.size, limits)
            probe.verify()  # every chunk's CRC, through to IEND: finds a truncated file
            image = Image.open(io.BytesIO(raw))
            if draft_side is not None:
                image.draft(None, (draft_side, draft_side))
            image.load()
        except CardError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise CardError(
                413, "image_too_large", f"the image is too large to decode safely: {exc}"
            ) from None
        except UnidentifiedImageError:
            raise CardError(422, "invalid_image", "the file is not an image Pillow can read") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise CardError(422, "invalid_image", f"the image is damaged or truncated: {exc}") from None
    return image


def _check_dimensions(size: tuple[int, int], limits: CardLimits) -> None:
    width, height = size
    if max(width, height) > limits.max_image_side or width * height > limits.max_image_pixels:
        raise CardError(
            413,
            "image_too_large",
            f"the image is {width}x{height} pixels; the limit is {limits.max_image_side} pixels a side "
            f"and {limits.max_image_pixels} pixels in all",
        )


def plain_png(image: Image.Image) -> bytes:
    """The picture alone, as PNG: no card chunks or other metadata kept."""
    if image.mode not in PNG_MODES:
        image = image.convert("RGBA")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


def stored_png(image: Image.Image, limits: CardLimits) -> bytes:
    """The picture as a plain PNG within the avatar limits: downscaled to `avatar_max_side`, then
    smaller again while its PNG is over `avatar_max_bytes` (noise hardly compresses, so the bytes go
    with the pixels: each step scales the area by the excess, and a 1x1 PNG is tiny). A picture
    within both is kept as it is. The image is downscaled in place."""
    side = limits.avatar_max_side
    if max(image.size) > side:
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
    png = plain_png(image)
    while len(png) > limits.avatar_max_bytes:
        scale = math.sqrt(limits.avatar_max_bytes / len(png)) * 0.9
        image = image.resize(tuple(max(1, int(n * scale)) for n in image.size), Image.Resampling.LANCZOS)
        png = plain_png(image)
    return png


def avatar_png(raw: bytes, limits: CardLimits) -> bytes:
    """An uploaded picture (any format Pillow reads, within the limits) as a plain PNG, sized."""
    return stored_png(open_image(raw, limits, draft_side=limits.avatar_max_side), limits)


def _card_text(image: Image.Image) -> tuple[str, str]:
    chunks = {str(key).lower(): value for key, value in getattr(image, "text", {}).items()}
    for keyword in CARD_KEYWORDS:
        if keyword in chunks:
            return keyword, chunks[keyword]
    raise CardError(422, "no_card_data", "the PNG holds no character card (no `chara` or `ccv3` text chunk)")


def read_png_card(raw: bytes, limits: CardLimits) -> ImportedCard:
    image = open_image(raw, limits)
    if image.format != "PNG":
        raise CardError(415, "unsupported_media_type", f"a card image must be a PNG, not {image.format}")
    keyword, text = _card_text(image)
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CardError(422, "invalid_card", f"the `{keyword}` chunk is not valid base64") from None
    card = parse_card_json(decoded, limits)
    card.avatar_png = stored_png(image, limits)
    return card


def write_png_card(avatar_png: bytes | None, cards: dict[str, dict[str, Any]]) -> bytes:
    """The avatar (or a plain placeholder) with each card as base64 JSON in a `tEXt` chunk."""
    if avatar_png:
        image = Image.open(io.BytesIO(avatar_png))
    else:
        image = Image.new("RGB", PLACEHOLDER_SIZE, PLACEHOLDER_COLOUR)
    info = PngImagePlugin.PngInfo()
    for keyword, card in cards.items():
        info.add_text(keyword, base64.b64encode(card_bytes(card)).decode("ascii"))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()
