"""A QA row in the ko_wikidata_QA shape (an instruction/output pair), as the dataset store and the
dataset tools (qa_datasets/, finetune/) pass it between them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class QARow:
    row: int  # 1-based position in the source file, as users count rows
    instruction: str
    output: str
