"""What an uploaded card may weigh, and the refusal raised when it is over a limit or unreadable."""

from dataclasses import dataclass


class CardError(ValueError):
    """A card that cannot be imported; `status` is the HTTP status that fits (413 over a limit, else 4xx)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CardLimits:
    max_upload_bytes: int = 8 * 1024 * 1024
    max_json_bytes: int = 2 * 1024 * 1024
    max_json_depth: int = 32
    max_image_side: int = 4096
    max_image_pixels: int = 4096 * 4096
    # What is stored of a picture (an avatar, a card's image): at most this many pixels a side, and
    # a PNG of at most this many bytes, so that a character always fits in one MongoDB document.
    avatar_max_side: int = 1024
    avatar_max_bytes: int = 1024 * 1024

    def check_upload(self, raw: bytes) -> None:
        if len(raw) > self.max_upload_bytes:
            raise CardError(
                413, "upload_too_large", f"the file is {len(raw)} bytes, the limit is {self.max_upload_bytes}"
            )
