"""The luck test: how likely is a generation's best result if no bot has any skill?

With a hundred bots, the best of a window looks brilliant even where no edge exists. This is a
best-of-N test in the spirit of White's Reality Check and Hansen's SPA test (simulate the
*maximum* over all strategies tried under a null of no skill; studentize so that the most
volatile strategies do not dominate the maximum), with a null built from the prices paid:

* **Null ("fair price").** A contract bought at price ``p`` wins with probability ``p``, so its
  expected payout equals its cost: without skill a position earns nothing on average and the
  fees are a sure loss. Buying at the ask already pays the spread, so under the null a bot wins
  *more* often than the true probability (the mid) implies: the test is conservative.
* **Simulation.** Every closed position keeps its market, side, size, cost and fee; only the
  outcome is redrawn. One uniform ``U_e`` per *event* (markets of one event — a ladder of
  strikes, the two teams of a game — move together) and simulation is shared by every position
  in it: YES bought at ``p`` wins iff ``U_e < p``, NO bought at ``q`` wins iff ``U_e ≥ 1 − q``.
  Each position keeps its fair win probability; bots in the same markets stay correlated, and
  same-side bets in one event are coupled as tightly as possible, which can only widen the
  null's spread (conservative). Positions closed without an outcome (force-closed at the
  deadline) and scalar settlements keep their booked result.
* **Statistic.** Each bot's realized P&L (fees included) divided by its standard deviation under
  the null, ``z_b = pnl_b / sqrt(Σ_i (contracts_i · $1)² · p_i (1 − p_i))``, for bots with at
  least ``min_settled_trades`` closed positions. The raw ROI maximum would be ruled by whoever
  bought the longest shots (a lottery ticket's win is huge); the z-score asks how far a result
  lies beyond what its own bets make likely. ``luck_p_value = (1 + #{simulations whose max_b
  z*_b ≥ max_b z_b}) / (1 + simulations)``: the chance that luck alone gives *some* bot a result
  this good, the best-of-N correction included. The verdict is ``"edge"`` below ``luck_alpha``,
  else ``"no evidence of edge"``. ``luck_top_fitness_p_value`` asks the same of the bot the
  generation ranked first by fitness (its z against the same null maximum).

**Out of sample (walk-forward).** Picking the best of N costs power: a bot needs very many
bets before its result beats the best of a hundred lucky ones. Last generation's elites, though,
were chosen on the previous window, so their result in this one needs no best-of-N correction:
``luck_oos_p_value`` is the chance, under the same simulated null, that their pooled z-score
(their P&L summed, over the no-skill standard deviation of all their bets) is at least the one
observed. Windows are independent, so these p-values combine over the generations of a run
(Stouffer: ``Z = Σ Φ⁻¹(1 − p_i) / √k``) into ``luck_oos_combined_p_value``, with its verdict
``luck_oos_verdict``: evidence that accumulates as the run goes on.

A single window at ``alpha = 0.05`` still says "edge" about once in twenty no-skill
generations at most (less, as the null is conservative): trust edge that repeats, and the
out-of-sample record. Deterministic: the generator is seeded from ``(seed, generation)``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from evoarena.engine.paper import BotAccount
from evoarena.feeds.events import PRICE_ONE, Side

EDGE = "edge"
NO_EDGE = "no evidence of edge"
_CHUNK = 256
"""Simulations evaluated at once (bounds memory: chunk × positions floats)."""


@dataclass(frozen=True, slots=True)
class LuckResult:
    """The outcome of one luck test (z-scores: P&L over its no-skill standard deviation)."""

    p_value: float
    verdict: str
    top_fitness_p_value: float
    observed_best_z: float
    null_max_z_median: float
    null_max_z_p95: float
    simulations: int
    positions_redrawn: int
    oos_p_value: float | None = None
    """Carried elites' pooled result in this window (``None`` without elites that traded)."""

    def to_stats(self) -> dict[str, Any]:
        """The generation-stats fields (``luck_p_value``, ``luck_verdict``, ...)."""

        def r(x: float) -> float | None:
            return round(x, 6) + 0.0 if math.isfinite(x) else None

        return {
            "luck_p_value": r(self.p_value),
            "luck_verdict": self.verdict,
            "luck_top_fitness_p_value": r(self.top_fitness_p_value),
            "luck_best_z": r(self.observed_best_z),
            "luck_null_max_z_p95": r(self.null_max_z_p95),
            "luck_simulations": self.simulations,
            "luck_oos_p_value": None if self.oos_p_value is None else r(self.oos_p_value),
        }


