"""Generation statistics and the leaderboard, as plain JSON-ready dicts.

Floats are rounded to :data:`DECIMALS` places (and ``-0.0`` becomes ``0.0``) so that state files
written from the same results are byte-identical.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evoarena.engine.paper import BotAccount
from evoarena.evolution.fitness import AccountStats
from evoarena.evolution.genome import SIGNAL_TYPES, Genome
from evoarena.feeds.events import PRICE_ONE

DECIMALS = 6


@dataclass(frozen=True, slots=True)
class BotResult:
    """One bot's outcome for a generation."""

    genome_id: str
    signal_type: str
    fitness: float
    account: AccountStats


def _r(x: float) -> float:
    return round(float(x), DECIMALS) + 0.0


def _mean(xs: Sequence[float]) -> float:
    return statistics.fmean(xs) if xs else 0.0


RESULT_KEYS: tuple[str, ...] = (
    "genome_id",
    "gene_hash",
    "trades",
    "settled",
    "wins",
    "open",
    "force_closed",
    "stake_usd",
    "fees_usd",
    "pnl_usd",
    "roi_bankroll_pct",
    "roi_stake_pct",
    "fitness",
)
"""The keys of :func:`bot_result`, in order."""


def bot_result(account: BotAccount, fitness: float, genome: Genome) -> dict[str, Any]:
    """One bot's booked result for a window, as stored in generation files (``"results"``).

    * ``genome_id`` / ``gene_hash``: the genome's lineage id and its content hash;
    * ``trades``: positions opened; ``settled``: closed at their recorded outcome;
      ``wins``: closed with a positive P&L; ``open``: still open; ``force_closed``: closed at the
      deadline without an outcome (a total loss, or a sale at the last bid);
    * ``stake_usd``: what the positions cost, fees excluded; ``fees_usd``: fees paid (entry, and
      exit fees of last-bid closes); ``pnl_usd``: realized P&L, fees included;
    * ``roi_bankroll_pct``: ``pnl_usd`` as a percentage of the starting bankroll (the seeds'
      ROI); ``roi_stake_pct``: ``pnl_usd`` as a percentage of the closed positions' stake (0 with
      none closed) — what a dollar put into this rule's bets returned;
    * ``fitness``: the selection score the generation used (see :mod:`.fitness`).
    """
    a = account
    return {
        "genome_id": genome.id,
        "gene_hash": genome.gene_hash,
        "trades": a.total_trades,
        "settled": a.n_settled - a.n_forced,
        "wins": a.n_wins,
        "open": a.n_open,
        "force_closed": a.n_forced,
        "stake_usd": _r(a.total_cost / PRICE_ONE),
        "fees_usd": _r(a.fees_paid_usd),
        "pnl_usd": _r(a.realized_pnl_usd),
        "roi_bankroll_pct": _r(a.roi_pct),
        "roi_stake_pct": _r(a.roi_stake_pct),
        "fitness": _r(fitness),
    }


def compute_generation_stats(results: Sequence[BotResult]) -> dict[str, Any]:
    """Summary of a generation (an empty population gives zeros).

    Keys: ``population``, ``best_roi``, ``median_roi``, ``mean_roi``, ``best_fitness``,
    ``mean_fitness``, ``mean_trades``, ``active_bots`` (≥ 1 trade), ``total_trades``,
    ``settled_trades``, ``open_positions``, ``fees_paid`` and ``realized_pnl`` (USD, summed over
    bots), ``win_rate`` (mean over active bots, 0-1), ``signal_mix`` (count per signal type; every
    type in :data:`SIGNAL_TYPES` is present, unknown types are added).
    """
    rois = [r.account.roi_pct for r in results]
    fits = [r.fitness for r in results]
    trades = [r.account.total_trades for r in results]
    active = [r for r in results if r.account.total_trades >= 1]
    mix = dict.fromkeys(SIGNAL_TYPES, 0)
    for r in results:
        mix[r.signal_type] = mix.get(r.signal_type, 0) + 1
    return {
        "population": len(results),
        "best_roi": _r(max(rois, default=0.0)),
        "median_roi": _r(statistics.median(rois) if rois else 0.0),
        "mean_roi": _r(_mean(rois)),
        "best_fitness": _r(max(fits, default=0.0)),
        "mean_fitness": _r(_mean(fits)),
        "mean_trades": _r(_mean([float(t) for t in trades])),
        "active_bots": len(active),
        "total_trades": sum(trades),
        "settled_trades": sum(r.account.n_settled for r in results),
        "open_positions": sum(r.account.n_open for r in results),
        "fees_paid": _r(sum(r.account.fees_paid_usd for r in results)),
        "realized_pnl": _r(sum(r.account.realized_pnl_usd for r in results)),
        "win_rate": _r(_mean([r.account.win_rate for r in active])),
        "signal_mix": mix,
    }


def rank_results(results: Sequence[BotResult]) -> list[BotResult]:
    """Best fitness first; equal fitness ordered by genome id."""
    return sorted(results, key=lambda r: (-r.fitness, r.genome_id))


def leaderboard_rows(results: Sequence[BotResult], top_n: int) -> list[dict[str, Any]]:
    """The ``top_n`` best bots as rows for logs and tables.

    Row keys: ``rank`` (from 1), ``genome_id``, ``signal_type``, ``fitness``, ``roi_pct``,
    ``trades``, ``settled``, ``win_rate`` (0-1), ``pnl_usd``, ``fees_usd``.
    """
    rows = []
    for rank, r in enumerate(rank_results(results)[: max(0, top_n)], start=1):
        a = r.account
        rows.append(
            {
                "rank": rank,
                "genome_id": r.genome_id,
                "signal_type": r.signal_type,
                "fitness": _r(r.fitness),
                "roi_pct": _r(a.roi_pct),
                "trades": a.total_trades,
                "settled": a.n_settled,
                "win_rate": _r(a.win_rate),
                "pnl_usd": _r(a.realized_pnl_usd),
                "fees_usd": _r(a.fees_paid_usd),
            }
        )
    return rows
