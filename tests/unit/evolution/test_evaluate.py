"""The arithmetic of `evaluate`: t intervals, per-genome summaries, the in/out-of-sample label."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest

from evoarena.errors import StateError
from evoarena.evolution.evaluate import mean_ci95, sample_label, summarize, t975
from evoarena.evolution.genome_source import GenomeSource

pytestmark = pytest.mark.timeout(30)


def _row(gid: str, roi: float, *, stake: float = 10.0, wins: int = 1, settled: int = 2,
         forced: int = 0, trades: int = 2) -> dict[str, Any]:  # fmt: skip
    return {
        "genome_id": gid, "gene_hash": f"h-{gid}", "trades": trades, "settled": settled,
        "wins": wins, "open": 0, "force_closed": forced, "stake_usd": stake, "fees_usd": 0.5,
        "pnl_usd": roi, "roi_bankroll_pct": roi, "roi_stake_pct": 0.0, "fitness": roi - 1,
    }  # fmt: skip


def test_t_quantiles_match_the_table_and_approach_the_normal() -> None:
    """Known Student-t values; beyond the table the approximation stays within 0.01."""
    assert t975(1) == 12.706
    assert t975(10) == 2.228
    assert abs(t975(31) - 2.040) < 0.005
    assert abs(t975(120) - 1.980) < 0.005
    with pytest.raises(ValueError, match="degrees of freedom"):
        t975(0)


def test_mean_ci95_by_hand() -> None:
    """xs = 1, 2, 3, 6: mean 3, s = √(14/3), half-width t(3)·s/2."""
    m, lo, hi = mean_ci95([1.0, 2.0, 3.0, 6.0])
    half = 3.182 * statistics.stdev([1.0, 2.0, 3.0, 6.0]) / 2
    assert m == 3.0
    assert lo == pytest.approx(3.0 - half)
    assert hi == pytest.approx(3.0 + half)
    assert mean_ci95([4.0]) == (4.0, None, None)
    assert mean_ci95([]) == (0.0, None, None)


def test_summarize_pools_windows_per_genome() -> None:
    """Sums over windows, ROI on stake pooled, win rate over closed positions, worst window."""
    windows = [
        [_row("a", 2.0, stake=20.0, wins=1, settled=1, forced=1), _row("b", -1.0)],
        [_row("b", 3.0), _row("a", -4.0, stake=5.0, wins=0, settled=2)],
        [_row("a", 5.0, stake=15.0, wins=2, settled=3), _row("b", 0.0, stake=0.0, trades=0,
                                                              settled=0, wins=0)],
    ]  # fmt: skip
    a, b = summarize(["a", "b"], windows)
    assert a["windows"] == 3
    assert a["trades"] == 6
    assert a["pnl_usd"] == 3.0
    assert a["stake_usd"] == 40.0
    assert a["roi_stake_pct"] == 7.5
    assert a["win_rate"] == pytest.approx(3 / 7)  # 3 wins of 1+1 + 2 + 3 closed
    assert a["force_closed"] == 1
    assert a["roi_bankroll_pct"]["per_window"] == [2.0, -4.0, 5.0]
    assert a["roi_bankroll_pct"]["mean"] == 1.0
    assert a["roi_bankroll_pct"]["worst"] == -4.0
    assert a["fitness_mean"] == 0.0
    assert b["roi_bankroll_pct"]["per_window"] == [-1.0, 3.0, 0.0]
    assert b["gene_hash"] == "h-b"
    with pytest.raises(StateError, match="window 1: no result for genome c"):
        summarize(["c"], [[_row("c", 1.0)], [_row("a", 1.0)]])


def _source(windows: list[tuple[str, str]]) -> GenomeSource:
    return GenomeSource(Path("runs/a"), "hall_of_fame", [], [], windows)


def test_sample_label_compares_time_spans() -> None:
    """Out-of-sample only when the source's training windows are known and none overlaps."""
    day = [("2026-03-02T00:00:00+00:00", "2026-03-02T03:00:00+00:00"),
           ("2026-03-02T04:00:00+00:00", "2026-03-02T07:00:00+00:00")]  # fmt: skip
    t0 = 1_772_409_600_000  # 2026-03-02T00:00:00Z
    later = sample_label(_source(day), t0 + 8 * 3_600_000, t0 + 20 * 3_600_000)
    assert later["label"] == "out-of-sample"
    same = sample_label(_source(day), t0 + 3_600_000, t0 + 5 * 3_600_000)
    assert same["label"] == "overlaps training"
    assert same["overlapping_training_windows"] == 2
    assert sample_label(_source([]), t0, t0 + 1)["label"] == "unknown"
    assert sample_label(_source(day), None, None)["label"] == "unknown"
