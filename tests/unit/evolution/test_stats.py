"""Generation statistics and leaderboard rows on small, hand-computed populations."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from evoarena.evolution.stats import BotResult, compute_generation_stats, leaderboard_rows


@dataclass(frozen=True)
class FakeAccount:
    """A minimal account satisfying ``AccountStats``."""

    roi_pct: float = 0.0
    n_settled: int = 0
    total_trades: int = 0
    win_rate: float = 0.0
    realized_pnl_usd: float = 0.0
    fees_paid_usd: float = 0.0
    n_open: int = 0


def _population() -> list[BotResult]:
    a = FakeAccount(10.0, 5, 6, 0.6, 10.0, 0.5, 1)
    b = FakeAccount(-5.0, 6, 8, 0.5, -5.0, 0.7, 0)
    c = FakeAccount(2.5, 1, 2, 1.0, 2.5, 0.1, 1)
    d = FakeAccount()
    return [
        BotResult("0000000a", "momentum", 10.0, a),
        BotResult("0000000b", "value", -5.0, b),
        BotResult("0000000c", "momentum", -100.0, c),
        BotResult("0000000d", "contrarian", -100.0, d),
    ]


def test_stats_of_a_known_population() -> None:
    """Every statistic matches the value worked out by hand."""
    stats = compute_generation_stats(_population())
    assert stats == {
        "population": 4,
        "best_roi": 10.0,
        "median_roi": 1.25,  # sorted ROIs -5, 0, 2.5, 10
        "mean_roi": 1.875,  # 7.5 / 4
        "best_fitness": 10.0,
        "mean_fitness": -48.75,  # (10 - 5 - 100 - 100) / 4
        "mean_trades": 4.0,  # 16 / 4
        "active_bots": 3,
        "total_trades": 16,
        "settled_trades": 12,
        "open_positions": 2,
        "fees_paid": 1.3,
        "realized_pnl": 7.5,
        "win_rate": 0.7,  # (0.6 + 0.5 + 1.0) / 3 active bots
        "signal_mix": {
            "price_level": 0,
            "momentum": 2,
            "mean_reversion": 0,
            "value": 1,
            "contrarian": 1,
        },
    }


def test_stats_round_to_six_decimals() -> None:
    """Repeating decimals are cut to six places."""
    results = [
        BotResult("00000001", "value", 1 / 3, FakeAccount(roi_pct=1 / 3, total_trades=1)),
        BotResult("00000002", "value", 0.0, FakeAccount(roi_pct=0.0, total_trades=2)),
    ]
    stats = compute_generation_stats(results)
    assert stats["best_roi"] == 0.333333
    assert stats["mean_roi"] == 0.166667
    assert stats["mean_trades"] == 1.5


def test_stats_never_write_negative_zero() -> None:
    """A tiny negative value rounds to 0.0, not -0.0, so files stay stable."""
    results = [BotResult("00000001", "value", -1e-9, FakeAccount(roi_pct=-1e-9))]
    dumped = orjson.dumps(compute_generation_stats(results))
    assert b"-0.0" not in dumped


def test_stats_of_an_empty_population() -> None:
    """No bots gives zeros and the full signal mix."""
    stats = compute_generation_stats([])
    assert stats["population"] == 0
    assert stats["best_roi"] == 0.0
    assert stats["win_rate"] == 0.0
    assert set(stats["signal_mix"]) == {
        "price_level",
        "momentum",
        "mean_reversion",
        "value",
        "contrarian",
    }


def test_unknown_signal_type_is_counted() -> None:
    """A signal type outside the known five still appears in the mix."""
    stats = compute_generation_stats([BotResult("00000001", "oracle", 0.0, FakeAccount())])
    assert stats["signal_mix"]["oracle"] == 1
    assert stats["signal_mix"]["value"] == 0


def test_win_rate_ignores_idle_bots() -> None:
    """Bots without trades do not drag the mean win rate down."""
    results = [
        BotResult("00000001", "value", 0.0, FakeAccount(total_trades=3, win_rate=0.5)),
        BotResult("00000002", "value", 0.0, FakeAccount(total_trades=0, win_rate=0.0)),
    ]
    assert compute_generation_stats(results)["win_rate"] == 0.5


def test_leaderboard_orders_by_fitness_then_id() -> None:
    """Best first; equal fitness ordered by genome id; ranks from 1."""
    rows = leaderboard_rows(_population(), 10)
    assert [r["genome_id"] for r in rows] == ["0000000a", "0000000b", "0000000c", "0000000d"]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert rows[0] == {
        "rank": 1,
        "genome_id": "0000000a",
        "signal_type": "momentum",
        "fitness": 10.0,
        "roi_pct": 10.0,
        "trades": 6,
        "settled": 5,
        "win_rate": 0.6,
        "pnl_usd": 10.0,
        "fees_usd": 0.5,
    }
    assert rows[2]["fitness"] == -100.0
    assert rows[2]["roi_pct"] == 2.5


def test_leaderboard_truncates_to_top_n() -> None:
    """Only the best top_n rows come back."""
    assert [r["genome_id"] for r in leaderboard_rows(_population(), 2)] == [
        "0000000a",
        "0000000b",
    ]
    assert leaderboard_rows(_population(), 0) == []
