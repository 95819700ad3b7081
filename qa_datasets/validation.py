"""Find the rows a trainer or a retriever should not get: empty, duplicated, or too long."""

from dataclasses import dataclass

from schemas.datasets import QARow


@dataclass(frozen=True)
class Problem:
    row: int
    kind: str  # empty | duplicate | too_long
    detail: str


def validate(rows: list[QARow], max_chars: int) -> list[Problem]:
    problems: list[Problem] = []
    first_seen: dict[tuple[str, str], int] = {}
    for qa in rows:
        for field, text in (("instruction", qa.instruction), ("output", qa.output)):
            if not text.strip():
                problems.append(Problem(qa.row, "empty", f"{field} is empty"))
            elif len(text) > max_chars:
                problems.append(
                    Problem(qa.row, "too_long", f"{field} has {len(text)} characters (limit {max_chars})")
                )
        key = (qa.instruction.strip(), qa.output.strip())
        if key in first_seen:
            problems.append(Problem(qa.row, "duplicate", f"same pair as row {first_seen[key]}"))
        else:
            first_seen[key] = qa.row
    return problems


def without_problems(rows: list[QARow], problems: list[Problem]) -> list[QARow]:
    bad = {problem.row for problem in problems}
    return [qa for qa in rows if qa.row not in bad]
