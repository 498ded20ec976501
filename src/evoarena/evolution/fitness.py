"""Fitness: a bot's return on its starting bankroll, with a penalty for bots that barely traded.

The seeds rank bots by ROI %. A bot that settled too few positions has not shown anything (a
lucky single bet must not top the leaderboard), so it gets a fixed penalty instead — by default
−100, the ROI of losing everything.
"""

from __future__ import annotations

from typing import Protocol


class AccountStats(Protocol):
    """**Protocol:** the read-only view of a paper account that fitness and stats need.

    Money is reported in US dollars as floats here because these values only feed rankings,
    statistics and state files; the account itself keeps integer micro-dollars.
    """

    @property
    def roi_pct(self) -> float:
        """Return on the starting bankroll, in percent (``+12.5`` means +12.5 %)."""
        ...

    @property
    def n_settled(self) -> int:
        """Positions that have settled (or been force-closed)."""
        ...

    @property
    def total_trades(self) -> int:
        """Fills over the whole generation."""
        ...

    @property
    def win_rate(self) -> float:
        """Share of settled positions that made money, 0-1 (0 when none settled)."""
        ...

    @property
    def realized_pnl_usd(self) -> float:
        """Realized profit and loss, fees included."""
        ...

    @property
    def fees_paid_usd(self) -> float:
        """Exchange fees paid."""
        ...

    @property
    def n_open(self) -> int:
        """Positions still open."""
        ...


def evaluate_fitness(
    account: AccountStats, *, min_settled_trades: int, inactive_penalty: float
) -> float:
    """``account.roi_pct``, or ``inactive_penalty`` if fewer than ``min_settled_trades`` settled."""
    if account.n_settled < min_settled_trades:
        return float(inactive_penalty)
    return float(account.roi_pct)
