"""Clients who send at once reach the engine a few milliseconds apart (the API takes their requests one
after another): an idle engine that hears more jobs are on their way (its queue's fresh admissions,
jobs/arrivals.py) waits for them, and their prompts share one prefill pass instead of the first going
alone. On the real Gemma GGUF through the llama.cpp engine here; the transformers engine runs the
same check in tests/test_transformers_runtime.py. What the worker asks Redis is checked against the
API's own admission."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from api.streams.backpressure import admit_job
from jobs.arrivals import ON_THE_WAY_S, jobs_on_the_way
from jobs.keys import admission_key
from jobs.transitions import release
from runtimes.fair_share import Share
from runtimes.sequences import EngineRuntime
from schemas.jobs import ChatMessage, SamplingParams
from settings import Settings
from tests.support.waiting import wait_until
from tests.test_continuous_batching import completion_body, stream_tokens

GREEDY = SamplingParams(max_tokens=4, temperature=0)


def keep_going(*_) -> bool:
    return True


def passes(runtime: EngineRuntime) -> tuple[float, float]:
    """How many prefill passes ended prompts, and how many prompts they ended, so far."""
    labels = {"model": runtime.name}
    count = REGISTRY.get_sample_value("chatbot_worker_prompts_per_pass_count", labels) or 0.0
    total = REGISTRY.get_sample_value("chatbot_worker_prompts_per_pass_sum", labels) or 0.0
    return count, total


def second_job_on_its_way(runtime: EngineRuntime) -> tuple[float, float]:
    """A first job reaches the idle engine while a second is on its way, which comes once the engine
    has asked twice and then takes its slot as a worker's task does: the prefill passes and prompts
    the two jobs' first tokens took."""
    engine = runtime.engine()
    asked: list[float] = []
    second_placed = threading.Event()

    def arriving() -> bool:
        asked.append(time.monotonic())
        return not second_placed.is_set()

    def first() -> str:
        return runtime.generate(
            [ChatMessage(role="user", content="Name a colour.")], GREEDY, keep_going
        ).finish_reason

    def second() -> str:
        with runtime.slot_for(Share(""), 1.0, lambda: True) as got:
            assert got
            second_placed.set()
            messages = [ChatMessage(role="user", content="Name a fruit.")]
            return runtime.generate(messages, GREEDY, keep_going).finish_reason

    before = passes(runtime)
    kept = engine.arriving, engine.gather_s
    engine.arriving, engine.gather_s = arriving, 120.0  # past any deadline here: only the jobs end it
    try:
        with ThreadPoolExecutor(2) as pool:
            one = pool.submit(first)
            wait_until(
                lambda: len(asked),
                lambda n: n >= 2,
                what="the idle engine to ask twice what is on its way",
                timeout_s=60,
            )
            two = pool.submit(second)
            assert [one.result(), two.result()] == ["length", "length"]
    finally:
        engine.arriving, engine.gather_s = kept
    after = passes(runtime)
    return after[0] - before[0], after[1] - before[1]


def test_a_job_on_its_way_shares_the_first_ones_prefill_pass(gemma) -> None:
    assert second_job_on_its_way(gemma) == (1, 2)


def admit(redis_url: str, queue: str, job_id: str, limit: int) -> None:
    """The API's admission of a chat job to `queue` (0: the queue has no limit)."""

    async def run() -> None:
        async with aioredis.Redis.from_url(redis_url) as api_client:
            await admit_job(api_client, Settings(queue_max_depth=limit), queue, job_id)

    asyncio.run(run())


def give_back(redis_url: str, queue: str, job_id: str) -> None:
    """What a worker's take (or a cancel) does to the job's place in its queue's admission."""

    async def run() -> None:
        async with aioredis.Redis.from_url(redis_url) as api_client:
            await release(api_client, job_id, queue=queue)

    asyncio.run(run())


@pytest.mark.parametrize("limit", [32, 0])
def test_a_job_just_admitted_is_on_its_way_until_it_leaves_the_queue(
    broker: redis.Redis, stack, limit: int
) -> None:
    client, redis_url = broker, stack.redis_url
    queue = f"arrivals-{limit}"
    client.delete(admission_key(queue))
    assert not jobs_on_the_way(client, queue)

    admit(redis_url, queue, "job-1", limit)

    assert jobs_on_the_way(client, queue)
    give_back(redis_url, queue, "job-1")
    assert not jobs_on_the_way(client, queue)


def test_a_job_admitted_long_ago_and_not_taken_is_not_on_its_way(broker: redis.Redis) -> None:
    client = broker
    # Waiting for room on a busy worker, or left by an API process that died before enqueueing it.
    queue = "arrivals-stale"
    client.delete(admission_key(queue))
    client.zadd(admission_key(queue), {"job-old": time.time() - 10 * ON_THE_WAY_S})

    assert not jobs_on_the_way(client, queue)


def zcount_calls(client: redis.Redis) -> int:
    return client.info("commandstats").get("cmdstat_zcount", {}).get("calls", 0)


def test_the_workers_idle_engine_asks_its_queue_what_is_on_its_way(
    api: httpx.Client, broker: redis.Redis
) -> None:
    before = zcount_calls(broker)  # nothing else in the system counts a sorted set's range

    _, _, text = stream_tokens(api, completion_body("Name a colour.", 2))

    assert text
    assert zcount_calls(broker) > before
