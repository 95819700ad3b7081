"""QA datasets in MongoDB, where the API, the trainer and every worker host can read them."""

from mongoengine import DateTimeField, Document, FloatField, IntField, StringField

from mongo.fields import utcnow
from schemas.datasets import QARow


class QADataset(Document):
    meta = {"collection": "qa_datasets", "indexes": [{"fields": ["name"], "unique": True}]}

    name = StringField(required=True, max_length=64)
    source = StringField(default="")
    rows = IntField(default=0)
    eval_fraction = FloatField()
    seed = IntField()
    created_at = DateTimeField(default=utcnow)


class QARowDocument(Document):
    meta = {"collection": "qa_rows", "indexes": [("dataset", "row")]}

    dataset = StringField(required=True)
    row = IntField(required=True)
    instruction = StringField(default="")
    output = StringField(default="")
    split = StringField(choices=("train", "eval"))


def save_dataset(name: str, source: str, rows: list[QARow]) -> QADataset:
    """Replace the dataset of that name with these rows (all in the train split until split)."""
    delete_dataset(name)
    dataset = QADataset(name=name, source=source, rows=len(rows)).save()
    if rows:
        QARowDocument.objects.insert(
            [
                QARowDocument(
                    dataset=name, row=qa.row, instruction=qa.instruction, output=qa.output, split="train"
                )
                for qa in rows
            ],
            load_bulk=False,
        )
    return dataset


def assign_split(name: str, eval_rows: list[QARow], eval_fraction: float, seed: int) -> None:
    QARowDocument.objects(dataset=name).update(set__split="train")
    QARowDocument.objects(dataset=name, row__in=[qa.row for qa in eval_rows]).update(set__split="eval")
    QADataset.objects(name=name).update_one(set__eval_fraction=eval_fraction, set__seed=seed)


def dataset_rows(name: str, split: str | None = None) -> list[QARow]:
    query = QARowDocument.objects(dataset=name, **({"split": split} if split else {})).order_by("row")
    return [QARow(doc.row, doc.instruction, doc.output) for doc in query]


def split_counts(name: str) -> dict[str, int]:
    return {split: QARowDocument.objects(dataset=name, split=split).count() for split in ("train", "eval")}


def find_dataset(name: str) -> QADataset | None:
    return QADataset.objects(name=name).first()


def list_datasets() -> list[QADataset]:
    return list(QADataset.objects.order_by("name"))


def delete_dataset(name: str) -> bool:
    QARowDocument.objects(dataset=name).delete()
    return QADataset.objects(name=name).delete() > 0
