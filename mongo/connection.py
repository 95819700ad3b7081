"""One mongoengine connection per process (pymongo is not fork-safe: workers connect after fork)."""

import logging

import mongoengine
from pymongo import MongoClient

log = logging.getLogger(__name__)


def connect_mongo(uri: str, db_name: str) -> MongoClient:
    mongoengine.disconnect()
    client = mongoengine.connect(
        db=db_name,
        host=uri,
        uuidRepresentation="standard",
        serverSelectionTimeoutMS=3000,
        # A server that hangs (stopped, overloaded) fails an operation after this instead of never:
        # the worker then retries its write or keeps the reply for later (workers/reply_outbox.py).
        socketTimeoutMS=5000,
        connectTimeoutMS=3000,
        tz_aware=True,
    )
    log.info("MongoDB connection set up for database %s", db_name)
    return client


def mongo_client() -> MongoClient:
    return mongoengine.get_connection()


def disconnect_mongo() -> None:
    mongoengine.disconnect()
