"""Batches and their items in MongoDB: stored before anything is enqueued, so an API restart loses
nothing; a worker claims an item before running it and keeps its result on it, since no client is
listening to a batch item's stream.

Written for FerretDB too, whose SQLite backend finds a document fast only by `_id`, scans a whole
collection for any other filter, and pays a slow durable write per document changed. So:

* a submission is stored as a few documents (the batch, and its jobs in chunks of up to
  CHUNK_ITEMS), answered, and expanded into one item per job afterwards (`expand_chunk`), each
  chunk's items in one insert and then enqueued;
* the batch counts its items per state, so its progress is a read of a few small documents rather
  than a scan of every batch's items: the batch holds the counts at submission, and each worker
  process its own changes to them (`BatchCount`, written under a lock), because FerretDB v1 loses
  concurrent updates of one document (measured: 8 threads making 100 `$inc`s each counted 74);
* an item's `_id` is its job id; cancelling writes the batch alone. From then on its pending items
  read as cancelled, and a worker that pops one of their messages skips it after one read;
* a retried submission with the same `Idempotency-Key` finds its batch (a unique index on the
  user and the key; a batch without one is keyed by its own id).
"""

import json
import os
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

from bson import ObjectId
from bson.errors import InvalidId
from mongoengine import (
    DateTimeField,
    DictField,
    Document,
    IntField,
    NotUniqueError,
    ObjectIdField,
    StringField,
)
from pymongo.errors import BulkWriteError

from mongo.fields import utcnow
from schemas.batches import ITEM_STATES
from schemas.jobs import ChatJob

CHUNK_ITEMS = 500  # jobs in one stored chunk of a submission
CHUNK_BYTES = 4 * 1024 * 1024  # and at most about this much of them (a document holds 16 MB)
DUPLICATE_KEY = 11000


class Batch(Document):
    meta = {
        "collection": "batches",
        "indexes": [
            ("user_id", "-created_at"),
            {"fields": ["user_id", "idempotency_key"], "unique": True, "name": "user_idempotency_key"},
        ],
    }

    user_id = StringField(required=True)
    total = IntField(required=True)
    idempotency_key = StringField()  # the client's, else the batch's own id
    counts = DictField()  # items per state at submission; the changes since are BatchCount documents
    created_at = DateTimeField(default=utcnow)
    cancelled_at = DateTimeField()


class BatchCount(Document):
    """One process's changes to a batch's counts of items per state; only that process writes it."""

    meta = {"collection": "batch_counts"}

    batch_id = ObjectIdField(required=True)
    process = StringField(required=True)  # host:pid
    moves = DictField()  # state -> items in it now minus before


_count_lock = threading.Lock()  # one write at a time to this process's BatchCount documents


class BatchChunk(Document):
    """Up to CHUNK_ITEMS jobs of a submission, as submitted, until they are expanded into items."""

    meta = {"collection": "batch_chunks"}

    batch_id = ObjectIdField(required=True)
    first_index = IntField(required=True)
    size = IntField(required=True)  # jobs in it
    entries = StringField(required=True)  # JSON: [{"job": ChatJob, "custom_id": str | None}, ...]
    created_at = DateTimeField(default=utcnow)


class BatchItem(Document):
    """One job of a batch: `job` is the ChatJob as enqueued (the whole request), beside its result."""

    meta = {"collection": "batch_items", "indexes": [("batch_id", "index"), ("batch_id", "state")]}

    job_id = StringField(primary_key=True)
    batch_id = ObjectIdField(required=True)
    index = IntField(required=True)
    custom_id = StringField()
    job = DictField(required=True)
    state = StringField(default="pending", choices=ITEM_STATES)
    worker = StringField()
    text = StringField()
    finish_reason = StringField()
    usage = DictField()
    error = DictField()
    started_at = DateTimeField()
    finished_at = DateTimeField()


def _chunks(batch_id: ObjectId, jobs: list[tuple[ChatJob, str | None]]) -> list[BatchChunk]:
    """The jobs as JSON text, CHUNK_ITEMS (or about CHUNK_BYTES) to a chunk: one string field is
    the cheapest document for FerretDB to store and read."""
    chunks: list[BatchChunk] = []
    entries: list[str] = []
    size = 0
    for index, (job, custom_id) in enumerate(jobs):
        entries.append(f'{{"job":{job.model_dump_json()},"custom_id":{json.dumps(custom_id)}}}')
        size += len(entries[-1])
        if len(entries) == CHUNK_ITEMS or size >= CHUNK_BYTES or index == len(jobs) - 1:
            first = index + 1 - len(entries)
            chunks.append(
                BatchChunk(
                    batch_id=batch_id, first_index=first, size=len(entries), entries=f"[{','.join(entries)}]"
                )
            )
            entries, size = [], 0
    return chunks


