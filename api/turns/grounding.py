"""`google_access: true`: ground the assistant's answer in passages retrieved from the imported
datasets (offline here, where the original searched Google). The index is rebuilt only when the
set of datasets changes."""

import asyncio

from mongo import datasets as store
from qa_datasets.retrieval import Passage, PassageIndex
from schemas.events import SourceRef

_index: PassageIndex | None = None
_index_version: tuple = ()


def _datasets_version() -> tuple:
    return tuple((d.name, d.rows, d.created_at) for d in store.list_datasets())


def _current_index() -> PassageIndex:
    global _index, _index_version
    version = _datasets_version()
    if _index is None or version != _index_version:
        passages = [
            Passage(name, qa.row, qa.instruction, qa.output)
            for name, *_ in version
            for qa in store.dataset_rows(name)
        ]
        _index, _index_version = PassageIndex(passages), version
    return _index


def grounding_prompt(passages: list[Passage]) -> str:
    lines = [f"[{i}] ({p.source}) Q: {p.instruction} A: {p.output}" for i, p in enumerate(passages, 1)]
    return "Answer using these passages; say so if they do not contain the answer.\n" + "\n".join(lines)


async def retrieve(question: str, k: int) -> tuple[str, list[SourceRef]]:
    """The text to add to the system prompt, and the sources the `done` event will list."""
    hits = (await asyncio.to_thread(_current_index)).search(question, k)
    if not hits:
        return "", []
    passages = [passage for passage, _ in hits]
    sources = [
        SourceRef(dataset=p.dataset, row=p.row, title=p.instruction, score=round(score, 3))
        for p, score in hits
    ]
    return grounding_prompt(passages), sources