def luck_rng(seed: int, generation: int) -> np.random.Generator:
    """The luck test's generator for one generation (independent of every other stream)."""
    digest = hashlib.sha256(f"evoarena:{seed}:{generation}:luck".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


@dataclass(frozen=True, slots=True)
class _Book:
    """All bots' closed positions as flat arrays (µ$ as float64)."""

    bot: npt.NDArray[np.int64]
    group: npt.NDArray[np.int64]
    yes: npt.NDArray[np.bool_]
    price: npt.NDArray[np.float64]
    """Price paid per contract, 0-1 (the null's win probability)."""
    payout: npt.NDArray[np.float64]
    """What the position pays if it wins (µ$)."""
    cost: npt.NDArray[np.float64]
    """Cost plus fees (µ$)."""
    fixed_pnl: npt.NDArray[np.float64]
    redraw: npt.NDArray[np.bool_]
    n_groups: int


def event_group(ticker: str) -> str:
    """A market's event from its ticker (Kalshi: the event ticker is all but the last part)."""
    return ticker.rsplit("-", 1)[0] if ticker.count("-") >= 2 else ticker


def _collect(accounts: Sequence[BotAccount], group_of: Callable[[str], str]) -> _Book:
    cols: dict[str, list[Any]] = {k: [] for k in ("bot", "group", "yes", "price", "pay", "cost")}
    fixed: list[float] = []
    redraw: list[bool] = []
    index: dict[str, int] = {}
    for b, acct in enumerate(accounts):
        for c in acct.closed_positions:
            cols["bot"].append(b)
            cols["group"].append(index.setdefault(group_of(c.ticker), len(index)))
            cols["yes"].append(c.side is Side.YES)
            cols["price"].append(c.cost / (c.contracts * PRICE_ONE))
            cols["pay"].append(float(c.contracts * PRICE_ONE))
            cols["cost"].append(float(c.cost + c.fee + c.exit_fee))
            fixed.append(float(c.realized_pnl))
            redraw.append(not c.forced and c.settlement_value in (0, PRICE_ONE))
    return _Book(
        bot=np.asarray(cols["bot"], dtype=np.int64),
        group=np.asarray(cols["group"], dtype=np.int64),
        yes=np.asarray(cols["yes"], dtype=np.bool_),
        price=np.asarray(cols["price"], dtype=np.float64),
        payout=np.asarray(cols["pay"], dtype=np.float64),
        cost=np.asarray(cols["cost"], dtype=np.float64),
        fixed_pnl=np.asarray(fixed, dtype=np.float64),
        redraw=np.asarray(redraw, dtype=np.bool_),
        n_groups=len(index),
    )


def _z_scores(
    pnl: npt.NDArray[np.float64], scale: npt.NDArray[np.float64], active: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """``pnl / scale`` for active bots with a positive scale, −inf for the others."""
    ok = active & (scale > 0)
    out: npt.NDArray[np.float64] = np.where(ok, pnl / np.where(ok, scale, 1.0), -np.inf)
    return out


def luck_test(
    accounts: Sequence[BotAccount],
    fitness: Sequence[float],
    *,
    min_settled_trades: int,
    simulations: int,
    alpha: float,
    rng: np.random.Generator,
    group_of: Callable[[str], str] = event_group,
    elites: Sequence[int] = (),
) -> LuckResult:
    """Test a generation's results (``fitness``: one per account, as the generation scored them).

    ``group_of`` maps a ticker to its event (markets whose outcomes share one draw); ``elites``
    are the indices of the accounts of last generation's elites (for ``oos_p_value``).
    """
    if len(accounts) != len(fitness) or not accounts:
        msg = f"luck test needs one fitness per account, got {len(fitness)} for {len(accounts)}"
        raise ValueError(msg)
    book = _collect(accounts, group_of)
    n_bots = len(accounts)
    n_closed = np.bincount(book.bot, minlength=n_bots)
    active = n_closed >= max(1, min_settled_trades)
    var = np.where(book.redraw, book.payout**2 * book.price * (1 - book.price), 0.0)
    scale = np.sqrt(np.bincount(book.bot, weights=var, minlength=n_bots).astype(np.float64))
    observed_pnl = np.bincount(book.bot, weights=book.fixed_pnl, minlength=n_bots).astype(
        np.float64
    )
    z = _z_scores(observed_pnl, scale, active)
    observed = float(z.max())
    top = int(np.argmax(np.asarray(fitness)))  # first on ties, as the ranking breaks them
    top_z = float(z[top])
    elite_idx = np.asarray(sorted(set(elites)), dtype=np.int64)
    elite_scale = float(np.sqrt(np.sum(scale[elite_idx] ** 2))) if elite_idx.size else 0.0
    elite_z = float(observed_pnl[elite_idx].sum()) / elite_scale if elite_scale > 0 else None
    elite_null: list[npt.NDArray[np.float64]] = []
    threshold = np.where(book.yes, book.price, 1.0 - book.price)
    win_pnl = book.payout - book.cost
    lose_pnl = -book.cost
    maxima: list[npt.NDArray[np.float64]] = []
    # positions are collected bot by bot: each bot's are one contiguous run
    owners, starts = np.unique(book.bot, return_index=True)
    done = 0
    while done < simulations:
        k = min(_CHUNK, simulations - done)
        draw = rng.random((k, max(1, book.n_groups)))[:, book.group]
        wins = np.where(book.yes, draw < threshold, draw >= threshold)
        pnl = np.where(book.redraw, np.where(wins, win_pnl, lose_pnl), book.fixed_pnl)
        per_bot = np.zeros((k, n_bots), dtype=np.float64)
        if owners.size:
            per_bot[:, owners] = np.add.reduceat(pnl, starts, axis=1)
        maxima.append(_z_scores(per_bot, scale, active).max(axis=1))
        if elite_z is not None:
            elite_null.append(per_bot[:, elite_idx].sum(axis=1) / elite_scale)
        done += k
    positions = int(book.redraw.sum())
    oos_p = None
    if elite_z is not None and simulations > 0:
        oos_p = _p_value(np.concatenate(elite_null), elite_z)
    if simulations == 0 or not np.isfinite(observed):
        # nobody traded enough to be judged: nothing to tell from luck
        return LuckResult(
            1.0, NO_EDGE, 1.0, observed, math.nan, math.nan, simulations, positions, oos_p
        )
    null_max = np.concatenate(maxima)

    def p_of(x: float) -> float:
        return _p_value(null_max, x) if np.isfinite(x) else 1.0

    p = p_of(observed)
    return LuckResult(
        p_value=p,
        verdict=EDGE if p < alpha else NO_EDGE,
        top_fitness_p_value=p_of(top_z),
        observed_best_z=observed,
        null_max_z_median=float(np.median(null_max)),
        null_max_z_p95=float(np.quantile(null_max, 0.95)),
        simulations=simulations,
        positions_redrawn=positions,
        oos_p_value=oos_p,
    )


def _p_value(null: npt.NDArray[np.float64], x: float) -> float:
    """``(1 + #{null ≥ x}) / (1 + len(null))``, with a relative tolerance of 1e-9 for ties."""
    tol = 1e-9 * max(1.0, abs(x))
    return (1 + int(np.count_nonzero(null >= x - tol))) / (1 + len(null))


def p_to_z(p: float) -> float:
    """``Φ⁻¹(1 − p)``: a one-sided p-value as a standard normal score."""
    return NormalDist().inv_cdf(min(max(1 - p, 1e-12), 1 - 1e-12))


def combined_p(z_sum: float, windows: int) -> float:
    """Stouffer's combination ``1 − Φ(z_sum / √windows)`` of ``windows`` p-values (1.0 if none)."""
    return 1 - NormalDist().cdf(z_sum / math.sqrt(windows)) if windows else 1.0


def stouffer(p_values: Sequence[float]) -> float:
    """Combine independent one-sided p-values: ``1 − Φ(Σ Φ⁻¹(1 − p_i) / √k)`` (1.0 for none)."""
    return combined_p(sum(p_to_z(p) for p in p_values), len(p_values))
