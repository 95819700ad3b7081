"""The model registry: `models.yaml` (one profile of it) plus `MODEL__<NAME>__<FIELD>` env overrides.

Both the API (to route a job to its device queue) and the workers (to load what their queue serves)
read it, so it lives beside `settings.py` rather than inside either package.
"""

import os
from functools import lru_cache
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, field_validator

from settings import get_settings

ENV_PREFIX = "MODEL__"


class ModelSpec(BaseModel):
    name: str
    runtime: Literal["llama_cpp", "transformers", "synthetic"]
    weights: str = Field(description="a path, a hub id, or pypi:<module> for a GGUF shipped in a wheel")
    sha256: str | None = None
    device: str = "cpu"
    queue: str = ""
    chat_format: str = "chatml"
    params: dict[str, Any] = Field(default_factory=dict)
    max_sequences: int = Field(
        default=1, ge=1, description="sequences the model generates at once (its engine's slots)"
    )

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value != "cpu" and not (value.startswith("cuda:") and value[5:].isdigit()):
            raise ValueError(f"device must be 'cpu' or 'cuda:N', not {value!r}")
        return value

    def model_post_init(self, __context: Any) -> None:
        if not self.queue:
            self.queue = queue_for_device(self.device)

    @property
    def gpu_index(self) -> int | None:
        return int(self.device[5:]) if self.device.startswith("cuda:") else None


def queue_for_device(device: str) -> str:
    """One Celery queue per device: `cpu`, `cuda0`, `cuda1`, ..."""
    return device.replace(":", "")


def _apply_env_overrides(models: dict[str, dict[str, Any]], environ: dict[str, str]) -> None:
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in key[len(ENV_PREFIX) :].split("__")]
        if len(path) < 2:
            continue
        target = models.setdefault(path[0], {})
        for part in path[1:-1]:
            target = target.setdefault(part, {})
        # Top-level fields are strings (a digest of zeros stays a digest); params are typed YAML values.
        target[path[-1]] = (yaml.safe_load(raw) if raw else None) if len(path) > 2 else (raw or None)


def load_registry(
    registry_file: os.PathLike | str, profile: str, environ: dict[str, str] | None = None
) -> dict[str, ModelSpec]:
    with open(registry_file, encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    profiles = document.get("profiles", {})
    if profile not in profiles:
        raise ValueError(f"model profile {profile!r} not in {registry_file} (have: {', '.join(profiles)})")
    models = {name: dict(entry) for name, entry in profiles[profile].items()}
    _apply_env_overrides(models, dict(os.environ if environ is None else environ))
    return {name: ModelSpec(name=name, **entry) for name, entry in models.items()}


@lru_cache
def get_registry() -> dict[str, ModelSpec]:
    settings = get_settings()
    return load_registry(settings.model_registry_file, settings.model_profile)


def queues() -> list[str]:
    return sorted({spec.queue for spec in get_registry().values()})
