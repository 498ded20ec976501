"""The luck test: calibrated under no skill, finds a real edge, deterministic, conservative."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from evoarena.engine.paper import BotAccount
from evoarena.evolution.fitness import compute_fitness, evaluate_fitness
from evoarena.evolution.luck import (
    EDGE,
    NO_EDGE,
    combined_p,
    event_group,
    luck_rng,
    luck_test,
    p_to_z,
    stouffer,
)
from evoarena.feeds.events import PRICE_ONE

BANKROLL = 100 * PRICE_ONE


def _account(bot_id: str, positions: list[tuple[str, str, int, float, bool]]) -> BotAccount:
    """An account whose closed positions are (ticker, side, contracts, price, won)."""
    closed: list[dict[str, Any]] = []
    for ticker, side, contracts, price, won in positions:
        cost = round(contracts * price * PRICE_ONE)
        fee = 10_000  # one cent
        closed.append(
            {
                "ticker": ticker,
                "side": side,
                "contracts": contracts,
                "cost": cost,
                "fee": fee,
                "opened_ms": 0,
                "closed_ms": 1,
                "payout": contracts * PRICE_ONE if won else 0,
                "settlement_value": (PRICE_ONE if won else 0)
                if side == "yes"
                else (0 if won else PRICE_ONE),
                "forced": False,
            }
        )
    cash = BANKROLL - sum(c["cost"] + c["fee"] - c["payout"] for c in closed)
    return BotAccount.from_dict(
        {
            "bot_id": bot_id,
            "initial_bankroll": BANKROLL,
            "cash": cash,
            "total_trades": len(closed),
            "trades_today": 0,
            "fees_paid": sum(c["fee"] for c in closed),
            "day": None,
            "day_start_equity": BANKROLL,
            "open_positions": [],
            "closed_positions": closed,
        }
    )


def _window(
    rng: np.random.Generator, *, bots: int, trades: int, edge: dict[int, float] | None = None
) -> list[BotAccount]:
    """A window of independent events; bot b's bets win with probability price + edge[b]."""
    edge = edge or {}
    out = []
    for b in range(bots):
        positions = []
        for t in range(trades):
            price = float(rng.uniform(0.05, 0.95))
            p_win = min(1.0, price + edge.get(b, 0.0))
            side = "yes" if rng.random() < 0.5 else "no"
            positions.append(
                (f"EV{b}X{t}-M", side, 10, round(price, 2), bool(rng.random() < p_win))
            )
        out.append(_account(f"{b:08x}", positions))
    return out


def _fitness(accounts: list[BotAccount]) -> list[float]:
    return [evaluate_fitness(a, min_settled_trades=5, inactive_penalty=-100.0) for a in accounts]


def _test(accounts: list[BotAccount], seed: int, sims: int = 199) -> Any:
    return luck_test(
        accounts,
        _fitness(accounts),
        min_settled_trades=5,
        simulations=sims,
        alpha=0.05,
        rng=np.random.default_rng(seed),
    )


def test_no_skill_windows_rarely_claim_an_edge() -> None:
    """Outcomes drawn at the prices paid (the null itself): "edge" in at most ~alpha of windows."""
    rng = np.random.default_rng(1)
    verdicts = [_test(_window(rng, bots=20, trades=10), seed).verdict for seed in range(60)]
    assert verdicts.count(EDGE) <= 6  # alpha = 0.05: 3 expected, 6 is the binomial's 95th pct


def test_a_bot_with_a_real_edge_is_found() -> None:
    """One bot whose 80 bets win 25 points more often than priced stands out of 20.

    Its P&L is then about 5 no-skill standard deviations up; the best of 20 no-skill bots
    reaches about 2.8 one time in twenty.
    """
    rng = np.random.default_rng(2)
    found = 0
    for seed in range(6):
        window = _window(rng, bots=20, trades=80, edge={7: 0.25})
        result = _test(window, seed)
        found += result.verdict == EDGE
    assert found >= 5


def test_a_lucky_long_shot_is_no_evidence() -> None:
    """A bot that hit one 5-cent long shot tops ROI (+75 %) but the test calls it luck."""
    rng = np.random.default_rng(3)
    window = _window(rng, bots=30, trades=12)
    lucky = _account("lucky000", [(f"LS{i}-E-M", "yes", 100, 0.05, i == 0) for i in range(5)])
    window.append(lucky)
    fitness = _fitness(window)
    assert max(fitness) == fitness[-1] > 70
    result = _test(window, 4)
    assert result.verdict == NO_EDGE
    assert result.top_fitness_p_value > 0.05


def test_deterministic_and_seeded_per_generation() -> None:
    """The same seed and generation give the same result; another generation another draw."""
    window = _window(np.random.default_rng(5), bots=10, trades=8)
    a = _test(window, 0)
    b = luck_test(
        window,
        _fitness(window),
        min_settled_trades=5,
        simulations=199,
        alpha=0.05,
        rng=luck_rng(42, 3),
    )
    c = luck_test(
        window,
        _fitness(window),
        min_settled_trades=5,
        simulations=199,
        alpha=0.05,
        rng=luck_rng(42, 3),
    )
    assert b == c
    assert a.simulations == 199
    assert 0 < a.p_value <= 1


