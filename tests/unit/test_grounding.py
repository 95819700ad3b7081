"""Grounding's retrieval: Korean terms matched across particles, the passage that answers ranked first
(a grounded chat through the API: tests/test_grounding.py)."""

from qa_datasets.retrieval import Passage, PassageIndex, terms
from tests.support.samples import QUESTION


def test_korean_terms_match_across_particles() -> None:
    assert "시장" in terms("시장은") and "시장" in terms("시장이")


def test_index_ranks_the_passage_that_answers_first() -> None:
    passages = [
        Passage("d", 1, "대한민국의 수도는 어디인가요?", "서울입니다."),
        Passage("d", 2, "은하시의 시장은 누구인가요?", "한별 시장입니다."),
    ]

    hits = PassageIndex(passages).search(QUESTION)

    assert hits[0][0].row == 2
