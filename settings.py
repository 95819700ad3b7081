"""Every knob of the service in one pydantic-settings class, read from the environment and `.env`."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_split_commas)]


# Where the embedded FerretDB's socket is, under the data directory of `make run` (or of a test's stack).
EMBEDDED_MONGO_SOCKET = Path("sockets") / "ferretdb.sock"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Services
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_max_connections: int = Field(
        default=1000,
        ge=1,
        description="Redis connections per process; past it a command waits for a free one (up to 20 s)",
    )
    # `make run`'s FerretDB, which listens on a Unix socket only (embedded/stack.py)
    mongo_uri: str = f"mongodb://{quote(str(PROJECT_ROOT / 'data' / EMBEDDED_MONGO_SOCKET), safe='')}/"
    mongo_db: str = "chatbot"

    # Models
    model_registry_file: Path = PROJECT_ROOT / "models.yaml"
    model_profile: str = "embedded"
    model_cache_dir: Path = PROJECT_ROOT / "data" / "models"
    worker_queue: str | None = Field(default=None, description="set by `python -m workers --queue Q`")
    worker_metrics_port: int = Field(
        default=0, ge=0, description="Prometheus port of a worker process (0: off)"
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1", description="address of the worker metrics port (0.0.0.0 in a container)"
    )
    workers_per_host: int = Field(
        default=1, ge=1, description="model workers started on this host: they split its cores between them"
    )
    worker_threads: int = Field(
        default=0, ge=0, description="CPU threads of one worker (0: the host's cores / WORKERS_PER_HOST)"
    )
    worker_waiting_jobs: int = Field(
        default=4,
        ge=0,
        description="jobs a batching worker takes beyond its engine's slots: they wait in its engine for a "
        "fair share of the slots (another key's job preempts one of a key that holds more than its share)",
    )
    synthetic_concurrency: int = Field(
        default=1000, ge=1, description="threads of a synthetic (load-test) worker"
    )
    training_queue: str = Field(default="train", description="the queue of LoRA fine-tuning jobs")
    longest_job_s: dict[str, float] = Field(
        default_factory=dict,
        description='Per-queue overrides of the longest job, JSON: {"train": 172800}',
    )
    longest_chat_job_s: float = Field(default=900.0, gt=0, description="longest job of a model queue")
    longest_training_job_s: float = Field(
        default=86_400.0, gt=0, description="longest job of the training queue"
    )
    broker_visibility_timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="seconds before the broker gives an unacknowledged job to another worker "
        "(default: 1.5 x the longest job of any queue)",
    )
    finetune_claim_ttl_s: float = Field(
        default=60.0, gt=0, description="a run's claim lapses this long after its worker stops renewing it"
    )
    adapters_dir: Path = Field(
        default=PROJECT_ROOT / "data" / "adapters",
        description="one folder per adapter name; a rerun resumes there",
    )

    # Streams
    stream_silence_timeout_s: float = Field(
        default=60.0, gt=0, description="The API ends a stream with an error event after this much silence."
    )
    queue_timeout_s: float = Field(
        default=300.0, gt=0, description="A job no worker has started after this long expires with an error."
    )
    worker_heartbeat_s: float = Field(default=1.0, gt=0)
    worker_heartbeat_ttl_s: float = Field(default=10.0, gt=0)
    worker_lost_after_s: float = Field(
        default=4.0,
        gt=0,
        description="A job's worker process whose heartbeat is this old is lost: its job goes to another worker.",
    )
    takeover_wait_s: float = Field(
        default=180.0,
        gt=0,
        description="A job taken over from a lost worker waits this long for another (the launcher "
        "restarting its worker, which loads the model again); then its stream ends with worker_lost.",
    )
    job_max_attempts: int = Field(
        default=3,
        ge=1,
        description="A job whose worker dies this many times while it runs alone (a takeover's window, "
        "workers/takeover_gate.py) is poison input: it ends with worker_lost instead of killing the fleet "
        "(and any job ends after 4 times this many takeovers).",
    )
    default_max_tokens: int = Field(default=512, ge=1)
    assistant_system_prompt: str = "You are a helpful, honest assistant. Answer clearly and concisely."
    job_log_ttl_s: int = Field(
        default=900, ge=1, description="A job's event log (resume, /jobs/{id}) lives this long after its end."
    )
    openai_character_model: str = Field(
        default="lumimaid",
        description="The registry model that answers `character:<name>` on /v1, and a text completion naming none.",
    )

    # Datasets
    dataset_max_chars: int = Field(default=4000, ge=1, description="longest instruction or output kept")
    dataset_max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    grounding_passages: int = Field(
        default=3, ge=1, le=10, description="passages retrieved for google_access"
    )

    # Backpressure and batches
    queue_max_depth: int = Field(
        default=32,
        ge=0,
        description="Interactive jobs waiting on a queue at which chat routes answer 429 (0: no limit).",
    )
    queue_max_depths: dict[str, int] = Field(
        default_factory=dict, description='Per-queue overrides of QUEUE_MAX_DEPTH, JSON: {"cpu": 4}'
    )
    queue_full_retry_after_s: int = Field(
        default=10, ge=1, description="Retry-After of a 429 for a full queue"
    )
    batch_max_items: int = Field(default=10_000, ge=1)
    batch_max_body_bytes: int = Field(
        default=32 * 1024 * 1024, gt=0, description="a batch submission's body (JSON or JSONL)"
    )

    # Per-key quotas (0: none); past one, 429 with Retry-After naming it (api/streams/quotas.py)
    quota_requests_per_minute: int = Field(default=600, ge=0, description="requests a key may make a minute")
    quota_concurrent_jobs: int = Field(
        default=8, ge=0, description="chat jobs a key may have queued or running at once (detached too)"
    )
    quota_queued_tokens: int = Field(
        default=16384, ge=0, description="the sum of max_tokens of a key's jobs still waiting in queues"
    )
    quota_batch_items_per_day: int = Field(
        default=20000, ge=0, description="batch items a key may submit in a day (sliding window)"
    )

    # HTTP
    admin_api_key: SecretStr | None = Field(
        default=None, description="the first admin's key: its user `admin` is created on first start"
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="a bearer token for Prometheus on /metrics, besides admin keys"
    )
    ip_allowlist: CommaList = Field(
        default_factory=list, description="CIDRs allowed on every route but /health (empty: all)"
    )
    forwarded_allow_ips: CommaList = Field(
        default_factory=list,
        description="proxies whose X-Forwarded-For/-Proto are believed (addresses or CIDRs; empty: none)",
    )
    cors_origins: CommaList = Field(
        default_factory=list,
        description="other origins whose pages may call the API (empty: only the API's own pages)",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, gt=0, description="a request body, on routes without a limit of their own"
    )
    bot_config_file: Path = PROJECT_ROOT / "bot.yaml"

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard_origin(cls, origins: list[str]) -> list[str]:
        if "*" in origins:
            raise ValueError("CORS_ORIGINS may not be '*': name the origins whose pages call the API")
        return origins

    # Character cards (imports are refused past these, with 413 or 422 and the reason)
    card_max_upload_bytes: int = Field(
        default=8 * 1024 * 1024, gt=0, description="a card file or avatar upload"
    )
    card_max_json_bytes: int = Field(
        default=2 * 1024 * 1024, gt=0, description="the card JSON, also inside a PNG"
    )
    card_max_json_depth: int = Field(default=32, gt=0)
    card_max_image_side: int = Field(default=4096, gt=0, description="pixels, width or height")
    card_max_image_pixels: int = Field(default=4096 * 4096, gt=0, description="width times height")
    # What is stored of an avatar or a card's picture: downscaled to fit (cards/card_png.py).
    avatar_max_side: int = Field(default=1024, ge=16, description="pixels, width or height")
    avatar_max_bytes: int = Field(default=1024 * 1024, ge=64 * 1024, description="the stored PNG")


@lru_cache
def get_settings() -> Settings:
    return Settings()
