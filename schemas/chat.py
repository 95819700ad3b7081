"""Request bodies of the chat routes, compatible with the original service's."""

import re

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails

from schemas.common import ObjectIdStr
from schemas.sampling import DEFAULTS

DRIVE_THUMBNAIL_URL = re.compile(r"^https?://drive\.google\.com/thumbnail\?id=[a-zA-Z0-9_-]+$")
# Required unless the request names a stored character or conversation.
ORIGINAL_CHARACTER_FIELDS = ("character_name", "greeting", "context", "image")


class GenerationParams(BaseModel):
    """Optional sampling knobs; the original had none, so every one has a default."""

    max_tokens: int | None = Field(
        default=None, ge=1, le=4096, description="none: the server's DEFAULT_MAX_TOKENS"
    )
    temperature: float = Field(default=DEFAULTS.temperature, ge=0.0, le=2.0)
    top_p: float = Field(default=DEFAULTS.top_p, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=0)
    detach: bool = Field(
        default=False,
        description="finish and store the reply even if the client disconnects (resume it at /jobs/{id}/events)",
    )


class LumimaidRequest(GenerationParams):
    """The original body; with `character_id` or `conversation_id` the stored character is used and
    the original character fields may be left out."""

    input_data: str = Field(min_length=1, max_length=500, description="the user's message")
    character_name: str | None = Field(default=None, min_length=1, max_length=100)
    greeting: str | None = Field(default=None, max_length=4000, description="the character's first message")
    context: str | None = Field(
        default=None, max_length=8000, description="the character's description and scenario"
    )
    image: str | None = Field(default=None, description="https://drive.google.com/thumbnail?id=...")
    access_level: bool = True
    character_id: ObjectIdStr | None = Field(
        default=None, description="a stored character: a new conversation"
    )
    conversation_id: ObjectIdStr | None = Field(default=None, description="continue this conversation")

    @field_validator("image")
    @classmethod
    def _drive_thumbnail(cls, value: str | None) -> str | None:
        if value is not None and not DRIVE_THUMBNAIL_URL.match(value):
            raise ValueError(
                "must be a Google Drive thumbnail URL: https://drive.google.com/thumbnail?id=<id>"
            )
        return value

    @model_validator(mode="after")
    def _original_fields_without_a_stored_character(self) -> "LumimaidRequest":
        if self.character_id or self.conversation_id:
            return self
        missing = [name for name in ORIGINAL_CHARACTER_FIELDS if getattr(self, name) is None]
        if missing:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [InitErrorDetails(type="missing", loc=(name,), input=None) for name in missing],
            )
        return self


class LlamaRequest(GenerationParams):
    input_data: str = Field(min_length=1, max_length=500, description="the user's question")
    google_access: bool = False
    conversation_id: ObjectIdStr | None = Field(default=None, description="continue this conversation")
