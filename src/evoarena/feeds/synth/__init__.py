"""A realistic, seeded synthetic Kalshi day, written as a recording (``evoarena synth``).

:func:`generate_day` writes a :mod:`~evoarena.feeds.recording` file (header ``source: "synth"``)
whose lines are Kalshi's current (2026) wire shapes — the REST bodies of ``GET /markets``,
``/events`` and ``/series`` and the WebSocket frames of ``orderbook_delta``, ``ticker``, ``trade``
and ``market_lifecycle_v2`` — as the live recorder would have received them. It goes through the
real decoder with no malformed frame, no unknown type and no ``seq`` gap.

**What the day contains.** ``markets`` binary markets grouped into events (strike ladders, or one
market per game) of series in six categories (Crypto, Financials, Sports, Climate and Weather,
Economics, Politics). Most events close inside the window (closes spread over it, hourly crypto
and FX events close every hour); some close after it. Markets open before the window or during
it, on the hour. The simulated recorder:

* polls REST every hour (at the start and then on each hour of the window): every open market
  (``GET /trade-api/v2/markets?status=open``, pages of 200 with cursors), the events it has not
  seen (``GET /events?tickers=...``) and, once, the series list;
* subscribes, like the live client, ``orderbook_delta``, ``ticker`` and ``trade`` in chunks of 100
  markets (one ``sid`` each) and ``market_lifecycle_v2`` once; later polls add newly opened
  markets (``update_subscription`` → ``ok`` and their ``orderbook_snapshot``) and drop closed ones.

A market's book has several levels per side (4–10), spreads of 1–4 ticks (1–4¢; 0.1¢ ticks at the
tails of ``tapered_deci_cent`` markets) and is updated every 40–160 s on average (per market; five
times as often during news bursts, twice as often in its last 15 minutes), each update one to a
few ``orderbook_delta`` frames — a delta every ~40 s for the typical market — plus a ``ticker``
when the top of the book moves; trades (every few minutes) take the best level (delta + ``trade``
+ ``ticker``). A 500-market, 24-hour day is about 0.7–0.9 million frames. Lifecycle: ``created``
(with ``event_lifecycle``) for markets created during the window, ``close_date_updated`` for a
few postponed events, ``deactivated``/``activated`` for a few short trading pauses,
``deactivated`` at close followed by deltas that cancel every resting order, ``determined``
(``result``, ``settlement_value``) 1–10 minutes after close and ``settled`` after the series'
settlement timer. (Kalshi documents no WebSocket message for a close by time; the ``deactivated``
at close is this simulation's way of telling the book that trading has stopped.)

The window is ``[start, start + hours)``. A market that closes inside it closes at least
``CLOSE_MARGIN_MS`` before its end, so its ``determined`` is in the file; the others close at or
after the end (windows under ~25 minutes therefore have no closes).

**Price model (calibrated).** Each event has a latent Gaussian score ``X``, a Brownian motion run
on the event's *information clock* ``I(t)``, which rises from 0 at open to 1 at determination:
linearly over the market's life, plus a ramp before close (games, releases), plus a few news
bursts of 1–5 minutes, plus, for some series, a share revealed only after close. A market with
latent threshold ``c`` resolves YES iff ``X(1) > c``; its fair probability at ``t`` is
``p = Φ((X(t) − c) / √(1 − I(t)))``, a martingale that ends at the outcome. Equivalently the
outcome is drawn from the latent probability at close (``Bernoulli(p_close)``), so quotes are
calibrated at every instant: no free edge. Markets of one event share ``X``, so a ladder stays
coherent. The mid of the book is the quoted probability ``q`` rounded to the tick grid.

**Longshot bias.** With ``longshot_bias = B`` (0 ≤ B < 0.5) every quote is distorted toward 50¢
relative to the truth: ``q = σ((1 − 2B) · logit p)`` where ``σ`` is the logistic function
(see :func:`longshot_price`); outcomes are unchanged. Longshots are overpriced and favourites
underpriced: with B = 0.1 a true 5% trades at 8.7¢ and a true 80% at 75.2¢; with B = 0.2 at 14.6¢
and 69.7¢. B = 0 leaves ``q = p``.

**Determinism.** No wall clock: times derive from ``start_ms``, randomness from two
``random.Random`` streams seeded from ``seed`` (the "world" — events, schedules, latent skeletons
and outcomes — and the "microstructure" — books, trades, bridge samples), so the outcomes of a
seed do not depend on ``longshot_bias``. Same arguments ⇒ byte-identical file (``RecordingWriter``
writes gzip headers without a time stamp or file name).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from evoarena.errors import UserError
from evoarena.feeds.recording import RecordingWriter
from evoarena.feeds.synth.common import (
    CLOSE_MARGIN_MS,
    DEFAULT_START_MS,
    DISCOVERY_EVERY_MS,
    EVENTS_PER_REQUEST,
    HOUR_MS,
    MARKETS_PAGE_LIMIT,
    MAX_HOURS,
    MAX_LONGSHOT_BIAS,
    MAX_MARKETS,
    MINUTE_MS,
    ONE,
    REST_PREFIX,
    SECOND_MS,
    TICKERS_PER_SUBSCRIPTION,
    WORLD_QUIET_MS,
    _rfc3339,
    longshot_price,
)
from evoarena.feeds.synth.day import _Day

log = structlog.get_logger(__name__)


# -- the summary --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SynthSummary:
    """What :func:`generate_day` wrote."""

    markets: int
    events: int
    series: int
    categories: int
    lines: int
    """Lines in the file, header included."""
    ws_frames: int
    rest_responses: int
    determined_yes: int
    determined_no: int
    first_ms: int
    last_ms: int
    bytes: int
    """Size of the file on disk (compressed size for ``.gz``)."""

    def describe(self) -> str:
        """One human line."""
        hours = (self.last_ms - self.first_ms) / HOUR_MS
        return (
            f"{self.markets:,} markets in {self.events:,} events, {self.series} series, "
            f"{self.categories} categories; {self.ws_frames:,} WS frames + "
            f"{self.rest_responses:,} REST responses over {hours:.1f} h from "
            f"{_rfc3339(self.first_ms)}; determined {self.determined_yes:,} yes / "
            f"{self.determined_no:,} no; {self.lines:,} lines, {self.bytes / 1e6:.1f} MB"
        )


# -- public helpers -------------------------------------------------------------------------------


def parse_start_ms(text: str) -> int:
    """Epoch milliseconds of a timezone-aware ISO-8601 instant; :class:`UserError` otherwise."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = f"--start {text!r} is not an ISO-8601 instant (e.g. 2026-03-02T00:00:00Z)"
        raise UserError(msg) from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        msg = f"--start {text!r} has no timezone; add one (e.g. 2026-03-02T00:00:00Z)"
        raise UserError(msg)
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def validate_arguments(*, markets: int, hours: float, seed: int, longshot_bias: float) -> None:
    """Raise :class:`UserError` naming the first invalid argument."""
    if isinstance(markets, bool) or not isinstance(markets, int) or not 1 <= markets <= MAX_MARKETS:
        msg = f"--markets must be a whole number from 1 to {MAX_MARKETS:,}, got {markets!r}"
        raise UserError(msg)
    if not isinstance(hours, int | float) or not math.isfinite(hours) or not 0 < hours <= MAX_HOURS:
        msg = f"--hours must be more than 0 and at most {MAX_HOURS}, got {hours!r}"
        raise UserError(msg)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UserError(f"--seed must be a whole number, got {seed!r}")
    if (
        not isinstance(longshot_bias, int | float)
        or not math.isfinite(longshot_bias)
        or not 0.0 <= longshot_bias < MAX_LONGSHOT_BIAS
    ):
        msg = (
            f"--longshot-bias must be at least 0 and below {MAX_LONGSHOT_BIAS}, "
            f"got {longshot_bias!r}"
        )
        raise UserError(msg)


