"""Fine-tuned LoRA adapters, registered so operators can find and serve them."""

from mongoengine import DateTimeField, DictField, Document, StringField

from mongo.fields import utcnow


class Adapter(Document):
    meta = {"collection": "adapters", "indexes": [{"fields": ["name"], "unique": True}]}

    name = StringField(required=True, max_length=100)
    base_model = StringField(required=True)
    dataset = StringField(required=True)
    path = StringField(required=True)
    metrics = DictField()
    created_at = DateTimeField(default=utcnow)


def register_adapter(name: str, base_model: str, dataset: str, path: str, metrics: dict) -> None:
    Adapter.objects(name=name).update_one(
        upsert=True,
        set__base_model=base_model,
        set__dataset=dataset,
        set__path=path,
        set__metrics=metrics,
        set__created_at=utcnow(),
    )


def list_adapters() -> list[Adapter]:
    return list(Adapter.objects.order_by("-created_at"))
