"""The state and progress of fine-tuning runs, written by the training worker, read by the API.

A run is claimed by the worker that trains it (`claim_run`), so a copy of its job that the broker
hands out again (past the visibility timeout, or after a restart) does not start a second training
beside the first. The claim is a lease the worker renews while it trains: a killed worker's run can
be claimed again once the lease has lapsed, and it resumes from its last checkpoint.
"""

from datetime import timedelta

from mongoengine import DateTimeField, DictField, Document, FloatField, IntField, Q, StringField

from mongo.fields import utcnow


class FinetuneRun(Document):
    meta = {"collection": "finetune_runs", "indexes": [{"fields": ["run_id"], "unique": True}]}

    run_id = StringField(required=True)
    request = DictField()
    state = StringField(default="queued", choices=("queued", "running", "done", "error"))
    step = IntField(default=0)
    total_steps = IntField(default=0)
    loss = FloatField()
    result = DictField()
    error = StringField()
    claimed_by = StringField()
    claimed_until = DateTimeField()
    attempts = IntField(default=0)
    duplicates_skipped = IntField(default=0)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)


def create_run(run_id: str, request: dict) -> None:
    FinetuneRun(run_id=run_id, request=request, total_steps=request.get("steps", 0)).save()


def update_run(run_id: str, **fields: object) -> None:
    FinetuneRun.objects(run_id=run_id).update_one(
        **{f"set__{k}": v for k, v in fields.items()}, set__updated_at=utcnow()
    )


def find_run(run_id: str) -> FinetuneRun | None:
    return FinetuneRun.objects(run_id=run_id).first()


def claim_run(run_id: str, worker: str, ttl_s: float) -> bool:
    """Take the run for `worker` unless it has ended or another worker's claim is still live."""
    now = utcnow()
    unclaimed = Q(claimed_by=None) | Q(claimed_until__lt=now)
    return bool(
        FinetuneRun.objects(Q(run_id=run_id) & Q(state__in=("queued", "running")) & unclaimed).update_one(
            set__claimed_by=worker,
            set__claimed_until=now + timedelta(seconds=ttl_s),
            set__state="running",
            inc__attempts=1,
            set__updated_at=now,
        )
    )


def renew_claim(run_id: str, worker: str, ttl_s: float) -> None:
    FinetuneRun.objects(run_id=run_id, claimed_by=worker).update_one(
        set__claimed_until=utcnow() + timedelta(seconds=ttl_s)
    )


def release_claim(run_id: str, worker: str) -> None:
    FinetuneRun.objects(run_id=run_id, claimed_by=worker).update_one(
        unset__claimed_by=True, unset__claimed_until=True
    )


def count_duplicate(run_id: str) -> None:
    FinetuneRun.objects(run_id=run_id).update_one(inc__duplicates_skipped=1)
