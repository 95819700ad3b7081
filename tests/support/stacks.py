"""A stack's clients for the fixtures of the modules that run one of their own (the session's is in
tests/conftest.py): its MongoDB database and its Redis, opened and closed the same way everywhere."""

from collections.abc import Iterator
from contextlib import contextmanager

import pymongo
import redis

from embedded.stack import EmbeddedStack


@contextmanager
def stack_db(stack: EmbeddedStack) -> Iterator[pymongo.database.Database]:
    client = pymongo.MongoClient(stack.mongo_uri)
    try:
        yield client[stack.config.extra_env["MONGO_DB"]]
    finally:
        client.close()


@contextmanager
def stack_broker(stack: EmbeddedStack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis_url)
    try:
        yield client
    finally:
        client.close()
