"""QA datasets through the API: imported with a column mapping, validated, described, plotted (the
library and the CLI alone: tests/unit/test_datasets.py)."""

import json

import httpx

from tests.support.samples import SAMPLE, as_bytes, sample_frame


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
