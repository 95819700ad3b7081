"""One entry point for an uploaded card, whatever its format: PNG by its signature, else JSON."""

from cards.card_json import ImportedCard, parse_card_json
from cards.card_png import PNG_SIGNATURE, read_png_card
from cards.limits import CardError, CardLimits


def import_card(raw: bytes, limits: CardLimits) -> ImportedCard:
    limits.check_upload(raw)
    if raw.startswith(PNG_SIGNATURE):
        return read_png_card(raw, limits)
    if raw.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return parse_card_json(raw, limits)
    raise CardError(415, "unsupported_media_type", "a character card must be a PNG image or a JSON object")
