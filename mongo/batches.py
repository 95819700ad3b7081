"""Batches and their items in MongoDB: stored before anything is enqueued, so an API restart loses
nothing; a worker claims an item before running it (a cancelled one cannot be claimed) and keeps
its result on it, since no client is listening to a batch item's stream."""

from collections.abc import Iterator

from bson import ObjectId
from bson.errors import InvalidId
from mongoengine import DateTimeField, DictField, Document, IntField, ObjectIdField, StringField

from mongo.documents import utcnow
from schemas.batches import ITEM_STATES
from schemas.jobs import ChatJob


class Batch(Document):
    meta = {"collection": "batches", "indexes": [("user_id", "-created_at")]}

    user_id = StringField(required=True)
    total = IntField(required=True)
    created_at = DateTimeField(default=utcnow)
    cancelled_at = DateTimeField()


class BatchItem(Document):
    """One job of a batch; `job` is the ChatJob as enqueued, so the item can always be sent again."""

    meta = {
        "collection": "batch_items",
        "indexes": [("batch_id", "index"), ("batch_id", "state"), {"fields": ["job_id"], "unique": True}],
    }

    batch_id = ObjectIdField(required=True)
    index = IntField(required=True)
    custom_id = StringField()
    job_id = StringField(required=True)
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


def find_batch(batch_id: str, user_id: str) -> Batch | None:
    """The caller's batch, or None (an id that is not an ObjectId is simply not found)."""
    try:
        oid = ObjectId(batch_id)
    except (InvalidId, TypeError):
        return None
    return Batch.objects(id=oid, user_id=user_id).first()


def count_items_by_state(batch: Batch) -> dict[str, int]:
    pipeline = [{"$match": {"batch_id": batch.id}}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}]
    return {row["_id"]: row["n"] for row in BatchItem.objects.aggregate(pipeline)}


def batch_items(batch: Batch) -> Iterator[BatchItem]:
    return BatchItem.objects(batch_id=batch.id).order_by("index").no_cache()


def cancel_batch(batch: Batch) -> list[str]:
    """Mark the batch cancelled and its pending items with it; the job ids of the running items,
    which the caller stops through their cancel flags."""
    now = utcnow()
    if batch.cancelled_at is None:
        Batch.objects(id=batch.id, cancelled_at=None).update_one(set__cancelled_at=now)
        batch.reload()
    BatchItem.objects(batch_id=batch.id, state="pending").update(set__state="cancelled", set__finished_at=now)
    return [item.job_id for item in BatchItem.objects(batch_id=batch.id, state="running").only("job_id")]


def claim_item(job_id: str, worker: str) -> bool:
    """Pending (or running again after a redelivery) -> running; False for a cancelled or finished item."""
    claimed = BatchItem.objects(job_id=job_id, state__in=("pending", "running")).update_one(
        set__state="running", set__worker=worker, set__started_at=utcnow()
    )
    return bool(claimed)


def save_item_result(job: ChatJob, text: str, status: str, finish_reason: str, usage: dict) -> None:
    """The StoreReply of a batch item (see workers/chat_job.py): its result stays on the item."""
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
