"""Print, save as JSON and draw the benchmark's results side by side, with the ratios the targets use."""

import json
import logging
from dataclasses import asdict
from pathlib import Path

from cli.bench.measure import MultiTurnStats, RunStats

log = logging.getLogger(__name__)


def ratios(results: list[RunStats], ours: str, other: str) -> dict[int, dict[str, float]]:
    """ours/other for each client count: tokens/s per stream, aggregate tokens/s, requests/hour;
    and the time to first token ours adds (ms, p50)."""
    by_key = {(r.system, r.clients): r for r in results}
    out: dict[int, dict[str, float]] = {}
    for clients in sorted({r.clients for r in results}):
        a, b = by_key.get((ours, clients)), by_key.get((other, clients))
        if a and b:
            out[clients] = {
                "tokens_per_s_per_stream": a.tokens_per_s_per_stream / b.tokens_per_s_per_stream,
                "aggregate_tokens_per_s": a.aggregate_tokens_per_s / b.aggregate_tokens_per_s,
                "requests_per_hour": a.requests_per_hour / b.requests_per_hour,
                "added_ttft_p50_ms": a.ttft_p50_ms - b.ttft_p50_ms,
                "ttft_p50": a.ttft_p50_ms / b.ttft_p50_ms,
            }
    return out


def label(system: str) -> str:
    """A system's letter, "(b)" of "(b) our stack (HTTP/SSE)"; the whole name when it has none."""
    return system.split(" ", 1)[0] if system.startswith("(") else system


def table(results: list[RunStats], ours: list[str], other: str) -> str:
    """A block per round (client count): each system's figures, then each of ours/other."""
    header = f"{'system':34} {'clients':>7} {'ttft p50':>9} {'ttft p99':>9} {'tok/s/stream':>12} {'agg tok/s':>9} {'req/hour':>9}"
    versus = {system: ratios(results, system, other) for system in ours}
    lines = [header]
    for clients in sorted({r.clients for r in results}):
        lines += [
            f"{r.system:34} {r.clients:>7} {r.ttft_p50_ms:>7.1f}ms {r.ttft_p99_ms:>7.1f}ms "
            f"{r.tokens_per_s_per_stream:>12.1f} {r.aggregate_tokens_per_s:>9.1f} {r.requests_per_hour:>9.0f}"
            for r in sorted(results, key=lambda r: r.system)
            if r.clients == clients
        ]
        lines += [
            f"  {label(system)}/{label(other)}: {ratio_line(values[clients])}"
            for system, values in versus.items()
            if clients in values
        ]
        lines.append("")
    return "\n".join(lines)


def ratio_line(v: dict[str, float]) -> str:
    return (
        f"aggregate x{v['aggregate_tokens_per_s']:.2f}, tok/s/stream "
        f"x{v['tokens_per_s_per_stream']:.2f}, req/hour x{v['requests_per_hour']:.2f}, "
        f"TTFT p50 x{v['ttft_p50']:.2f} ({v['added_ttft_p50_ms']:+.0f} ms)"
    )


def markdown(results: list[RunStats], ours: list[str], other: str, multi_turn: list[MultiTurnStats]) -> str:
    """The README's tables: every system per round with each of ours/other, then the multi-turn round."""
    versus = {system: ratios(results, system, other) for system in ours}
    lines = [
        "| clients | system | aggregate tok/s | tok/s per stream | TTFT p50 | TTFT p99 | requests/hour |",
        "|---|---|---|---|---|---|---|",
    ]
    for clients in sorted({r.clients for r in results}):
        lines += [
            f"| {r.clients} | {r.system} | {r.aggregate_tokens_per_s:.1f} | {r.tokens_per_s_per_stream:.1f} "
            f"| {_duration(r.ttft_p50_ms)} | {_duration(r.ttft_p99_ms)} | {r.requests_per_hour:.0f} |"
            for r in sorted(results, key=lambda r: r.system)
            if r.clients == clients
        ]
        lines += [
            f"| {clients} | **{label(system)} / {label(other)}** | **x{v['aggregate_tokens_per_s']:.2f}** "
            f"| **x{v['tokens_per_s_per_stream']:.2f}** | **x{v['ttft_p50']:.2f}** | | "
            f"**x{v['requests_per_hour']:.2f}** |"
            for system, values in versus.items()
            if (v := values.get(clients))
        ]
    if multi_turn:
        kinds = list(dict.fromkeys(kind for stats in multi_turn for kind in stats.ttft_p50_ms))
        lines += ["", "| system (TTFT p50) | " + " | ".join(kinds) + " | new card / turn 2 |",
                  "|---" * (len(kinds) + 2) + "|"]  # fmt: skip
        lines += [
            f"| {stats.system} | "
            + " | ".join(
                _duration(stats.ttft_p50_ms[kind]) if kind in stats.ttft_p50_ms else "" for kind in kinds
            )
            + f" | x{stats.second_turn_speedup:.1f} |"
            for stats in multi_turn
        ]
    return "\n".join(lines) + "\n"