def generate_day(
    path: Path,
    *,
    markets: int,
    hours: float,
    seed: int,
    start_ms: int = DEFAULT_START_MS,
    longshot_bias: float = 0.0,
    on_progress: Callable[[float], None] | None = None,
) -> SynthSummary:
    """Write a synthetic day (``markets`` markets, ``hours`` from ``start_ms``) to ``path``.

    See the module docstring for the content and the price model. ``.gz`` → gzip. Same arguments
    ⇒ byte-identical file. Raises :class:`UserError` for invalid arguments or an unwritable path.
    ``on_progress`` is called with the fraction of the window written, once per simulated hour.
    """
    validate_arguments(markets=markets, hours=hours, seed=seed, longshot_bias=longshot_bias)
    if isinstance(start_ms, bool) or not isinstance(start_ms, int):
        raise UserError(f"start must be integer milliseconds, got {start_ms!r}")
    if path.is_dir():
        raise UserError(f"--out {path} is a directory")
    if not path.parent.is_dir():
        raise UserError(f"--out {path}: directory {path.parent} does not exist")
    started = time.perf_counter()
    day = _Day(markets, hours, seed, start_ms, float(longshot_bias))
    extra = {
        "generator": "evoarena synth 1",
        "markets": markets,
        "hours": hours,
        "seed": seed,
        "start": _rfc3339(start_ms),
        "longshot_bias": longshot_bias,
    }
    try:
        with RecordingWriter(path, "synth", start_ms, **extra) as writer:
            day.run(writer, on_progress)
        size = path.stat().st_size
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from e
    out = day.out
    summary = SynthSummary(
        markets=len(day.markets),
        events=len(day.events),
        series=len({ev.spec.ticker for ev in day.events}),
        categories=len({ev.spec.profile.category for ev in day.events}),
        lines=out.ws_frames + out.rest_responses + 1,
        ws_frames=out.ws_frames,
        rest_responses=out.rest_responses,
        determined_yes=day.determined_yes,
        determined_no=day.determined_no,
        first_ms=out.first_ms if out.first_ms is not None else start_ms,
        last_ms=out.last_ms,
        bytes=size,
    )
    log.debug(
        "synth_day_written",
        path=str(path),
        wall_secs=round(time.perf_counter() - started, 3),
        **{k: v for k, v in extra.items() if k != "generator"},
    )
    return summary


__all__ = [
    "CLOSE_MARGIN_MS",
    "DEFAULT_START_MS",
    "DISCOVERY_EVERY_MS",
    "EVENTS_PER_REQUEST",
    "HOUR_MS",
    "MARKETS_PAGE_LIMIT",
    "MAX_HOURS",
    "MAX_LONGSHOT_BIAS",
    "MAX_MARKETS",
    "MINUTE_MS",
    "ONE",
    "REST_PREFIX",
    "SECOND_MS",
    "TICKERS_PER_SUBSCRIPTION",
    "WORLD_QUIET_MS",
    "SynthSummary",
    "generate_day",
    "longshot_price",
    "parse_start_ms",
    "validate_arguments",
]
