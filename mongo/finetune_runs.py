"""The state and progress of fine-tuning runs, written by the training worker, read by the API."""

from mongoengine import DateTimeField, DictField, Document, FloatField, IntField, StringField

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