def _duration(ms: float) -> str:
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"


def turns_table(results: list[MultiTurnStats]) -> str:
    kinds = list(dict.fromkeys(kind for stats in results for kind in stats.ttft_p50_ms))
    header = (
        f"{'system (TTFT p50)':32} "
        + " ".join(f"{kind:>26}" for kind in kinds)
        + f" {'new card / turn 2':>18}"
    )
    rows = [
        f"{stats.system:32} "
        + " ".join(f"{stats.ttft_p50_ms.get(kind, float('nan')):>24.1f}ms" for kind in kinds)
        + f" {stats.second_turn_speedup:>17.1f}x"
        for stats in results
    ]
    return "\n".join([header, *rows])


def ratio_lines(name: str, values: dict[int, dict[str, float]]) -> list[str]:
    return [
        f"{name} @ {clients} client(s): tok/s/stream x{v['tokens_per_s_per_stream']:.3f}, "
        f"aggregate x{v['aggregate_tokens_per_s']:.3f}, req/hour x{v['requests_per_hour']:.3f}, "
        f"added TTFT p50 {v['added_ttft_p50_ms']:+.1f} ms (x{v['ttft_p50']:.2f})"
        for clients, v in values.items()
    ]


def chart(results: list[RunStats], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(dict.fromkeys(r.system for r in results))
    client_counts = sorted({r.clients for r in results})
    by_key = {(r.system, r.clients): r for r in results}
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(systems)
    for i, system in enumerate(systems):
        xs = [c + (i - (len(systems) - 1) / 2) * width for c in range(len(client_counts))]
        axes[0].bar(
            xs, [by_key[(system, c)].aggregate_tokens_per_s for c in client_counts], width, label=system
        )
        axes[1].bar(xs, [by_key[(system, c)].ttft_p50_ms for c in client_counts], width, label=system)
    for axis, title in zip(
        axes, ("aggregate tokens/s (higher is better)", "time to first token p50, ms"), strict=True
    ):
        axis.set_xticks(range(len(client_counts)), [f"{c} client(s)" for c in client_counts])
        axis.set_title(title)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(
    results: list[RunStats],
    out_dir: Path,
    meta: dict,
    ours: list[str],
    theirs: str,
    pairs: dict[str, tuple[str, str]],
    multi_turn: list[MultiTurnStats] = (),
) -> None:
    """`ours`/`theirs`: the systems the targets compare, in the tables; `pairs`: a title for each
    (system, other system) ratio to print (e.g. "(b)/(d) stack vs llama-server": (b), (d))."""
    out_dir.mkdir(parents=True, exist_ok=True)
    versus = {title: ratios(results, *pair) for title, pair in pairs.items()}
    turns = [{**asdict(stats), "second_turn_speedup": stats.second_turn_speedup} for stats in multi_turn]
    document = {"meta": meta, "results": [asdict(r) for r in results], "ratios": versus, "multi_turn": turns}
    (out_dir / "results.json").write_text(json.dumps(document, indent=2))
    (out_dir / "results.md").write_text(markdown(results, ours, theirs, list(multi_turn)))
    chart(results, out_dir / "results.png")
    print(table(results, ours, theirs))
    for title, values in versus.items():
        print("\n".join(ratio_lines(title, values)))
    if multi_turn:
        print(turns_table(list(multi_turn)))
    print(f"written: {out_dir / 'results.json'}, results.md, results.png")
