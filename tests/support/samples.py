"""Files the tests feed the API, from the project's own samples, and the sample QA dataset written in
each format an import reads."""

import io

import pandas as pd

from settings import PROJECT_ROOT

SAMPLE = PROJECT_ROOT / "qa_datasets" / "samples" / "ko_wikidata_qa_sample.jsonl"
# A question only the sample's fictional row 23 answers.
QUESTION = "은하시 시장이 누구야?"


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
