"""Reading QA rows (schemas/datasets.py) from JSONL, CSV and Parquet files."""

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from schemas.datasets import QARow

FORMATS = ("jsonl", "csv", "parquet")


class DatasetFormatError(ValueError):
    """The file cannot be read as the format says, or lacks a mapped column."""


@dataclass(frozen=True)
class ColumnMapping:
    instruction: str = "instruction"
    output: str = "output"


def format_of(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    fmt = {"json": "jsonl", "ndjson": "jsonl", "pq": "parquet"}.get(suffix, suffix)
    if fmt not in FORMATS:
        raise DatasetFormatError(f"cannot tell the format of {path.name}: use one of {', '.join(FORMATS)}")
    return fmt


def _frame(data: bytes, fmt: str) -> pd.DataFrame:
    buffer = io.BytesIO(data)
    try:
        if fmt == "jsonl":
            return pd.read_json(buffer, lines=True, dtype=False)
        if fmt == "csv":
            return pd.read_csv(buffer, dtype=str, keep_default_na=False)
        if fmt == "parquet":
            return pd.read_parquet(buffer)
    except Exception as exc:  # pandas raises many kinds for a malformed file
        raise DatasetFormatError(f"not a readable {fmt} file: {exc}") from exc
    raise DatasetFormatError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def read_rows(data: bytes, fmt: str, mapping: ColumnMapping = ColumnMapping()) -> list[QARow]:
    frame = _frame(data, fmt)
    missing = [column for column in (mapping.instruction, mapping.output) if column not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns)) or "none"
        raise DatasetFormatError(
            f"column(s) {', '.join(missing)} not found (have: {have}); map them explicitly"
        )
    return [
        QARow(row=position + 1, instruction=_text(instruction), output=_text(output))
        for position, (instruction, output) in enumerate(
            zip(frame[mapping.instruction], frame[mapping.output], strict=True)
        )
    ]
