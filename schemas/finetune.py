"""A LoRA fine-tuning job as the API accepts it and puts it on the training queue."""

from typing import Annotated

from pydantic import BaseModel, Field

from schemas.common import FolderName

FINETUNE_TASK = "finetune.run"


class FinetuneRequest(BaseModel):
    dataset: Annotated[FolderName, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    name: Annotated[FolderName, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="the adapter's name")]
    model: str = "llama"
    steps: int = Field(default=30, ge=1, le=100_000)
    batch_size: int = Field(default=4, ge=1, le=256)
    learning_rate: float = Field(default=1e-3, gt=0, le=1)
    lora_r: int = Field(default=8, ge=1, le=256)
