"""Benchmark one population tick: the shared market view plus every bot's decisions and fills.

Builds a seeded, realistic book (``--markets`` active markets with 1-8 level ladders on both
sides, 8 categories, fee parameters, reported and unreported volumes, ``--history`` ticks of price
history) and ``--bots`` random-genome bots with a $100 bankroll each, then times, in milliseconds
(median and 90th percentile over ``--repeats`` runs):

* ``view_build_ms`` — :meth:`MarketView.build` over the whole book with every bot's momentum
  lookback, plus the z-scores of every market (copying every market's price history). A tick
  no longer does all of that: it reads histories only for the markets and points its bots
  need, so this figure is an upper bound of the view's share of a tick; it is also sensitive to
  whether the allocator has just returned the previous view's large arrays to the system;
* ``fresh_tick_ms`` — :func:`run_population_tick` for a fresh population on one view: the busiest
  tick, where most bots are buying;
* ``tick_ms`` — the steady state as a generation runs it: after ``--warmup`` ticks, each timed
  tick is ``record_tick`` + view build + population tick on a book that moves between ticks
  (untimed: ~20 % of the markets get a new snapshot, two markets settle and are replaced by new
  ones, their positions are paid out). ``tick_bots_ms`` is the population-tick share of it,
  ``tick_record_cpu_ms`` the ``record_tick`` share (bringing the book's arrays up to date and
  appending the prices), ``tick_view_cpu_ms`` the view build's. As in
  :meth:`GenerationRun.tick`, a tick's view is dropped when the tick ends (a view still alive
  when the next tick records prices would first copy its markets' histories).

Usage::

    .venv/bin/python benchmarks/tick.py [--markets 500] [--bots 100] [--repeats 30] [--seed 0]
    .venv/bin/python benchmarks/tick.py --grid   # 100 x 500, 1000 x 500, 100 x 2000, 1000 x 2000

Prints one JSON object (``--grid``: a list, one per size): the sizes, the timings, fill counts and
the exact command. Timings are wall-clock (``time.perf_counter``) medians; the ``*_cpu_ms``
figures are the same intervals in process CPU time (``time.process_time``), steadier on a shared
machine.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from decimal import Decimal
from typing import Any

from evoarena.engine.book import MarketBook
from evoarena.engine.paper import PaperExchange
from evoarena.engine.view import MarketView
from evoarena.evolution.bot import GeneticBot, run_population_tick
from evoarena.evolution.genome import Genome
from evoarena.feeds.events import (
    COUNT_ONE,
    PRICE_ONE,
    BookSnapshot,
    EventInfo,
    Level,
    MarketDetermined,
    MarketInfo,
    MarketStatus,
    SeriesInfo,
    Side,
)

START_MS = 1_767_225_600_000 + 3_600_000  # 2026-01-01T01:00Z: far from a UTC day boundary
TICK_MS = 30_000
HOUR_MS = 3_600_000
CATEGORIES = (
    "Climate",
    "Crypto",
    "Economics",
    "Entertainment",
    "Financials",
    "Politics",
    "Sports",
    "World",
)
CENT = PRICE_ONE // 100
BANKROLL = 100 * PRICE_ONE
MOVE_SHARE = 0.2
SETTLE_PER_TICK = 2


def _ladder(rng: random.Random, top: int) -> tuple[Level, ...]:
    """1-8 bid levels from ``top`` down in whole cents, sizes 0.5-500 contracts."""
    levels = []
    price = top
    for _ in range(rng.randint(1, 8)):
        if price < CENT:
            break
        levels.append((price, rng.randint(50, 500 * COUNT_ONE)))
        price -= CENT * rng.randint(1, 3)
    return tuple(levels)


def _snapshot(rng: random.Random, ticker: str, mid_cents: int, ts_ms: int) -> BookSnapshot:
    """Bids around a YES mid (in cents): YES bids below it, NO bids below ``1 − mid``."""
    half = rng.randint(1, 3)
    yes_top = max(1, mid_cents - half) * CENT
    no_top = max(1, 100 - mid_cents - half) * CENT
    return BookSnapshot(ticker, _ladder(rng, yes_top), _ladder(rng, no_top), ts_ms)


class Market:
    """The benchmark's moving market: a book plus each market's YES mid in cents."""

    def __init__(self, n_markets: int, history_ticks: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.book = MarketBook(history_len=history_ticks)
        self.mids: dict[str, int] = {}
        self.created = 0
        t0 = START_MS - history_ticks * TICK_MS
        for s, cat in enumerate(CATEGORIES):
            self.book.apply(SeriesInfo(f"KXS{s}", cat, "quadratic", Decimal(1), t0))
        for _ in range(n_markets):
            self.add_market(t0)
        for k in range(history_ticks):
            self.move(t0 + k * TICK_MS, share=1.0)
            self.book.record_tick()

    def add_market(self, ts_ms: int) -> None:
        """A new active market with a book, closing 10 minutes to 30 hours after ``START_MS``."""
        i = self.created
        self.created += 1
        ticker = f"KXBENCH-{i:05d}"
        event = f"KXBENCH-EV{i // 4:05d}"
        rng = self.rng
        self.book.apply(EventInfo(event, f"KXS{(i // 4) % len(CATEGORIES)}", None, None, None, 0))
        reported = rng.random() < 0.8
        self.book.apply(
            MarketInfo(
                ticker=ticker,
                event_ticker=event,
                status=MarketStatus.ACTIVE,
                open_ms=ts_ms,
                close_ms=START_MS + rng.randint(600_000, 30 * HOUR_MS),
                title=f"Benchmark market {i}",
                result=None,
                settlement_value=None,
                volume_24h=rng.randint(0, 10_000) * COUNT_ONE if reported else None,
                open_interest=rng.randint(0, 5_000) * COUNT_ONE if reported else None,
                yes_bid=None,
                yes_ask=None,
                ts_ms=ts_ms,
            )
        )
        self.mids[ticker] = rng.randint(3, 97)
        self.book.apply(_snapshot(rng, ticker, self.mids[ticker], ts_ms))

    def move(self, ts_ms: int, share: float = MOVE_SHARE) -> None:
        """A fresh snapshot, the mid moved by at most a cent, for ``share`` of the markets."""
        rng = self.rng
        for ticker, mid in self.mids.items():
            if rng.random() < share:
                mid = min(97, max(3, mid + rng.choice((-1, 0, 0, 0, 1))))
                self.mids[ticker] = mid
                self.book.apply(_snapshot(rng, ticker, mid, ts_ms))

    def turn_over(self, exchange: PaperExchange, ts_ms: int) -> None:
        """Settle ``SETTLE_PER_TICK`` markets (held ones first) and list as many new ones."""
        held = sorted(exchange.held_tickers() & self.mids.keys())
        pool = held or sorted(self.mids)
        for ticker in self.rng.sample(pool, min(SETTLE_PER_TICK, len(pool))):
            side = Side.YES if self.rng.random() < self.mids[ticker] / 100 else Side.NO
            value = PRICE_ONE if side is Side.YES else 0
            self.book.apply(MarketDetermined(ticker, side, value, ts_ms))
            del self.mids[ticker]
            self.add_market(ts_ms)
        for ticker in self.book.drain_determined():
            exchange.settle(ticker, ts_ms)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _p90(xs: list[float]) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def run(
    markets: int = 500,
    bots: int = 100,
    repeats: int = 30,
    seed: int = 0,
    history: int = 120,
    warmup: int = 40,
) -> dict[str, Any]:
    """Build the book and population, time view builds and ticks; returns the JSON report."""
    mkt = Market(markets, history, seed)
    book = mkt.book
    categories = book.categories()
    grng = random.Random(seed + 1)
    genomes = [Genome.random(grng) for _ in range(bots)]

    def population() -> list[GeneticBot]:
        return [GeneticBot(g, random.Random(f"{seed}:{g.id}")) for g in genomes]

    # What GenerationRun passes: every bot's lookback, not only the momentum bots'.
    lookbacks = {b.params.momentum_lookback for b in population()}

    build_times = []
    view = MarketView.build(book, START_MS, categories, lookbacks)
    for _ in range(repeats):
        t = time.perf_counter()
        view = MarketView.build(book, START_MS, categories, lookbacks)
        _ = view.zscore  # lazily computed features count as part of the build
        build_times.append(time.perf_counter() - t)

    fresh_times = []
    fresh_fills = 0
    for _ in range(repeats):
        exchange = PaperExchange(book, BANKROLL)
        pop = population()
        t = time.perf_counter()
        fresh_fills = run_population_tick(pop, view, exchange, START_MS)
        fresh_times.append(time.perf_counter() - t)

    exchange = PaperExchange(book, BANKROLL)
    pop = population()
    now = START_MS
    del view
    tick_times: list[float] = []
    bot_times: list[float] = []
    cpu_times: list[float] = []
    cpu_bot_times: list[float] = []
    cpu_record_times: list[float] = []
    cpu_view_times: list[float] = []
    steady_fills = 0
    for k in range(warmup + repeats):
        now += TICK_MS
        mkt.move(now)
        mkt.turn_over(exchange, now)
        c0, t0 = time.process_time(), time.perf_counter()
        book.record_tick()
        cr = time.process_time()
        view = MarketView.build(book, now, categories, lookbacks)
        c1, t1 = time.process_time(), time.perf_counter()
        fills = run_population_tick(pop, view, exchange, now)
        c2, t2 = time.process_time(), time.perf_counter()
        del view
        if k >= warmup:
            tick_times.append(t2 - t0)
            bot_times.append(t2 - t1)
            cpu_times.append(c2 - c0)
            cpu_bot_times.append(c2 - c1)
            cpu_record_times.append(cr - c0)
            cpu_view_times.append(c1 - cr)
            steady_fills += fills

    accounts = list(exchange.accounts.values())
    view_ms = statistics.median(build_times)
    tick_ms = statistics.median(tick_times)
    return {
        "benchmark": "population_tick",
        "markets": markets,
        "bots": bots,
        "history_ticks": history,
        "momentum_lookbacks": len(lookbacks),
        "repeats": repeats,
        "warmup_ticks": warmup,
        "view_build_ms_median": _ms(view_ms),
        "view_build_ms_p90": _ms(_p90(build_times)),
        "fresh_tick_ms_median": _ms(statistics.median(fresh_times)),
        "fresh_tick_ms_p90": _ms(_p90(fresh_times)),
        "fresh_tick_fills": fresh_fills,
        "tick_ms_median": _ms(tick_ms),
        "tick_ms_p90": _ms(_p90(tick_times)),
        "tick_bots_ms_median": _ms(statistics.median(bot_times)),
        "tick_cpu_ms_median": _ms(statistics.median(cpu_times)),
        "tick_bots_cpu_ms_median": _ms(statistics.median(cpu_bot_times)),
        "tick_record_cpu_ms_median": _ms(statistics.median(cpu_record_times)),
        "tick_view_cpu_ms_median": _ms(statistics.median(cpu_view_times)),
        "steady_fills_per_tick": round(steady_fills / repeats, 2),
        "steady_open_positions": sum(a.n_open for a in accounts),
        "steady_settled_positions": sum(a.n_settled for a in accounts),
        "est_2880_ticks_s": round(2880 * tick_ms, 2),
        "python": sys.version.split()[0],
        "command": " ".join(["benchmarks/tick.py", *sys.argv[1:]]),
    }


def main() -> None:
    """Parse arguments, run, print the JSON report."""
    ap = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n", 1)[0],
        epilog="Prints one JSON object with the sizes, timings (ms) and fill counts.",
    )
    ap.add_argument("--markets", type=int, default=500, help="active markets (default 500)")
    ap.add_argument("--bots", type=int, default=100, help="bots in the population (default 100)")
    ap.add_argument("--repeats", type=int, default=30, help="timed runs per figure (default 30)")
    ap.add_argument("--seed", type=int, default=0, help="seed of book and genomes (default 0)")
    ap.add_argument("--history", type=int, default=120, help="history ticks (default 120)")
    ap.add_argument("--warmup", type=int, default=40, help="untimed steady ticks (default 40)")
    ap.add_argument(
        "--grid",
        action="store_true",
        help="run bots x markets = 100 x 500, 1000 x 500, 100 x 2000 and 1000 x 2000",
    )
    args = ap.parse_args()
    if args.grid:
        sizes = [(100, 500), (1000, 500), (100, 2000), (1000, 2000)]
        reports = [run(m, b, args.repeats, args.seed, args.history, args.warmup) for b, m in sizes]
        print(json.dumps(reports))
        return
    report = run(args.markets, args.bots, args.repeats, args.seed, args.history, args.warmup)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
