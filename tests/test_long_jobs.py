"""Long jobs and the broker's visibility timeout: a fine-tuning run outlives a 5 s timeout, the broker
hands its job out again, and the run still trains once (its claim turns the copy away)."""

import uuid
from collections.abc import Iterator

import httpx
import pytest

from embedded.processes import free_port
from embedded.stack import EmbeddedStack, StackConfig
from mongo.connection import connect_mongo
from mongo.finetune_runs import claim_run, create_run, find_run, release_claim
from settings import get_settings
from tests.support.clients import ADMIN_KEY, keyed_client
from tests.support.samples import SAMPLE
from tests.support.waiting import wait_until

pytestmark = pytest.mark.stack  # starts a stack of its own

VISIBILITY_TIMEOUT_S = 5


@pytest.fixture(scope="module")
def short_timeout_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    """A stack of its own whose broker redelivers any job unacknowledged after 5 s."""
    data_dir = tmp_path_factory.mktemp("short_visibility")
    config = StackConfig(
        data_dir=data_dir,
        redis_port=free_port(),
        api_port=free_port(),
        queues=[get_settings().training_queue],
        extra_env={
            "MONGO_DB": f"chatbot_test_{uuid.uuid4().hex[:8]}",
            "ADMIN_API_KEY": ADMIN_KEY,
            "ADAPTERS_DIR": str(data_dir / "adapters"),
            "BROKER_VISIBILITY_TIMEOUT_S": str(VISIBILITY_TIMEOUT_S),
        },
    )
    with EmbeddedStack(config) as running:
        yield running


@pytest.fixture(scope="module")
def short_timeout_api(short_timeout_stack: EmbeddedStack) -> Iterator[httpx.Client]:
    with keyed_client(short_timeout_stack.api_url, ADMIN_KEY) as client:
        yield client


def test_a_run_longer_than_the_visibility_timeout_trains_once(short_timeout_api, admin_headers) -> None:
    api = short_timeout_api
    api.post("/datasets/long_sample?eval_fraction=0.2", content=SAMPLE.read_bytes(), headers=admin_headers)
    body = {"dataset": "long_sample", "name": "long-lora", "steps": 1, "learning_rate": 0.002}

    run_id = api.post("/finetune", json=body, headers=admin_headers).json()["run_id"]
    # Done, and the broker's second copy of the job (handed out after 5 s unacknowledged) seen and skipped.
    status = wait_until(
        lambda: api.get(f"/finetune/{run_id}", headers=admin_headers).json(),
        lambda run: run.get("state") == "done" and run["duplicates_skipped"],
        what=f"run {run_id} done with its duplicate skipped",
        timeout_s=1200,
        every_s=1,
    )

    assert status["state"] == "done", status
    assert status["duplicates_skipped"] >= 1, status
    assert status["attempts"] == 1
    assert status["step"] == status["total_steps"] == 1


def test_a_live_claim_keeps_other_workers_off_until_it_lapses_or_is_released(short_timeout_stack) -> None:
    connect_mongo(short_timeout_stack.mongo_uri, short_timeout_stack.config.extra_env["MONGO_DB"])
    run_id = uuid.uuid4().hex
    create_run(run_id, {"steps": 1})

    first = claim_run(run_id, "host-a:1", ttl_s=600)
    while_held = claim_run(run_id, "host-b:2", ttl_s=600)
    release_claim(run_id, "host-a:1")
    after_release = claim_run(run_id, "host-b:2", ttl_s=0.5)  # then host-b dies: its lease lapses
    after_lapse = wait_until(
        lambda: claim_run(run_id, "host-c:3", ttl_s=600),
        what="host-c's claim once host-b's lease lapsed",
        timeout_s=30,
        every_s=0.2,
    )

    assert (first, while_held, after_release, after_lapse) == (True, False, True, True)
    assert find_run(run_id).attempts == 3
