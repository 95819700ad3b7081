"""The API's event hub against a real Redis whose connection to the hub is cut for a while: the events
published meanwhile reach the stream from the job's log once the hub is back, each once and in order."""

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from api.streams.event_hub import EventHub, HubSource
from embedded.processes import free_port
from embedded.services import start_redis
from schemas.events import Usage
from workers.job_handle import JobHandle

pytestmark = pytest.mark.stack  # starts a Redis of its own

JOB = "hub-job"
PASSWORD = "hub-test"  # Redis's requirepass


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    data: Path = tmp_path_factory.mktemp("hub-redis")
    port = free_port()
    server = start_redis(port, data / "redis", data / "logs", PASSWORD)
    yield port
    server.stop()


class CuttableLink:
    """A TCP relay to Redis, the hub's only way there: cut closes its connections and refuses new ones."""

    def __init__(self, redis_port: int) -> None:
        self.port = free_port()
        self._redis_port = redis_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self._redis_port)
        self._writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


async def event_ids_until(source: HubSource, last_id: int) -> list[int]:
    ids: list[int] = []
    async with asyncio.timeout(120):
        while not ids or ids[-1] != last_id:
            ids += [event.id for event in await source.receive(1.0)]
    return ids


async def a_stream_across_a_cut(redis_port: int) -> list[int]:
    link = CuttableLink(redis_port)
    await link.restore()
    client = aioredis.Redis(port=link.port, password=PASSWORD)
    hub = EventHub(client)
    await hub.start()
    handle = JobHandle(
        redis.Redis(port=redis_port, password=PASSWORD), JOB, log_ttl_s=600
    )  # straight to Redis
    source = HubSource(hub, JOB)
    try:
        await source.open()
        _taken, _so_far, worker = handle.take(max_attempts=1, worker="w", process=None)
        for text in "abc":
            worker.token(text)
        ids = await event_ids_until(source, 2)
        await link.cut()
        for text in "def":  # while the hub is away
            worker.token(text)
        await link.restore()
        for text in "ghi":
            worker.token(text)
        worker.done("length", Usage(), None)
        return ids + await event_ids_until(source, 9)
    finally:
        await source.aclose()
        await hub.stop()
        await client.aclose()
        worker.client.close()


def test_events_published_while_the_hub_is_cut_off_reach_the_stream_once_and_in_order(
    redis_port: int,
) -> None:
    assert asyncio.run(a_stream_across_a_cut(redis_port)) == [-1, *range(10)]
