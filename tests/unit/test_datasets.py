"""QA datasets: read from JSONL/CSV/Parquet with a column mapping, validated and split, by the library and
the CLI (through the API: tests/test_datasets.py)."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from qa_datasets.rows import ColumnMapping, read_rows
from qa_datasets.split import split_rows
from qa_datasets.validation import validate
from settings import PROJECT_ROOT
from tests.support.samples import SAMPLE, as_bytes, sample_frame


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_each_format_reads_the_same_rows_through_a_column_mapping(fmt: str) -> None:
    renamed = sample_frame().rename(columns={"instruction": "question", "output": "answer"})

    rows = read_rows(as_bytes(renamed, fmt), fmt, ColumnMapping(instruction="question", output="answer"))

    assert len(rows) == 26
    assert rows[0].row == 1
    assert rows[0].instruction == "대한민국의 수도는 어디인가요?"
    assert rows[-1].output.startswith("푸른솔 도서관은")


def test_validation_reports_bad_rows_by_number() -> None:
    frame = pd.DataFrame(
        {"instruction": ["좋은 질문", "", "좋은 질문", "긴 질문"], "output": ["답", "답", "답", "가" * 50]}
    )

    problems = validate(read_rows(as_bytes(frame, "jsonl"), "jsonl"), max_chars=20)

    assert [(p.row, p.kind) for p in problems] == [(2, "empty"), (3, "duplicate"), (4, "too_long")]
    assert "row 1" in problems[1].detail


def test_split_is_reproducible_by_seed() -> None:
    rows = read_rows(SAMPLE.read_bytes(), "jsonl")

    first = split_rows(rows, 0.2, seed=7)
    again = split_rows(rows, 0.2, seed=7)
    other = split_rows(rows, 0.2, seed=8)

    assert first == again
    assert first[1] != other[1]
    assert len(first[1]) == 5 and len(first[0]) == 21
    assert {qa.row for qa in first[0]} | {qa.row for qa in first[1]} == set(range(1, 27))


def test_cli_validate_prints_the_bad_rows(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"instruction": ["질문", "질문"], "output": ["답", "답"]}).to_csv(bad, index=False)

    result = subprocess.run(
        [sys.executable, "-m", "cli", "datasets", "validate", str(bad)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )

    assert result.returncode == 1
    assert "row 2: duplicate" in result.stdout