def keyed_batch(user_id: str, idempotency_key: str) -> Batch | None:
    return Batch.objects(user_id=user_id, idempotency_key=idempotency_key).first()


def create_batch(
    user_id: str, jobs: list[tuple[ChatJob, str | None]], idempotency_key: str | None = None
) -> tuple[Batch, list[BatchChunk]]:
    """The batch, pending, with its jobs in chunks for `expand_chunk`; `jobs` pairs each job with
    the client's custom_id. The chunks are written first: a batch is never without its jobs. A
    submission that loses a race with its own retry (same key) gets the winner's batch, no chunks."""
    batch_id = ObjectId()
    chunks = _chunks(batch_id, jobs)
    BatchChunk.objects.insert(chunks, load_bulk=False)
    batch = Batch(
        id=batch_id,
        user_id=user_id,
        total=len(jobs),
        idempotency_key=idempotency_key or str(batch_id),
        counts={"pending": len(jobs)},
    )
    try:
        return batch.save(force_insert=True), chunks
    except NotUniqueError:
        BatchChunk.objects(batch_id=batch_id).delete()
        return keyed_batch(user_id, idempotency_key or ""), []


def _insert_new(items: list[BatchItem]) -> list[BatchItem]:
    """Insert the items in one ordered write (an unordered one is a write per item on FerretDB).
    Some already there (a chunk expanded twice) are left as they are, and the rest inserted. The
    ones inserted now, which only this caller enqueues."""
    collection = BatchItem._get_collection()
    try:
        collection.insert_many([item.to_mongo() for item in items], ordered=True)
        return items
    except BulkWriteError as exc:
        if exc.details["writeErrors"][0].get("code") != DUPLICATE_KEY:
            raise
    there = set(BatchItem.objects(job_id__in=[item.job_id for item in items]).scalar("job_id"))
    new = [item for item in items if item.job_id not in there]
    if new:
        collection.insert_many([item.to_mongo() for item in new], ordered=True)
    return new


def expand_chunk(chunk: BatchChunk) -> list[ChatJob]:
    """A chunk's items, stored; the jobs of those stored now, for the caller to enqueue. A cancelled
    batch's chunk is dropped instead: its items would never run. The chunk is gone after."""
    if _cancelled(str(chunk.batch_id)):
        chunk.delete()
        return []
    items = [
        BatchItem(
            batch_id=chunk.batch_id,
            index=chunk.first_index + offset,
            custom_id=entry.get("custom_id"),
            job_id=entry["job"]["job_id"],
            job=entry["job"],
        )
        for offset, entry in enumerate(json.loads(chunk.entries))
    ]
    new = _insert_new(items)
    chunk.delete()
    return [ChatJob.model_validate(item.job) for item in new]


def unexpanded() -> Counter:
    """Jobs per batch still in chunks, not yet items."""
    waiting: Counter = Counter()
    for chunk in BatchChunk.objects.only("batch_id", "size"):
        waiting[chunk.batch_id] += chunk.size
    return waiting


def stale_chunks(older_than_s: float) -> list[BatchChunk]:
    """Chunks that their submission's API did not expand (it stopped meanwhile)."""
    return list(BatchChunk.objects(created_at__lt=utcnow() - timedelta(seconds=older_than_s)))


def find_batch(batch_id: str, owner: str | None) -> Batch | None:
    """The owner's batch (any owner's when None: an admin), or None (an id that is not an ObjectId
    is simply not found)."""
    try:
        oid = ObjectId(batch_id)
    except (InvalidId, TypeError):
        return None
    query = Batch.objects(id=oid)
    return (query if owner is None else query.filter(user_id=owner)).first()


def counts_of(batches: list[Batch]) -> dict[ObjectId, Counter]:
    """Each batch's items per state now: its counts at submission plus every process's changes."""
    counts = {batch.id: Counter(batch.counts or {}) for batch in batches}
    for change in BatchCount.objects(batch_id__in=list(counts)):
        counts[change.batch_id].update(change.moves)
    return counts


def list_batches(user_id: str, page: int, page_size: int) -> tuple[list[Batch], int]:
    """The user's batches, newest first, one page of them, and how many there are."""
    query = Batch.objects(user_id=user_id)
    found = query.order_by("-created_at", "-id").skip((page - 1) * page_size).limit(page_size)
    return list(found), query.count()


def count_items_by_state(batch: Batch) -> dict[str, int]:
    counts = {state: n for state, n in counts_of([batch])[batch.id].items() if n}
    if batch.cancelled_at is not None:  # its pending items will never run
        counts["cancelled"] = counts.get("cancelled", 0) + counts.pop("pending", 0)
    return counts


