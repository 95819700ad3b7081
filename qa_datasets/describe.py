"""Counts and length distributions of a dataset, as numbers and as a PNG."""

import io
import statistics

from schemas.datasets import QARow


def _lengths(texts: list[str]) -> dict[str, float]:
    if not texts:
        return {"min": 0, "mean": 0, "median": 0, "p95": 0, "max": 0}
    lengths = sorted(len(text) for text in texts)
    return {
        "min": lengths[0],
        "mean": round(statistics.fmean(lengths), 1),
        "median": statistics.median(lengths),
        "p95": lengths[min(len(lengths) - 1, round(0.95 * (len(lengths) - 1)))],
        "max": lengths[-1],
    }


def describe(rows: list[QARow], splits: dict[str, int] | None = None) -> dict:
    return {
        "rows": len(rows),
        "splits": splits or {},
        "instruction_chars": _lengths([qa.instruction for qa in rows]),
        "output_chars": _lengths([qa.output for qa in rows]),
    }


def length_plot_png(rows: list[QARow], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for axis, field in zip(axes, ("instruction", "output"), strict=True):
        axis.hist([len(getattr(qa, field)) for qa in rows], bins=20, color="#4c72b0")
        axis.set_title(f"{field} length (characters)")
        axis.set_ylabel("rows")
    figure.suptitle(f"{title}: {len(rows)} rows")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
