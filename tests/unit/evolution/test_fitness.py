"""Fitness: ROI %, or the inactive penalty for bots that settled too little."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from evoarena.evolution.fitness import AccountStats, evaluate_fitness


@dataclass(frozen=True)
class FakeAccount:
    """A minimal account satisfying :class:`AccountStats`."""

    roi_pct: float = 0.0
    n_settled: int = 0
    total_trades: int = 0
    win_rate: float = 0.0
    realized_pnl_usd: float = 0.0
    fees_paid_usd: float = 0.0
    n_open: int = 0


def _fit(account: AccountStats, min_settled: int = 5, penalty: float = -100.0) -> float:
    return evaluate_fitness(account, min_settled_trades=min_settled, inactive_penalty=penalty)


def test_enough_settled_trades_gives_roi() -> None:
    """A bot with enough settled positions scores its ROI %."""
    assert _fit(FakeAccount(roi_pct=12.5, n_settled=7, total_trades=9)) == 12.5


def test_exactly_the_minimum_is_enough() -> None:
    """The minimum itself is not penalised."""
    assert _fit(FakeAccount(roi_pct=-3.25, n_settled=5)) == -3.25


def test_too_few_settled_trades_get_the_penalty() -> None:
    """One short of the minimum scores the penalty, however good the ROI."""
    assert _fit(FakeAccount(roi_pct=80.0, n_settled=4, total_trades=20)) == -100.0


@pytest.mark.parametrize("penalty", [-100.0, -50.0, 0.0])
def test_penalty_is_configurable(penalty: float) -> None:
    """The penalty is whatever the settings say."""
    assert _fit(FakeAccount(roi_pct=5.0), penalty=penalty) == penalty


def test_zero_minimum_never_penalises() -> None:
    """With no minimum, an idle bot scores its (zero) ROI."""
    assert _fit(FakeAccount(roi_pct=0.0), min_settled=0) == 0.0


def test_fitness_is_a_float() -> None:
    """Integer ROI values come back as floats."""
    result = _fit(FakeAccount(roi_pct=3, n_settled=10))
    assert isinstance(result, float)
    assert result == 3.0
