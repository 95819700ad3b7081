"""Import, split and describe a dataset: the steps the CLI and the API share."""

import re
from dataclasses import dataclass, field

from mongo import datasets as store
from qa_datasets.describe import describe
from qa_datasets.rows import ColumnMapping, read_rows
from qa_datasets.split import split_rows
from qa_datasets.validation import Problem, validate, without_problems
from schemas.datasets import QARow

DATASET_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class DatasetRejected(ValueError):
    """The file has bad rows and the caller did not ask to drop them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "; ".join(f"row {p.row}: {p.detail}" for p in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s): {shown}{more}")


@dataclass
class ImportReport:
    name: str
    imported: int
    dropped: int
    problems: list[Problem] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)


def check_name(name: str) -> str:
    if not DATASET_NAME.match(name):
        raise ValueError("dataset name must be 1-64 letters, digits, '_', '.' or '-'")
    return name


def import_dataset(
    name: str,
    data: bytes,
    fmt: str,
    mapping: ColumnMapping,
    max_chars: int,
    drop_invalid: bool = False,
    eval_fraction: float = 0.1,
    seed: int = 0,
) -> ImportReport:
    rows = read_rows(data, fmt, mapping)
    problems = validate(rows, max_chars)
    if problems and not drop_invalid:
        raise DatasetRejected(problems)
    kept = without_problems(rows, problems)
    store.save_dataset(check_name(name), source=fmt, rows=kept)
    splits = resplit(name, eval_fraction, seed) if len(kept) > 1 else store.split_counts(name)
    return ImportReport(name, len(kept), len(rows) - len(kept), problems, splits)


def resplit(name: str, eval_fraction: float, seed: int) -> dict[str, int]:
    _, eval_rows = split_rows(store.dataset_rows(name), eval_fraction, seed)
    store.assign_split(name, eval_rows, eval_fraction, seed)
    return store.split_counts(name)


def description(name: str) -> dict:
    rows: list[QARow] = store.dataset_rows(name)
    return {"name": name, **describe(rows, store.split_counts(name))}
