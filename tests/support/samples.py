"""Files the tests feed the API, from the project's own samples."""

from settings import PROJECT_ROOT

SAMPLE = PROJECT_ROOT / "qa_datasets" / "samples" / "ko_wikidata_qa_sample.jsonl"
