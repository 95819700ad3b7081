"""Real services for the tests, started once per session: Redis, FerretDB (or MONGO_URI), a Celery
worker holding the real Gemma GGUF, and the API, each a separate process on free ports."""

import inspect
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pymongo
import pytest
import redis

from embedded.processes import free_port
from embedded.stack import EmbeddedStack, StackConfig
from model_registry import get_registry, queues
from runtimes.llama_cpp import LlamaCppRuntime
from runtimes.model_files import verified_weights
from settings import get_settings
from tests.support.browser import browser as browser  # noqa: F401  (module fixtures: see browser.py)
from tests.support.browser import playwright as playwright  # noqa: F401
from tests.support.clients import ADMIN_KEY, METRICS_TOKEN, NO_QUOTAS, bearer, keyed_client, new_user_key
from tests.support.stacks import stack_broker, stack_db

# How long a stream waits for a running job's next event before it ends with an error: a first token
# may wait for a long prompt's prefill, chunked between other streams' tokens, on two cores shared with
# the whole stack, so silence means a dead worker only well past that.
SILENCE_TIMEOUT_S = 60  # the production default

# Two kinds of tests, by directory: tests/unit/ needs no service and no model (`pytest tests/unit` runs
# them alone, in seconds, and so does `make mutation`); every other test starts services or loads the
# real model and carries the marker saying which. Collection enforces both, so a test cannot drift into
# the wrong kind unnoticed.
TESTS = Path(__file__).parent
UNIT = TESTS / "unit"
# Fixtures that start services (or load the real model): a test using any of them, directly or through
# another fixture, is marked. A module that starts services of its own says so with `pytestmark`.
NEEDS = {"stack": "stack", "fault_stack": "stack", "model_cache": "model", "gemma": "model"}
# What a module imports to start services itself.
STARTERS = {"embedded.services", "embedded.stack"}


def _outside_unit_fixtures(item: pytest.Item) -> list[str]:
    """The item's fixtures written in tests/ but not in tests/unit/ (this file's, support's: services
    and clients of them); pytest's own are anyone's."""
    info = getattr(item, "_fixtureinfo", None)
    names = info.name2fixturedefs.items() if info else ()
    return sorted(
        name
        for name, defs in names
        if defs
        and (where := Path(inspect.getfile(defs[-1].func)).resolve()).is_relative_to(TESTS)
        and not where.is_relative_to(UNIT)
    )


def _starts_services(module: object) -> bool:
    return any(
        getattr(value, "__module__", None) in STARTERS or getattr(value, "__name__", None) in STARTERS
        for value in vars(module).values()
    )


def _misplaced(item: pytest.Item) -> str | None:
    needs = sorted({mark.name for mark in item.iter_markers() if mark.name in ("stack", "model")})
    if item.path.is_relative_to(UNIT):
        foreign = _outside_unit_fixtures(item)
        if needs or foreign or _starts_services(getattr(item, "module", None) or object()):
            why = f"marked {needs}" if needs else f"uses {foreign}" if foreign else "starts services"
            return (
                f"{item.nodeid}: {why}; a test in tests/unit/ needs no service and no fixture of "
                "tests/conftest.py: move it up to tests/"
            )
    elif not needs:
        return (
            f"{item.nodeid}: needs no service (no stack or model fixture, no stack/model marker): move it "
            "to tests/unit/, or mark its module `pytestmark = pytest.mark.stack` if it starts its own"
        )
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in NEEDS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)
    misplaced = [why for item in items if (why := _misplaced(item))]
    if misplaced:
        raise pytest.UsageError("tests in the wrong directory:\n" + "\n".join(misplaced))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    db_name = f"chatbot_test_{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path_factory.mktemp("stack")
    config = StackConfig(
        data_dir=data_dir,
        redis_port=free_port(),
        api_port=free_port(),
        mongo_uri=os.environ.get("MONGO_URI"),
        queues=[*queues(), get_settings().training_queue],
        extra_env={
            "MONGO_DB": db_name,
            "ADMIN_API_KEY": ADMIN_KEY,
            "METRICS_TOKEN": METRICS_TOKEN,
            **NO_QUOTAS,
            "STREAM_SILENCE_TIMEOUT_S": str(SILENCE_TIMEOUT_S),
            "ADAPTERS_DIR": str(data_dir / "adapters"),
        },
    )
    with EmbeddedStack(config) as running:
        yield running
        if config.mongo_uri:  # leave a real MongoDB as it was
            pymongo.MongoClient(running.mongo_uri).drop_database(db_name)


@pytest.fixture(scope="session")
def api_key(stack: EmbeddedStack) -> str:
    """The key of the user the tests' `api` client calls as (a plain user, not an admin)."""
    return new_user_key(stack.api_url)


@pytest.fixture(scope="session")
def api(stack: EmbeddedStack, api_key: str) -> Iterator[httpx.Client]:
    with keyed_client(stack.api_url, api_key) as client:
        yield client


@pytest.fixture
def another_user(stack: EmbeddedStack) -> Iterator[httpx.Client]:
    """A client calling as a second, fresh user."""
    with keyed_client(stack.api_url, new_user_key(stack.api_url)) as client:
        yield client


@pytest.fixture(scope="session")
def db(stack: EmbeddedStack) -> Iterator[pymongo.database.Database]:
    with stack_db(stack) as database:
        yield database


@pytest.fixture(scope="session")
def broker(stack: EmbeddedStack) -> Iterator[redis.Redis]:
    with stack_broker(stack) as client:
        yield client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return bearer(ADMIN_KEY)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test process's own model cache (the stack's worker assembles the GGUF into another)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def gemma(model_cache: Path) -> LlamaCppRuntime:
    """The real Gemma GGUF in the test process: its tokenizer and chat template, as a worker has them."""
    spec = get_registry()["lumimaid"]
    return LlamaCppRuntime(spec, verified_weights(spec, model_cache))


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[EmbeddedStack]:
    """A second, smaller stack (one chat worker, its own Redis and FerretDB) for the tests that kill
    or stop its services, so the session's stack stays healthy for every other test. Its launcher
    supervises it, as `make run` does: a killed service comes back by itself."""
    # Not under pytest's base temp dir, which a concurrent pytest run may prune under its feet; kept
    # afterwards, like pytest's own, for its logs.
    data_dir = Path(tempfile.mkdtemp(prefix="chatbot-fault-stack-"))
    config = StackConfig(
        data_dir=data_dir,
        redis_port=free_port(),
        api_port=free_port(),
        mongo_uri=os.environ.get("MONGO_URI"),
        queues=queues(),
        # One slot per model: the worker runs its job in a Celery pool process (prefork), the
        # process these tests kill; a multi-slot engine runs its jobs on threads of the main
        # process, whose death test_faults covers as the main-process kill.
        extra_env={
            "MONGO_DB": f"chatbot_faults_{uuid.uuid4().hex[:8]}",
            "ADMIN_API_KEY": ADMIN_KEY,
            **NO_QUOTAS,
            "QUEUE_MAX_DEPTH": "0",
            "MODEL__LUMIMAID__MAX_SEQUENCES": "1",
            "MODEL__LLAMA__MAX_SEQUENCES": "1",
        },
    )
    with EmbeddedStack(config) as running:
        yield running
