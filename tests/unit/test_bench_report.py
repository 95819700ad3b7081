"""The benchmark's arithmetic and tables (pure code: no model, no server)."""

from cli.bench.measure import Trace, TurnTrace, summarize, summarize_turns
from cli.bench.report import markdown, ratios, table, turns_table


def test_ratios_compare_our_stack_with_another_system_round_by_round() -> None:
    ours = summarize("ours", 8, [Trace(ttft_s=0.3, total_s=2.3, tokens=41)] * 8, wall_s=4.0)
    theirs = summarize("theirs", 8, [Trace(ttft_s=0.2, total_s=2.2, tokens=41)] * 8, wall_s=3.2)

    (eight,) = ratios([ours, theirs], "ours", "theirs").items()

    assert eight[0] == 8
    assert round(eight[1]["aggregate_tokens_per_s"], 3) == 0.8  # 82 tok/s against 102.5
    assert round(eight[1]["ttft_p50"], 3) == 1.5
    assert "ours/theirs: aggregate x0.80" in table([ours, theirs], ["ours"], "theirs")
    assert "| 8 | **ours / theirs** | **x0.80** |" in markdown([ours, theirs], ["ours"], "theirs", [])


def test_each_of_our_configurations_gets_its_own_ratio_row() -> None:
    default = summarize("(b) ours", 8, [Trace(ttft_s=0.3, total_s=2.3, tokens=41)] * 8, wall_s=4.0)
    repacked = summarize("(e) ours", 8, [Trace(ttft_s=0.3, total_s=2.3, tokens=41)] * 8, wall_s=3.2)
    theirs = summarize("(d) theirs", 8, [Trace(ttft_s=0.2, total_s=2.2, tokens=41)] * 8, wall_s=3.2)

    rows = markdown([default, repacked, theirs], ["(b) ours", "(e) ours"], "(d) theirs", [])

    assert "| 8 | **(b) / (d)** | **x0.80** |" in rows
    assert "| 8 | **(e) / (d)** | **x1.00** |" in rows


def test_multi_turn_round_reports_the_median_time_to_first_token_of_each_kind_of_turn() -> None:
    traces = [
        TurnTrace("first turn, new card", 4.0),
        TurnTrace("turn 2", 0.2),
        TurnTrace("first turn, new card", 5.0),
        TurnTrace("turn 2", 0.1),
        TurnTrace("first turn, new card", 6.0),
        TurnTrace("turn 2", 0.25),
    ]

    stats = summarize_turns("ours", 1074, traces)

    assert stats.ttft_p50_ms == {"first turn, new card": 5000.0, "turn 2": 200.0}
    assert stats.samples == {"first turn, new card": 3, "turn 2": 3}
    assert stats.second_turn_speedup == 25.0
    assert "25.0x" in turns_table([stats])
