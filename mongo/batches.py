"""Batches and their items in MongoDB: stored before anything is enqueued, so an API restart loses
nothing; a worker claims an item before running it and keeps its result on it, since no client is
listening to a batch item's stream.

Written for FerretDB too, whose SQLite backend finds a document fast only by `_id` and pays a slow
durable write per document changed: an item's `_id` is its job id, and cancelling writes the batch
alone. From then on its pending items read as cancelled, and a worker that pops one of their
messages skips it after one read, writing nothing.
"""

from collections.abc import Iterator

from bson import ObjectId
from bson.errors import InvalidId
from mongoengine import DateTimeField, DictField, Document, IntField, ObjectIdField, StringField

from mongo.fields import utcnow
from schemas.batches import ITEM_STATES
from schemas.jobs import ChatJob


class Batch(Document):
    meta = {"collection": "batches", "indexes": [("user_id", "-created_at")]}

    user_id = StringField(required=True)
    total = IntField(required=True)
    created_at = DateTimeField(default=utcnow)
    cancelled_at = DateTimeField()


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


def create_batch(user_id: str, jobs: list[tuple[ChatJob, str | None]]) -> Batch:
    """The batch and all its items, pending; `jobs` pairs each job with the client's custom_id."""
    batch = Batch(user_id=user_id, total=len(jobs)).save()
    items = [
        BatchItem(
            batch_id=batch.id,
            index=index,
            custom_id=custom_id,
            job_id=job.job_id,
            job=job.model_dump(mode="json"),
        )
        for index, (job, custom_id) in enumerate(jobs)
    ]
    BatchItem.objects.insert(items, load_bulk=False)
    return batch


def delete_batch(batch: Batch) -> None:
    BatchItem.objects(batch_id=batch.id).delete()
    batch.delete()


def find_batch(batch_id: str, owner: str | None) -> Batch | None:
    """The owner's batch (any owner's when None: an admin), or None (an id that is not an ObjectId
    is simply not found)."""
    try:
        oid = ObjectId(batch_id)
    except (InvalidId, TypeError):
        return None
    query = Batch.objects(id=oid)
    return (query if owner is None else query.filter(user_id=owner)).first()


def list_batches(user_id: str, page: int, page_size: int) -> tuple[list[Batch], int]:
    """The user's batches, newest first, one page of them, and how many there are."""
    query = Batch.objects(user_id=user_id)
    found = query.order_by("-created_at", "-id").skip((page - 1) * page_size).limit(page_size)
    return list(found), query.count()


def count_items_by_state(batch: Batch) -> dict[str, int]:
    pipeline = [{"$match": {"batch_id": batch.id}}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}]
    counts = {row["_id"]: row["n"] for row in BatchItem.objects.aggregate(pipeline)}
    if batch.cancelled_at is not None:  # its pending items will never run
        counts["cancelled"] = counts.get("cancelled", 0) + counts.pop("pending", 0)
    return counts


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
    if not _cancelled(batch_id):
        return True
    BatchItem.objects(job_id=job_id).update_one(
        set__state="cancelled", set__finished_at=utcnow(), unset__started_at=True, unset__worker=True
    )
    return False


def save_item_result(job: ChatJob, text: str, status: str, finish_reason: str, usage: dict) -> None:
    """The StoreReply of a batch item (see workers/reply_outbox.py): its result stays on the item."""
    BatchItem.objects(job_id=job.job_id).update_one(
        set__state=status,
        set__text=text,
        set__finish_reason=finish_reason,
        set__usage=usage,
        set__finished_at=utcnow(),
    )


def record_item_error(job_id: str, code: str, message: str) -> None:
    BatchItem.objects(job_id=job_id).update_one(
        set__state="error", set__error={"code": code, "message": message}, set__finished_at=utcnow()
    )