def test_nobody_active_means_nothing_to_test() -> None:
    """Bots below min_settled_trades are not judged; with none left the p-value is 1."""
    window = _window(np.random.default_rng(6), bots=4, trades=2)
    result = _test(window, 0)
    assert (result.p_value, result.verdict) == (1.0, NO_EDGE)
    assert result.to_stats()["luck_best_z"] is None


def test_event_group_and_input_checks() -> None:
    """Markets of an event share a draw; the test needs one fitness per account."""
    assert event_group("KXHIGHLAX-26MAR02-T68") == "KXHIGHLAX-26MAR02"
    assert event_group("PLAIN") == "PLAIN"
    with pytest.raises(ValueError, match="one fitness per account"):
        luck_test([], [], min_settled_trades=1, simulations=1, alpha=0.05, rng=luck_rng(0, 0))


# -- fitness -----------------------------------------------------------------------------------


def test_roi_fitness_is_the_seeds_roi() -> None:
    """compute_fitness("roi") equals evaluate_fitness for active and inactive accounts."""
    for acct in _window(np.random.default_rng(7), bots=6, trades=6):
        for min_settled in (1, 7):
            assert compute_fitness(
                acct, "roi", min_settled_trades=min_settled, inactive_penalty=-100.0
            ) == evaluate_fitness(acct, min_settled_trades=min_settled, inactive_penalty=-100.0)


def test_stake_lcb_by_hand() -> None:
    """Two positions, worked out by hand: mean return on stake minus 1.645 standard errors."""
    acct = _account("0000000a", [("A-E-M", "yes", 10, 0.5, True), ("B-E-M", "yes", 10, 0.5, False)])
    # stakes $5, $5; pnl +4.99, -5.01 (one-cent fees); m = -0.02/10 = -0.002
    m = -0.02 / 10
    resid = (4.99 - m * 5) ** 2 + (-5.01 - m * 5) ** 2
    se = (resid * 2 / 1) ** 0.5 / 10
    expected = max(100 * (m - 1.6448536269514722 * se), -100.0)
    got = compute_fitness(acct, "stake_lcb", min_settled_trades=2, inactive_penalty=-100.0)
    assert got == pytest.approx(expected)
    assert got == -100.0  # a coin flip won once and lost once proves nothing: floored
    steady = _account("0000000b", [(f"F{i}-E-M", "yes", 10, 0.8, True) for i in range(6)])
    lcb = compute_fitness(steady, "stake_lcb", min_settled_trades=2, inactive_penalty=-100.0)
    assert lcb == pytest.approx(100 * 1.99 / 8)  # identical returns: no spread, LCB = mean
    assert compute_fitness(steady, "stake_lcb", min_settled_trades=7, inactive_penalty=-50) == -50


def test_stake_lcb_ranks_a_steady_edge_above_a_lucky_long_shot() -> None:
    """ROI prefers the long-shot winner; the stake LCB prefers steady favourites."""
    lucky = _account("lucky000", [(f"L{i}-E-M", "yes", 100, 0.05, i == 0) for i in range(5)])
    steady = _account("steady00", [(f"S{i}-E-M", "yes", 10, 0.7, i != 0) for i in range(10)])
    roi = {
        a.bot_id: compute_fitness(a, "roi", min_settled_trades=5, inactive_penalty=-100.0)
        for a in (lucky, steady)
    }
    lcb = {
        a.bot_id: compute_fitness(a, "stake_lcb", min_settled_trades=5, inactive_penalty=-100.0)
        for a in (lucky, steady)
    }
    assert roi["lucky000"] > roi["steady00"]
    assert lcb["steady00"] > lcb["lucky000"]


def test_carried_elites_are_tested_without_the_best_of_n_penalty() -> None:
    """Elites chosen earlier: their pooled result is judged alone, so a modest edge shows."""
    rng = np.random.default_rng(8)
    window = _window(rng, bots=20, trades=30, edge={0: 0.12, 1: 0.12, 2: 0.12})
    result = luck_test(
        window,
        _fitness(window),
        min_settled_trades=5,
        simulations=199,
        alpha=0.05,
        rng=np.random.default_rng(0),
        elites=[0, 1, 2],
    )
    assert result.oos_p_value is not None
    assert result.oos_p_value < 0.05
    no_elites = _test(window, 0)
    assert no_elites.oos_p_value is None
    assert no_elites.to_stats()["luck_oos_p_value"] is None


def test_walk_forward_p_values_combine() -> None:
    """Stouffer: one window passes through; consistent modest evidence accumulates."""
    assert stouffer([0.2]) == pytest.approx(0.2)
    assert stouffer([]) == 1.0
    assert stouffer([0.2] * 9) < 0.01  # nine windows each at p = 0.2
    assert stouffer([0.5, 0.5]) == pytest.approx(0.5)
    assert combined_p(p_to_z(0.05), 1) == pytest.approx(0.05)
