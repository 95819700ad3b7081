"""A reproducible train/eval split: the same rows, fraction and seed always give the same split."""

import random

from schemas.datasets import QARow


def split_rows(rows: list[QARow], eval_fraction: float, seed: int) -> tuple[list[QARow], list[QARow]]:
    if not 0 < eval_fraction < 1:
        raise ValueError("eval_fraction must be between 0 and 1")
    order = sorted(rows, key=lambda qa: qa.row)
    random.Random(seed).shuffle(order)
    eval_count = max(1, round(len(order) * eval_fraction)) if len(order) > 1 else 0
    eval_rows = sorted(order[:eval_count], key=lambda qa: qa.row)
    train_rows = sorted(order[eval_count:], key=lambda qa: qa.row)
    return train_rows, eval_rows
