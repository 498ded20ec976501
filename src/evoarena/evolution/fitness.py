"""Fitness: how a generation ranks its bots (``[evolution] fitness``).

* ``roi`` (default, the seeds' rule): return on the starting bankroll, in percent. It rewards
  betting big as much as betting well, and one lucky long shot can top it.
* ``stake_lcb``: a one-sided 95 % lower confidence bound of the return on stake, in percent:
  ``100 · (m − 1.645 · se)`` with ``m = Σ pnl / Σ stake`` (the stake-weighted mean of the
  per-position returns ``pnl_i / stake_i``) and ``se² = n/(n−1) · Σ (pnl_i − m·stake_i)² /
  (Σ stake)²`` (the ratio estimator's variance over the ``n`` closed positions). It ignores how
  much of the bankroll was used, and a result that rests on one or two lucky positions has a
  wide interval, so it scores low. It is floored at −100 (no worse than not trading), and a
  single closed position, which shows no spread, scores −100.

A bot with fewer than ``min_settled_trades`` closed positions (settled or force-closed) has not
shown anything and gets ``inactive_penalty_roi_pct`` (default −100) under either rule.

:func:`fitness_from_sums` is the single formula: :func:`compute_fitness` applies it to one
account, and the luck test (:mod:`~evoarena.evolution.luck`) to simulated ones, as arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

FitnessKind = Literal["roi", "stake_lcb"]
FITNESS_KINDS: tuple[FitnessKind, ...] = ("roi", "stake_lcb")

LCB_Z = 1.6448536269514722
"""One-sided 95 % normal quantile used by ``stake_lcb``."""

FloatArray = npt.NDArray[np.float64]


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


class ClosedLike(Protocol):
    """What fitness needs of a closed position (µ$): its stake and realized P&L."""

    @property
    def cost(self) -> int:
        """What the position cost, fees excluded."""
        ...

    @property
    def realized_pnl(self) -> int:
        """Payout minus cost minus fees."""
        ...


class PositionAccount(Protocol):
    """An account with its closed positions (:class:`~evoarena.engine.paper.BotAccount`)."""

    @property
    def initial_bankroll(self) -> int:
        """Starting bankroll (µ$)."""
        ...

    @property
    def closed_positions(self) -> Iterable[ClosedLike]:
        """Closed positions."""
        ...


def evaluate_fitness(
    account: AccountStats, *, min_settled_trades: int, inactive_penalty: float
) -> float:
    """``account.roi_pct``, or ``inactive_penalty`` if fewer than ``min_settled_trades`` settled."""
    if account.n_settled < min_settled_trades:
        return float(inactive_penalty)
    return float(account.roi_pct)


def fitness_from_sums(
    kind: FitnessKind,
    *,
    n_closed: npt.ArrayLike,
    pnl: npt.ArrayLike,
    stake: npt.ArrayLike,
    pnl_sq: npt.ArrayLike,
    pnl_stake: npt.ArrayLike,
    stake_sq: npt.ArrayLike,
    bankroll: float,
    min_settled_trades: int,
    inactive_penalty: float,
) -> FloatArray:
    """Fitness from per-bot sums over closed positions (µ$), elementwise over any shape.

    ``pnl`` = Σ pnl_i, ``stake`` = Σ stake_i, ``pnl_sq`` = Σ pnl_i², ``pnl_stake`` =
    Σ pnl_i·stake_i, ``stake_sq`` = Σ stake_i²; ``n_closed`` counts the positions.
    """
    if kind not in FITNESS_KINDS:
        msg = f"unknown fitness {kind!r}; expected one of {', '.join(FITNESS_KINDS)}"
        raise ValueError(msg)
    n = np.asarray(n_closed, dtype=np.float64)
    p = np.asarray(pnl, dtype=np.float64)
    if kind == "roi":
        value = p * 100 / bankroll
    else:
        s = np.asarray(stake, dtype=np.float64)
        safe = np.where(s > 0, s, 1.0)
        m = np.where(s > 0, p / safe, 0.0)
        resid = (
            np.asarray(pnl_sq, dtype=np.float64)
            - 2 * m * np.asarray(pnl_stake, dtype=np.float64)
            + m * m * np.asarray(stake_sq, dtype=np.float64)
        )
        factor = np.where(n > 1, n / np.maximum(n - 1, 1.0), 0.0)
        se = np.sqrt(np.maximum(resid, 0.0) * factor) / safe
        value = np.maximum(100 * (m - LCB_Z * se), -100.0)
        value = np.where(n < 2, -100.0, value)  # one position shows no spread: no bound
    out: FloatArray = np.where(n < min_settled_trades, float(inactive_penalty), value)
    return out


def compute_fitness(
    account: PositionAccount,
    kind: FitnessKind,
    *,
    min_settled_trades: int,
    inactive_penalty: float,
) -> float:
    """One account's fitness under ``kind`` (see the module docstring)."""
    closed = list(account.closed_positions)
    pnl = [float(c.realized_pnl) for c in closed]
    stake = [float(c.cost) for c in closed]
    value = fitness_from_sums(
        kind,
        n_closed=len(closed),
        pnl=sum(pnl),
        stake=sum(stake),
        pnl_sq=sum(x * x for x in pnl),
        pnl_stake=sum(x * y for x, y in zip(pnl, stake, strict=True)),
        stake_sq=sum(y * y for y in stake),
        bankroll=float(account.initial_bankroll),
        min_settled_trades=min_settled_trades,
        inactive_penalty=inactive_penalty,
    )
    return float(value)
