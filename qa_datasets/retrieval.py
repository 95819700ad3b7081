"""Offline retrieval over the imported QA datasets (BM25), standing in for the original's Google search.

Korean attaches particles to words ("교장은", "교장이"), so besides whole words each non-ASCII word
also contributes its character bigrams: a question and a passage then share terms even when their
particles differ.
"""

import re
from dataclasses import dataclass

from rank_bm25 import BM25Plus

WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Passage:
    dataset: str
    row: int
    instruction: str
    output: str

    @property
    def source(self) -> str:
        return f"{self.dataset}#{self.row}"


def terms(text: str) -> list[str]:
    out: list[str] = []
    for word in WORD.findall(text.lower()):
        out.append(word)
        if not word.isascii() and len(word) > 1:
            out += [word[i : i + 2] for i in range(len(word) - 1)]
    return out


class PassageIndex:
    def __init__(self, passages: list[Passage]) -> None:
        self.passages = passages
        documents = [terms(f"{p.instruction} {p.output}") for p in passages]
        self._vocabularies = [set(document) for document in documents]
        # BM25+ keeps the idf of a term positive even in a corpus of a few passages (Okapi's is 0 there).
        self._bm25 = BM25Plus(documents) if passages else None

    def search(self, query: str, k: int = 3) -> list[tuple[Passage, float]]:
        """The k best passages that share at least one term with the query, best first."""
        if self._bm25 is None or not (query_terms := terms(query)):
            return []
        scores = self._bm25.get_scores(query_terms)
        wanted = set(query_terms)
        ranked = sorted(
            (
                (p, float(s))
                for p, s, vocab in zip(self.passages, scores, self._vocabularies, strict=True)
                if vocab & wanted
            ),
            key=lambda pair: pair[1],
            reverse=True,
        )
        return ranked[:k]
