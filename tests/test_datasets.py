"""QA datasets: import from JSONL/CSV/Parquet with a column mapping, validate, split, describe."""

import io
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest

from qa_datasets.rows import ColumnMapping, read_rows
from qa_datasets.split import split_rows
from qa_datasets.validation import validate
from settings import PROJECT_ROOT
from tests.support.samples import SAMPLE


def sample_frame() -> pd.DataFrame:
    return pd.read_json(SAMPLE, lines=True)


def as_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "csv":
        frame.to_csv(buffer, index=False)
    elif fmt == "parquet":
        frame.to_parquet(buffer, index=False)
    else:
        frame.to_json(buffer, orient="records", lines=True, force_ascii=False)
    return buffer.getvalue()


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


def test_api_imports_describes_and_plots_a_dataset(api: httpx.Client, admin_headers) -> None:
    response = api.post(
        "/datasets/ko_sample?format=jsonl&seed=3", content=SAMPLE.read_bytes(), headers=admin_headers
    )
    description = api.get("/datasets/ko_sample", headers=admin_headers).json()
    plot = api.get("/datasets/ko_sample/plot.png", headers=admin_headers)
    listed = api.get("/datasets", headers=admin_headers).json()

    assert response.status_code == 201
    assert response.json()["imported"] == 26 and response.json()["splits"] == {"train": 23, "eval": 3}
    assert description["rows"] == 26 and description["instruction_chars"]["max"] > 0
    assert plot.headers["content-type"] == "image/png" and plot.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"name": "ko_sample", "rows": 26, "source": "jsonl"} in listed["datasets"]


def test_api_refuses_bad_rows_with_their_numbers_and_stores_nothing(api: httpx.Client, admin_headers) -> None:
    lines = [{"instruction": "질문", "output": "답"}, {"instruction": "", "output": "답"}]
    body = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines).encode()

    refused = api.post("/datasets/bad_rows", content=body, headers=admin_headers)
    missing = api.get("/datasets/bad_rows", headers=admin_headers)
    dropped = api.post("/datasets/bad_rows?drop_invalid=true", content=body, headers=admin_headers)

    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_rows"
    assert "row 2" in refused.json()["error"]["message"]
    assert missing.status_code == 404
    assert dropped.status_code == 201 and dropped.json()["imported"] == 1 and dropped.json()["dropped"] == 1


def test_api_says_which_columns_are_missing(api: httpx.Client, admin_headers) -> None:
    body = as_bytes(sample_frame().rename(columns={"output": "answer"}), "csv")

    response = api.post("/datasets/x?format=csv", content=body, headers=admin_headers)

    assert response.status_code == 400
    assert "output" in response.json()["error"]["message"] and "answer" in response.json()["error"]["message"]


def test_datasets_need_the_admin_key(api: httpx.Client, stack) -> None:
    assert httpx.post(f"{stack.api_url}/datasets/x", content=SAMPLE.read_bytes()).status_code == 401
    assert api.post("/datasets/x", content=SAMPLE.read_bytes()).status_code == 403  # a user's key


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