def count_old_batches() -> None:
    """Batches stored before they kept their counts get them, counted from their items once."""
    for batch in Batch.objects(__raw__={"counts": {"$exists": False}}):
        pipeline = [{"$match": {"batch_id": batch.id}}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}]
        counts = {row["_id"]: row["n"] for row in BatchItem.objects.aggregate(pipeline)}
        Batch.objects(id=batch.id).update_one(
            set__counts={state: counts.get(state, 0) for state in ITEM_STATES}
        )


def _moved(item: BatchItem | None, to: str) -> None:
    """Count an item's change of state (`item` as it was before) in this process's BatchCount."""
    if item is None or item.state == to:
        return
    with _count_lock:
        BatchCount.objects(
            batch_id=item.batch_id, process=f"{socket.gethostname()}:{os.getpid()}"
        ).update_one(upsert=True, **{f"inc__moves__{item.state}": -1, f"inc__moves__{to}": 1})


def batch_items(batch: Batch) -> Iterator[BatchItem]:
    for item in BatchItem.objects(batch_id=batch.id).order_by("index").no_cache():
        if batch.cancelled_at is not None and item.state == "pending":
            item.state = "cancelled"  # it will never run (see the module's docstring)
        yield item


def cancel_batch(batch: Batch) -> list[str]:
    """Mark the batch cancelled; the job ids of its running items, which the caller stops through
    their cancel flags."""
    if batch.cancelled_at is None:
        Batch.objects(id=batch.id, cancelled_at=None).update_one(set__cancelled_at=utcnow())
        batch.reload()
    if not counts_of([batch])[batch.id]["running"]:
        return []  # no scan of the items needed
    return [item.job_id for item in BatchItem.objects(batch_id=batch.id, state="running").only("job_id")]


def _cancelled(batch_id: str) -> bool:
    return Batch.objects(id=ObjectId(batch_id), cancelled_at__ne=None).only("id").first() is not None


def claim_item(batch_id: str, job_id: str, worker: str) -> bool:
    """Pending (or running again, redelivered) -> running; False for a finished item or one of a
    cancelled batch. The batch is looked at again after the claim: cancel_batch marks the batch
    before it lists the running items to stop, so an item is either seen running or not run."""
    if _cancelled(batch_id):
        return False
    claimed = BatchItem.objects(job_id=job_id, state__in=("pending", "running")).modify(
        set__state="running", set__worker=worker, set__started_at=utcnow()
    )
    if claimed is None:
        return False
    _moved(claimed, "running")
    if not _cancelled(batch_id):
        return True
    was = BatchItem.objects(job_id=job_id).modify(
        set__state="cancelled", set__finished_at=utcnow(), unset__started_at=True, unset__worker=True
    )
    _moved(was, "cancelled")
    return False


def unclaim_item(job_id: str) -> None:
    """A running item whose worker was lost waits again (its counts say pending, not running) until
    a worker claims it and takes its job over."""
    was = BatchItem.objects(job_id=job_id, state="running").modify(
        set__state="pending", unset__worker=True, unset__started_at=True
    )
    _moved(was, "pending")


def save_item_result(
    job: ChatJob, text: str, status: str, finish_reason: str, usage: dict, error: dict | None = None
) -> None:
    """A batch item's result stays on the item (workers/reply_outbox.py), with the error that ended
    it, if one did."""
    changes = dict(
        set__state=status,
        set__text=text,
        set__finish_reason=finish_reason,
        set__usage=usage,
        set__finished_at=utcnow(),
    )
    if error is not None:
        changes["set__error"] = error
    was = BatchItem.objects(job_id=job.job_id).modify(**changes)
    _moved(was, status)


def live_batch_counts() -> dict[ObjectId, Counter]:
    """Items per state of every batch not cancelled (batch recovery's quick check)."""
    return counts_of(list(Batch.objects(cancelled_at=None).only("id", "counts")))


def unfinished_items() -> list[BatchItem]:
    """The pending and running items of the batches not cancelled, without their jobs (but each
    job's model): thousands of them are read every recovery sweep."""
    projection = {"batch_id": 1, "state": 1, "job.model": 1}
    found = BatchItem._get_collection().find({"state": {"$in": ["pending", "running"]}}, projection)
    items = [
        BatchItem(job_id=doc["_id"], batch_id=doc["batch_id"], state=doc["state"], job=doc["job"])
        for doc in found
    ]
    live = set(Batch.objects(id__in={item.batch_id for item in items}, cancelled_at=None).scalar("id"))
    return [item for item in items if item.batch_id in live]


def item_jobs(job_ids: list[str]) -> dict[str, ChatJob]:
    """The jobs of these items, by job id."""
    found = BatchItem.objects(job_id__in=job_ids).only("job_id", "job")
    return {item.job_id: ChatJob.model_validate(item.job) for item in found}
