"""One generation as a deterministic state machine: trading period → settlement wait → done.

The shell (replay or the live supervisor) applies market events to the shared book and calls
:meth:`GenerationRun.fire_due` with the current time; every scheduled action whose time has come
runs, in time order. Nothing here reads a clock, sleeps or does I/O; randomness comes from RNGs
seeded by (seed, generation, genome id), so the same inputs give the same trades.

Schedule, with ``start`` the generation's start and ``dt`` the tick interval:

* trading ticks at ``start + k·dt`` for ``k = 0 .. n-1`` (``n = duration / dt``); each tick settles
  markets that have a result, records price history, builds the shared market view and lets every
  bot trade; every ``progress_log_every_ticks`` a progress line, every ``checkpoint_every_ticks``
  a checkpoint request, every ``settlement_check_every_ticks`` a targeted settlement check request;
* the settlement wait from ``start + duration``: a poll every ``settlement_poll_secs`` settles what
  has a result and asks the shell to check held, closed markets; it ends as soon as no position
  is open (unless ``settlement_wait_ends_early`` is off: then at the deadline), or at the
  *deadline* ``start + duration + settlement_wait_secs`` by force-closing the rest: as total
  losses (``deadline_policy = "loss"``, the seeds' rule) or at the last fresh best bid
  (``"last_bid"``).

Honest settlement: a tick offers bots only markets that close by
``min(deadline − settlement_margin_secs, now + market_close_window_secs)``, so every position can
be expected to settle at its recorded outcome before the deadline (Kalshi determines results
some time after close). Only a market whose close is postponed after purchase can still miss it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog

from evoarena.engine.book import MarketBook
from evoarena.engine.paper import PaperExchange
from evoarena.engine.view import MarketView
from evoarena.evolution.bot import GeneticBot, needed_lookbacks, run_population_tick
from evoarena.evolution.genome import Genome
from evoarena.settings import Settings

log = structlog.get_logger(__name__)


class Phase(StrEnum):
    """Where a generation is in its lifecycle."""

    TRADING = "trading"
    SETTLING = "settling"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Request:
    """Something the core asks the shell to do (the core itself does no I/O)."""

    kind: str
    """``checkpoint`` or ``settlement_check``."""
    tickers: tuple[str, ...] = ()


@dataclass(slots=True)
class TickStats:
    """Counters a generation keeps for logs and heartbeats."""

    ticks: int = 0
    trades: int = 0
    tick_errors: int = 0
    settlement_polls: int = 0
    settled_positions: int = 0
    force_closed: int = 0
    by_tick_trades: list[int] = field(default_factory=list)


def bot_rng(seed: int, generation: int, genome_id: str) -> random.Random:
    """The RNG of one bot in one generation (string seeds hash deterministically)."""
    return random.Random(f"evoarena:{seed}:{generation}:bot:{genome_id}")


class GenerationRun:
    """A population trading through one generation against the shared book."""

    def __init__(
        self,
        settings: Settings,
        book: MarketBook,
        genomes: list[Genome],
        generation: int,
        start_ms: int,
    ) -> None:
        self.settings = settings
        self.book = book
        self.generation = generation
        self.start_ms = start_ms
        t = settings.trading
        self.tick_ms = t.tick_interval_secs * 1000
        self.total_ticks = max(1, t.generation_duration_secs // t.tick_interval_secs)
        self.end_ms = start_ms + t.generation_duration_secs * 1000
        self.deadline_ms = self.end_ms + t.settlement_wait_secs * 1000
        self.last_open_close_ms = self.deadline_ms - t.settlement_margin_secs * 1000
        """The latest close time a market may have for bots to open a position in it."""
        self.track_bids = t.deadline_policy == "last_bid"
        self.poll_ms = t.settlement_poll_secs * 1000
        self.categories = book.categories()
        bankroll = int(settings.evolution.initial_bankroll_usd * 1_000_000)
        self.exchange = PaperExchange(book, bankroll)
        seed = settings.evolution.seed
        self.bots = [GeneticBot(g, bot_rng(seed, generation, g.id)) for g in genomes]
        for bot in self.bots:
            self.exchange.open_account(bot.bot_id)
        self.lookbacks = needed_lookbacks(self.bots)
        self.phase = Phase.TRADING
        self.tick_count = 0
        self.next_poll_ms = self.end_ms
        self.finished_ms: int | None = None
        self.stats = TickStats()
        self.log = log.bind(generation=generation)

    # -- schedule -----------------------------------------------------------------------------

    def next_due_ms(self) -> int | None:
        """When the next scheduled action is due (``None`` once done)."""
        if self.phase is Phase.TRADING:
            if self.tick_count < self.total_ticks:
                return self.start_ms + self.tick_count * self.tick_ms
            return self.end_ms
        if self.phase is Phase.SETTLING:
            return min(self.next_poll_ms, self.deadline_ms)
        return None

    def fire_due(self, now_ms: int) -> list[Request]:
        """Run every action due at or before ``now_ms``; returns what the shell must do."""
        requests: list[Request] = []
        while (due := self.next_due_ms()) is not None and due <= now_ms:
            if self.phase is Phase.TRADING and self.tick_count < self.total_ticks:
                requests.extend(self.tick(due))
            elif self.phase is Phase.TRADING:
                self._enter_settling(due)
            else:
                requests.extend(self.settlement_poll(due))
        return requests

    # -- actions ------------------------------------------------------------------------------

    def settle_available(self, now_ms: int) -> int:
        """Settle every held position whose market has a result."""
        n = 0
        for ticker in self.book.drain_determined():
            n += self.exchange.settle(ticker, now_ms)
        self.stats.settled_positions += n
        return n

    def tick(self, now_ms: int) -> list[Request]:
        """One trading tick (a tick that raises is logged with context and skipped)."""
        requests: list[Request] = []
        self.tick_count += 1
        self.stats.ticks += 1
        try:
            self.settle_available(now_ms)
            self.book.record_tick()
            window_ms = self.settings.trading.market_close_window_secs * 1000
            view = MarketView.build(
                self.book,
                now_ms,
                self.categories,
                self.lookbacks,
                max_close_ms=min(self.last_open_close_ms, now_ms + window_ms),
            )
            trades = run_population_tick(self.bots, view, self.exchange, now_ms)
            self.stats.trades += trades
            if self.track_bids:
                self.exchange.record_bids(now_ms)
        except Exception:
            self.stats.tick_errors += 1
            self.log.exception("tick_error", tick=self.tick_count, now_ms=now_ms)
        t = self.settings.trading
        if self.tick_count % t.progress_log_every_ticks == 0:
            self.log_progress(now_ms)
        if self.tick_count % t.checkpoint_every_ticks == 0:
            requests.append(Request("checkpoint"))
        if self.tick_count % t.settlement_check_every_ticks == 0:
            due = self.closed_held_tickers(now_ms)
            if due:
                requests.append(Request("settlement_check", due))
        return requests

    def _enter_settling(self, now_ms: int) -> None:
        self.phase = Phase.SETTLING
        self.next_poll_ms = now_ms
        self.log.info(
            "trading_period_over",
            ticks=self.tick_count,
            trades=self.stats.trades,
            open_positions=self.open_positions(),
        )

    def settlement_poll(self, now_ms: int) -> list[Request]:
        """One poll of the settlement wait; may end the generation."""
        self.stats.settlement_polls += 1
        self.settle_available(now_ms)
        if self.track_bids:
            self.exchange.record_bids(now_ms)
        if self.open_positions() == 0 and (
            self.settings.trading.settlement_wait_ends_early or now_ms >= self.deadline_ms
        ):
            self._finish(now_ms, timed_out=False)
            return []
        if now_ms >= self.deadline_ms:
            closed = self.exchange.force_close_remaining(now_ms, at_last_bid=self.track_bids)
            self.stats.force_closed += closed
            self.log.warning(
                "settlement_timeout",
                force_closed=closed,
                policy=self.settings.trading.deadline_policy,
            )
            self._finish(now_ms, timed_out=True)
            return []
        self.next_poll_ms = now_ms + self.poll_ms
        due = self.closed_held_tickers(now_ms)
        return [Request("settlement_check", due)] if due else []

    def _finish(self, now_ms: int, *, timed_out: bool) -> None:
        self.phase = Phase.DONE
        self.finished_ms = now_ms
        self.log.info("generation_trading_done", timed_out=timed_out, ticks=self.tick_count)

    # -- queries ------------------------------------------------------------------------------

    def open_positions(self) -> int:
        """Open positions over all bots."""
        return sum(a.n_open for a in self.exchange.accounts.values())

    def closed_held_tickers(self, now_ms: int) -> tuple[str, ...]:
        """Held markets that may need asking about: closed without a known result.

        A held market the book does not know (after a restart, discovery only lists markets
        still open) or whose close time is unknown is included: only asking can tell.
        """
        out = []
        for ticker in sorted(self.exchange.held_tickers()):
            m = self.book.get(ticker)
            if m is None or (
                m.settlement_value is None and (m.close_ms is None or m.close_ms <= now_ms)
            ):
                out.append(ticker)
        return tuple(out)

    def log_progress(self, now_ms: int) -> None:
        """The seed's periodic progress line."""
        accounts = list(self.exchange.accounts.values())
        best = max((a.roi_pct for a in accounts), default=0.0)
        self.log.info(
            "progress",
            tick=self.tick_count,
            of=self.total_ticks,
            trades=self.stats.trades,
            open_positions=sum(a.n_open for a in accounts),
            settled=sum(a.n_settled for a in accounts),
            best_roi_pct=round(best, 3),
            markets=len(self.book.markets),
            stale_books=len(self.book.stale_tickers()),
        )

    # -- checkpoints ---------------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to resume this generation mid-way (plain JSON types)."""
        return {
            "phase": self.phase.value,
            "start_ms": self.start_ms,
            "next_poll_ms": self.next_poll_ms,
            "categories": list(self.categories),
            "bots": [
                {
                    "bot_id": b.bot_id,
                    "genome_id": b.genome.id,
                    "genome": b.genome.to_dict(),
                    "rng_state": _rng_state_to_json(b.rng.getstate()),
                    "account": self.exchange.accounts[b.bot_id].summary(),
                }
                for b in self.bots
            ],
            "exchange": self.exchange.to_dict(),
            "stats": {
                "ticks": self.stats.ticks,
                "trades": self.stats.trades,
                "tick_errors": self.stats.tick_errors,
            },
        }

    @classmethod
    def from_checkpoint(
        cls,
        settings: Settings,
        book: MarketBook,
        generation: int,
        tick_count: int,
        data: dict[str, Any],
    ) -> GenerationRun:
        """Rebuild a generation saved by :meth:`checkpoint` (raises ``ValueError`` if invalid)."""
        try:
            genomes = [Genome.from_dict(b["genome"]) for b in data["bots"]]
            run = cls(settings, book, genomes, generation, int(data["start_ms"]))
            run.exchange = PaperExchange.from_dict(data["exchange"], book)
            for bot, saved in zip(run.bots, data["bots"], strict=True):
                bot.rng.setstate(_rng_state_from_json(saved["rng_state"]))
            run.categories = [str(c) for c in data["categories"]]
            run.phase = Phase(data["phase"])
            run.tick_count = tick_count
            run.next_poll_ms = int(data["next_poll_ms"])
            run.stats.ticks = int(data["stats"]["ticks"])
            run.stats.trades = int(data["stats"]["trades"])
            run.stats.tick_errors = int(data["stats"].get("tick_errors", 0))
        except (KeyError, TypeError, ValueError) as e:
            msg = f"checkpoint does not describe a generation: {e!r}"
            raise ValueError(msg) from e
        return run


def _rng_state_to_json(state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_state_from_json(data: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss = data
    return (int(version), tuple(int(x) for x in internal), gauss)
