"""Request bodies of the chat routes, compatible with the original service's."""

import re

from pydantic import BaseModel, Field, field_validator

DRIVE_THUMBNAIL_URL = re.compile(r"^https?://drive\.google\.com/thumbnail\?id=[a-zA-Z0-9_-]+$")


class GenerationParams(BaseModel):
    """Optional sampling knobs; the original had none, so every one has a default."""

    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=0)
    detach: bool = Field(
        default=False,
        description="finish and store the reply even if the client disconnects (resume it at /jobs/{id}/events)",
    )


class LumimaidRequest(GenerationParams):
    input_data: str = Field(min_length=1, max_length=500, description="the user's message")
    character_name: str = Field(min_length=1, max_length=100)
    greeting: str = Field(max_length=4000, description="the character's first message")
    context: str = Field(max_length=8000, description="the character's description and scenario")
    image: str = Field(description="https://drive.google.com/thumbnail?id=...")
    access_level: bool = True

    @field_validator("image")
    @classmethod
    def _drive_thumbnail(cls, value: str) -> str:
        if not DRIVE_THUMBNAIL_URL.match(value):
            raise ValueError(
                "must be a Google Drive thumbnail URL: https://drive.google.com/thumbnail?id=<id>"
            )
        return value


class LlamaRequest(GenerationParams):
    input_data: str = Field(min_length=1, max_length=500, description="the user's question")
    google_access: bool = False
