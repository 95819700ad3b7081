"""Print the mutation score of the last `mutmut run` (mutants/mutmut-cicd-stats.json) and fail under
the project's target: at least 90% of the mutants of the pure modules killed."""

import json
import sys
from pathlib import Path

TARGET = 0.90


def main() -> int:
    stats = json.loads(Path("mutants/mutmut-cicd-stats.json").read_text())
    killed = stats["killed"] + stats["timeout"]  # a mutant that hangs the tests is caught too
    score = killed / stats["total"]
    print(
        f"mutation score: {killed} of {stats['total']} mutants killed ({score:.1%}); "
        f"survived {stats['survived']}, no tests {stats['no_tests']}, skipped {stats['skipped']}"
    )
    return 0 if score >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
