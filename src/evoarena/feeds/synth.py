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

import base64
import heapq
import math
import random
import time
import uuid
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from evoarena.errors import UserError
from evoarena.feeds.events import PRICE_ONE
from evoarena.feeds.recording import RecordingWriter

log = structlog.get_logger(__name__)

DEFAULT_START_MS = 1_772_409_600_000
"""2026-03-02T00:00:00Z: where a synthetic day starts unless told otherwise."""

MAX_LONGSHOT_BIAS = 0.5
"""``longshot_bias`` must lie in ``[0, MAX_LONGSHOT_BIAS)``."""
MAX_MARKETS = 100_000
MAX_HOURS = 24 * 31

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DISCOVERY_EVERY_MS = HOUR_MS
"""The simulated recorder's REST poll and subscription refresh period."""
MARKETS_PAGE_LIMIT = 200
EVENTS_PER_REQUEST = 100
TICKERS_PER_SUBSCRIPTION = 100
CLOSE_MARGIN_MS = 12 * MINUTE_MS
"""In-window closes end this long before the window, so their ``determined`` is in the file."""
WORLD_QUIET_MS = MINUTE_MS
"""No lifecycle event is scheduled in the window's first minute (the recorder is connecting)."""

REST_PREFIX = "/trade-api/v2"
ONE = PRICE_ONE

_FLUSH_EVERY = 25_000
_SKELETON_POINTS = 16
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTH_NAMES = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip


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


def longshot_price(p: float, bias: float) -> float:
    """The quoted probability for a true probability ``p``: ``σ((1 − 2·bias) · logit p)``.

    ``bias = 0`` returns ``p``; larger values pull quotes toward 0.5 (favourite–longshot bias).
    """
    if bias == 0.0:
        return p
    p = min(max(p, 1e-12), 1.0 - 1e-12)
    x = (1.0 - 2.0 * bias) * math.log(p / (1.0 - p))
    return 1.0 / (1.0 + math.exp(-x))


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
) -> SynthSummary:
    """Write a synthetic day (``markets`` markets, ``hours`` from ``start_ms``) to ``path``.

    See the module docstring for the content and the price model. ``.gz`` → gzip. Same arguments
    ⇒ byte-identical file. Raises :class:`UserError` for invalid arguments or an unwritable path.
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
            day.run(writer)
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


# -- formatting -----------------------------------------------------------------------------------


def _rfc3339(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def _rfc3339_micros(ms: int, micros: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{micros:06d}Z"


def _dollars(micros: int) -> str:
    return f"{micros // ONE}.{(micros % ONE) // 100:04d}"


_PRICE_STR: dict[int, str] = {p: _dollars(p) for p in range(0, ONE + 1, 1000)}


_COUNT_STR: dict[int, str] = {}


def _count(centi: int) -> str:
    """A fixed-point count string (``-1234`` → ``"-12.34"``), memoized for the hot path."""
    text = _COUNT_STR.get(centi)
    if text is None:
        magnitude = -centi if centi < 0 else centi
        text = f"{'-' if centi < 0 else ''}{magnitude // 100}.{magnitude % 100:02d}"
        if len(_COUNT_STR) < 1 << 18:
            _COUNT_STR[centi] = text
    return text


def _date_code(ms: int) -> str:
    t = time.gmtime(ms // 1000)
    return f"{t.tm_year % 100:02d}{_MONTHS[t.tm_mon - 1]}{t.tm_mday:02d}"


def _human_date(ms: int) -> str:
    t = time.gmtime(ms // 1000)
    return f"{_MONTH_NAMES[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year}"


def _hour_code(ms: int) -> str:
    return f"{time.gmtime(ms // 1000).tm_hour:02d}"


def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


# -- tick structures ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ticks:
    name: str
    grid: tuple[int, ...]
    """Every valid price strictly between 0 and 1, ascending (micro-dollars); symmetric."""
    ranges: tuple[dict[str, str], ...]


_LINEAR = _Ticks(
    "linear_cent",
    tuple(range(10_000, ONE, 10_000)),
    ({"end": "1.0000", "start": "0.0000", "step": "0.0100"},),
)
_TAPERED = _Ticks(
    "tapered_deci_cent",
    tuple(range(1_000, 100_000, 1_000))
    + tuple(range(100_000, 900_001, 10_000))
    + tuple(range(901_000, ONE, 1_000)),
    (
        {"end": "0.1000", "start": "0.0000", "step": "0.0010"},
        {"end": "0.9000", "start": "0.1000", "step": "0.0100"},
        {"end": "1.0000", "start": "0.9000", "step": "0.0010"},
    ),
)


# -- the catalogue ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Profile:
    """How the events of one category behave."""

    category: str
    weight: float
    markets: tuple[int, int]
    life_hours: tuple[float, float]
    in_window: float
    """Probability that an event closes inside the window."""
    final_minutes: float
    final_weight: float
    """Share of the information arriving linearly over the last ``final_minutes`` before close."""
    resolve_weight: float
    """Share of the information revealed only between close and determination."""
    news_per_hour: float
    tapered: float
    """Probability that a market uses ``tapered_deci_cent`` ticks."""
    fractional: float
    settle_secs: tuple[int, ...]
    frequency: str
    fee_type: str


@dataclass(frozen=True, slots=True)
class _Series:
    ticker: str
    title: str
    subject: str
    profile: _Profile
    level: float
    step: float
    decimals: int
    unit: str
    """Format of a strike for people, e.g. ``"${:,.0f}"``."""
    hourly: bool = False
    fee_multiplier: float = 1
    tags: tuple[str, ...] = ()
    league: str = ""
    """Non-empty for one-market game events (the team list key)."""
    source: tuple[str, str] = ("Kalshi", "https://kalshi.com")


_CRYPTO = _Profile("Crypto", 0.09, (4, 8), (1, 1), 0.97, 15, 0.25, 0.0, 1.0, 0.5, 0.6,
                   (300, 600), "hourly", "quadratic")  # fmt: skip
_FIN = _Profile("Financials", 0.10, (3, 6), (20, 30), 0.85, 120, 0.45, 0.0, 0.6, 0.3, 0.3,
                (600, 1800), "daily", "quadratic")  # fmt: skip
_SPORTS = _Profile("Sports", 0.43, (1, 1), (24, 120), 0.8, 150, 0.75, 0.02, 0.2, 0.0, 0.2,
                   (900, 1800), "daily", "quadratic_with_maker_fees")  # fmt: skip
_WEATHER = _Profile("Climate and Weather", 0.10, (3, 6), (24, 36), 0.85, 360, 0.5, 0.15, 0.3,
                    0.2, 0.1, (1800, 3600), "daily", "quadratic")  # fmt: skip
_ECON = _Profile("Economics", 0.09, (3, 6), (48, 400), 0.6, 60, 0.1, 0.5, 0.2, 0.3, 0.3,
                 (600, 1800), "weekly", "quadratic")  # fmt: skip
_POLITICS = _Profile("Politics", 0.19, (2, 5), (24, 600), 0.5, 720, 0.3, 0.3, 0.4, 0.2, 0.2,
                     (1800, 3600), "weekly", "quadratic")  # fmt: skip

_BLS = ("Bureau of Labor Statistics", "https://www.bls.gov")
_NWS = ("National Weather Service", "https://www.weather.gov")
_CATALOGUE: tuple[_Series, ...] = (
    _Series("KXBTCD", "Bitcoin price", "the Bitcoin price", _CRYPTO, 97_000, 250, 0, "${:,.0f}",
            hourly=True, tags=("BTC",), source=("CF Benchmarks", "https://www.cfbenchmarks.com")),
    _Series("KXETHD", "Ethereum price", "the Ethereum price", _CRYPTO, 3_400, 20, 0, "${:,.0f}",
            hourly=True, tags=("ETH",), source=("CF Benchmarks", "https://www.cfbenchmarks.com")),
    _Series("KXSOLD", "Solana price", "the Solana price", _CRYPTO, 190, 2, 0, "${:,.0f}",
            hourly=True, tags=("SOL",), source=("CF Benchmarks", "https://www.cfbenchmarks.com")),
    _Series("KXINXD", "S&P 500 daily close", "the S&P 500 close", _FIN, 6_100, 25, 0, "{:,.0f}",
            fee_multiplier=0.5, tags=("Indices",)),
    _Series("KXNASDAQ100D", "Nasdaq-100 daily close", "the Nasdaq-100 close", _FIN, 21_500, 100,
            0, "{:,.0f}", fee_multiplier=0.5, tags=("Indices",)),
    _Series("KXWTID", "WTI crude oil price", "the WTI front-month price", _FIN, 71.5, 0.5, 2,
            "${:,.2f}", tags=("Oil",)),
    _Series("KXUSDJPYH", "USD/JPY hourly", "the USD/JPY rate", _FIN, 150.2, 0.1, 1, "{:,.1f}",
            hourly=True, tags=("FX",)),
    _Series("KXNBAGAME", "NBA game", "", _SPORTS, 0, 0, 0, "", league="NBA", tags=("Basketball",)),
    _Series("KXNHLGAME", "NHL game", "", _SPORTS, 0, 0, 0, "", league="NHL", tags=("Hockey",)),
    _Series("KXNCAAMBGAME", "College basketball game", "", _SPORTS, 0, 0, 0, "", league="NCAAB",
            tags=("Basketball",)),
    _Series("KXEPLGAME", "Premier League game", "", _SPORTS, 0, 0, 0, "", league="EPL",
            tags=("Soccer",)),
    _Series("KXHIGHNY", "Highest temperature in NYC", "the highest temperature in Central Park",
            _WEATHER, 44, 2, 0, "{:.0f}°", tags=("Temperature",), source=_NWS),
    _Series("KXHIGHCHI", "Highest temperature in Chicago", "the highest temperature at Midway",
            _WEATHER, 38, 2, 0, "{:.0f}°", tags=("Temperature",), source=_NWS),
    _Series("KXHIGHMIA", "Highest temperature in Miami", "the highest temperature in Miami",
            _WEATHER, 79, 2, 0, "{:.0f}°", tags=("Temperature",), source=_NWS),
    _Series("KXHIGHLAX", "Highest temperature in Los Angeles", "the highest temperature at LAX",
            _WEATHER, 66, 2, 0, "{:.0f}°", tags=("Temperature",), source=_NWS),
    _Series("KXHIGHAUS", "Highest temperature in Austin", "the highest temperature in Austin",
            _WEATHER, 70, 2, 0, "{:.0f}°", tags=("Temperature",), source=_NWS),
    _Series("KXHIGHDEN", "Highest temperature in Denver", "the highest temperature in Denver",
            _WEATHER, 50, 2, 0, "{:.0f}°", tags=("Temperature",), source=_NWS),
    _Series("KXJOBLESSCLAIMS", "Initial jobless claims", "initial jobless claims", _ECON,
            225_000, 5_000, 0, "{:,.0f}", tags=("Jobs",), source=_BLS),
    _Series("KXGASPRICE", "US gas price", "the AAA national average gas price", _ECON, 3.10,
            0.02, 2, "${:.2f}", tags=("Energy",), source=("AAA", "https://gasprices.aaa.com")),
    _Series("KXCPIYOY", "CPI year over year", "CPI inflation year over year", _ECON, 2.8, 0.1, 1,
            "{:.1f}%", tags=("Inflation",), source=_BLS),
    _Series("KXMORTGAGERATE", "30-year mortgage rate", "the 30-year fixed mortgage rate", _ECON,
            6.6, 0.05, 2, "{:.2f}%", tags=("Housing",), source=("Freddie Mac", "https://www.freddiemac.com")),
    _Series("KXAPPROVAL", "Presidential approval", "the presidential approval rating", _POLITICS,
            44, 0.5, 1, "{:.1f}%", tags=("Polls",), source=("RealClearPolling", "https://www.realclearpolling.com")),
    _Series("KXTRUTHSOCIAL", "Truth Social posts", "the number of Truth Social posts", _POLITICS,
            20, 5, 0, "{:.0f}", tags=("Social media",)),
    _Series("KXEOCOUNT", "Executive orders", "the number of executive orders signed", _POLITICS,
            6, 1, 0, "{:.0f}", tags=("White House",), source=("Federal Register", "https://www.federalregister.gov")),
)  # fmt: skip

_TEAMS: dict[str, tuple[tuple[str, str], ...]] = {
    "NBA": (("BOS", "Boston"), ("LAL", "Los Angeles L"), ("GSW", "Golden State"),
            ("MIL", "Milwaukee"), ("DEN", "Denver"), ("PHX", "Phoenix"), ("MIA", "Miami"),
            ("NYK", "New York"), ("DAL", "Dallas"), ("OKC", "Oklahoma City"),
            ("CLE", "Cleveland"), ("MIN", "Minnesota")),
    "NHL": (("BOS", "Boston"), ("TOR", "Toronto"), ("NYR", "New York R"), ("EDM", "Edmonton"),
            ("COL", "Colorado"), ("FLA", "Florida"), ("DAL", "Dallas"), ("VGK", "Vegas"),
            ("CAR", "Carolina"), ("WPG", "Winnipeg")),
    "NCAAB": (("DUKE", "Duke"), ("UNC", "North Carolina"), ("KU", "Kansas"),
              ("UK", "Kentucky"), ("GONZ", "Gonzaga"), ("HOU", "Houston"), ("PUR", "Purdue"),
              ("UCONN", "UConn"), ("ARIZ", "Arizona"), ("BAY", "Baylor"), ("TENN", "Tennessee"),
              ("AUB", "Auburn")),
    "EPL": (("ARS", "Arsenal"), ("LIV", "Liverpool"), ("MCI", "Man City"), ("CHE", "Chelsea"),
            ("TOT", "Tottenham"), ("MUN", "Man United"), ("NEW", "Newcastle"),
            ("AVL", "Aston Villa"), ("BHA", "Brighton"), ("WHU", "West Ham")),
}  # fmt: skip


def _series_json(s: _Series) -> dict[str, Any]:
    p = s.profile
    return {
        "additional_prohibitions": [],
        "categories": [p.category],
        "category": p.category,
        "contract_terms_url": f"https://kalshi.com/docs/terms/{s.ticker.lower()}.pdf",
        "contract_url": f"https://kalshi-public-docs.s3.amazonaws.com/contracts/{s.ticker}.pdf",
        "fee_multiplier": s.fee_multiplier,
        "fee_type": p.fee_type,
        "frequency": "hourly" if s.hourly else p.frequency,
        "settlement_sources": [{"name": s.source[0], "url": s.source[1]}],
        "tags": list(s.tags),
        "ticker": s.ticker,
        "title": s.title,
    }


# -- world objects --------------------------------------------------------------------------------


class _Sub:
    """One simulated subscription (one sid)."""

    __slots__ = ("channel", "key", "seq", "server", "sid", "want")

    def __init__(self, key: int, channel: str, want: list[str] | None) -> None:
        self.key = key
        self.channel = channel
        self.want = want
        self.server: list[str] = []
        self.sid = 0
        self.seq = 0


class _Event:
    """An event: its schedule, information clock, latent path and outcomes."""

    __slots__ = (
        "announce_ms",
        "bursts",
        "close_ms",
        "created_ms",
        "determined_ms",
        "grid_u",
        "grid_x",
        "k",
        "knot_i",
        "knot_t",
        "markets",
        "open_ms",
        "orig_close_ms",
        "settled_ms",
        "spec",
        "strike_ms",
        "sub_title",
        "ticker",
        "title",
        "u_cur",
        "x_cur",
    )

    def __init__(self, spec: _Series, ticker: str) -> None:
        self.spec = spec
        self.ticker = ticker
        self.title = ""
        self.sub_title = ""
        self.markets: list[_Market] = []
        self.open_ms = 0
        self.close_ms = 0
        self.orig_close_ms = 0
        self.announce_ms: int | None = None
        self.created_ms: int | None = None
        self.determined_ms = 0
        self.settled_ms = 0
        self.strike_ms = 0
        self.knot_t: list[int] = []
        self.knot_i: list[float] = []
        self.bursts: list[tuple[int, int]] = []
        self.grid_u: list[float] = []
        self.grid_x: list[float] = []
        self.k = 0
        self.u_cur = 0.0
        self.x_cur = 0.0

    def info(self, t: int) -> float:
        """The information clock ``I(t)`` in [0, 1]."""
        times = self.knot_t
        i = bisect_right(times, t)
        if i == 0:
            return 0.0
        if i >= len(times):
            return 1.0
        t_a, t_b = times[i - 1], times[i]
        v_a = self.knot_i[i - 1]
        return v_a + (self.knot_i[i] - v_a) * (t - t_a) / (t_b - t_a)

    def close_known_at(self, t: int) -> int:
        """The close time Kalshi shows at ``t`` (the old one until a postponement is announced)."""
        if self.announce_ms is not None and t < self.announce_ms:
            return self.orig_close_ms
        return self.close_ms


class _Market:
    """A market: static description, book ladders and trading statistics."""

    __slots__ = (
        "book_rate",
        "can_close_early",
        "created_time",
        "depth",
        "epoch",
        "event",
        "fractional",
        "grid",
        "last_price",
        "last_size",
        "liq",
        "live",
        "market_id",
        "no",
        "notional",
        "ob_sub",
        "oi",
        "outcome",
        "pause",
        "paused",
        "prev",
        "rules",
        "settle_secs",
        "spread",
        "static",
        "strike",
        "threshold",
        "ticker",
        "ticks",
        "tk_sub",
        "tr_sub",
        "trade_rate",
        "volume",
        "volume_24h",
        "yes",
        "yes_sub_title",
    )

    def __init__(self, event: _Event, ticker: str) -> None:
        self.event = event
        self.ticker = ticker
        self.market_id = ""
        self.threshold = 0.0
        self.outcome = False
        self.strike: float | None = None
        self.yes_sub_title = ""
        self.rules = ""
        self.ticks = _LINEAR
        self.grid = _LINEAR.grid
        self.fractional = False
        self.can_close_early = False
        self.spread = 1
        self.depth = 5
        self.liq = 100.0
        self.book_rate = 1 / 60
        self.trade_rate = 1 / 600
        self.settle_secs = 600
        self.created_time = ""
        self.pause: tuple[int, int] | None = None
        self.static: dict[str, Any] = {}
        # runtime
        self.live = False
        self.paused = False
        self.epoch = 0
        self.yes: dict[int, int] = {}
        """YES bids: grid index → centi-contracts."""
        self.no: dict[int, int] = {}
        """NO bids keyed by the YES-ask grid index they make (NO price = 1 − grid[j])."""
        self.ob_sub: _Sub | None = None
        self.tk_sub: _Sub | None = None
        self.tr_sub: _Sub | None = None
        self.volume = 0
        self.volume_24h = 0
        self.oi = 0
        self.notional = 0
        """Traded notional in micro-dollars × centi-contracts / 100 (i.e. micro-dollars)."""
        self.last_price = 0
        self.last_size = 0
        self.prev = (0, 0, 0)


def _lot(m: _Market, centi: int) -> int:
    """``centi`` as a tradable size: whole contracts unless the market trades fractions (≥ 0.01)."""
    if m.fractional:
        return max(1, centi)
    return max(100, centi - centi % 100)


# -- output ---------------------------------------------------------------------------------------


class _Out:
    """Writes items in non-decreasing receive time and counts them."""

    __slots__ = ("first_ms", "last_ms", "rest_responses", "writer", "ws_frames")

    def __init__(self, writer: RecordingWriter | None) -> None:
        self.writer = writer
        self.ws_frames = 0
        self.rest_responses = 0
        self.first_ms: int | None = None
        self.last_ms = 0

    def ws(self, t: int, message: dict[str, Any]) -> int:
        t = max(t, self.last_ms)
        if self.first_ms is None:
            self.first_ms = t
        self.last_ms = t
        self.ws_frames += 1
        writer = self._writer()
        writer.write_ws(t, message)
        if self.ws_frames % _FLUSH_EVERY == 0:
            writer.flush()
        return t

    def rest(self, t: int, path: str, params: dict[str, Any], body: dict[str, Any]) -> int:
        t = max(t, self.last_ms)
        if self.first_ms is None:
            self.first_ms = t
        self.last_ms = t
        self.rest_responses += 1
        self._writer().write_rest(t, "GET", REST_PREFIX + path, params, 200, body)
        return t

    def _writer(self) -> RecordingWriter:
        if self.writer is None:
            raise RuntimeError("synthetic day output before run()")
        return self.writer


# -- the simulation -------------------------------------------------------------------------------

_DISCOVERY, _CREATE, _ANNOUNCE, _PAUSE, _RESUME, _CLOSE, _DETERMINE, _SETTLE = range(8)
_BOOK, _TRADE, _REFILL, _REST, _RECONCILE = range(8, 13)
_PER_MARKET_CHANNELS = ("orderbook_delta", "ticker", "trade")


@dataclass(slots=True)
class _Heap:
    items: list[tuple[int, int, int, Any, int]] = field(default_factory=list)
    n: int = 0

    def push(self, t: int, kind: int, obj: Any, epoch: int = 0) -> None:
        self.n += 1
        heapq.heappush(self.items, (t, self.n, kind, obj, epoch))


class _Day:
    """Builds the world from the seed, then runs it as a discrete-event simulation."""

    def __init__(self, n_markets: int, hours: float, seed: int, start_ms: int, bias: float) -> None:
        self.t0 = start_ms
        self.t1 = start_ms + max(1, round(hours * HOUR_MS))
        self.bias = bias
        self.world = random.Random(f"evoarena-synth/{seed}/world")
        self.micro = random.Random(f"evoarena-synth/{seed}/micro")
        self.events: list[_Event] = []
        self.markets: list[_Market] = []
        self.discoveries = list(range(self.t0, self.t1, DISCOVERY_EVERY_MS))
        self._used: set[str] = set()
        self.out = _Out(None)
        self.heap = _Heap()
        self.subs: list[_Sub] = []
        self.lifecycle: _Sub | None = None
        self.next_sid = 1
        self.next_cmd = 1
        self.next_key = 1
        self.announced_events: set[str] = set()
        self.determined_yes = 0
        self.determined_no = 0
        while len(self.markets) < n_markets:
            self._add_event(n_markets - len(self.markets))
        self.by_ticker = sorted(self.markets, key=lambda m: m.ticker)
        self.index = {m.ticker: m for m in self.markets}

    # -- building the world (world rng only) --------------------------------------------------

    def _pick_series(self) -> _Series:
        rng = self.world
        profiles = (_CRYPTO, _FIN, _SPORTS, _WEATHER, _ECON, _POLITICS)
        profile = rng.choices(profiles, weights=[p.weight for p in profiles])[0]
        return rng.choice([s for s in _CATALOGUE if s.profile is profile])

    def _add_event(self, n_left: int) -> None:
        rng = self.world
        spec = self._pick_series()
        for attempt in range(40):
            if attempt % 4 == 3:
                spec = self._pick_series()
            close_ms, open_ms = self._schedule(spec)
            ticker, game = self._event_ticker(spec, close_ms)
            if ticker not in self._used:
                break
        else:
            ticker = f"{ticker}-{len(self.events)}"
        self._used.add(ticker)
        ev = _Event(spec, ticker)
        ev.open_ms, ev.close_ms, ev.orig_close_ms = open_ms, close_ms, close_ms
        self._lifecycle_schedule(ev)
        ev.strike_ms = ev.orig_close_ms
        n = 1 if spec.league else min(n_left, rng.randint(*spec.profile.markets))
        self._describe_event(ev, game)
        self._build_markets(ev, n, game)
        self._info_clock(ev)
        self._skeleton(ev)
        self.events.append(ev)

    def _schedule(self, spec: _Series) -> tuple[int, int]:
        """(close, open) of a new event."""
        rng, t0, t1 = self.world, self.t0, self.t1
        window = t1 - t0
        lo = t0 + min(10 * MINUTE_MS, window // 6)
        hi = t1 - CLOSE_MARGIN_MS
        inside = hi > lo and rng.random() < spec.profile.in_window
        if spec.hourly:
            slots = [t for t in range(t0 + HOUR_MS, hi + 1, HOUR_MS) if t >= lo]
            # Outside the window: the first hour mark at or after its end.
            close = rng.choice(slots) if inside and slots else t0 + -(-window // HOUR_MS) * HOUR_MS
            return close, close - HOUR_MS
        life = round(rng.uniform(*spec.profile.life_hours) * HOUR_MS)
        if inside:
            close = lo + round(rng.random() * (hi - lo))
        else:
            close = t1 + MINUTE_MS + round(rng.uniform(0.05, 1.0) * life)
        close -= close % (5 * MINUTE_MS if spec.league else MINUTE_MS)
        close = max(close, lo) if inside else max(close, t1 + MINUTE_MS)
        open_ms = close - life
        if open_ms > t0:
            # Markets open on the hour (relative to the window), where the recorder polls.
            last_poll = self.discoveries[-1]
            open_ms = min(t0 + (open_ms - t0) // HOUR_MS * HOUR_MS, last_poll)
        else:
            open_ms -= open_ms % MINUTE_MS
        return close, open_ms

    def _event_ticker(self, spec: _Series, close_ms: int) -> tuple[str, tuple[int, int] | None]:
        code = _date_code(close_ms)
        if spec.hourly:
            return f"{spec.ticker}-{code}{_hour_code(close_ms)}", None
        if spec.league:
            teams = _TEAMS[spec.league]
            a, h = self.world.sample(range(len(teams)), 2)
            return f"{spec.ticker}-{code}{teams[a][0]}{teams[h][0]}", (a, h)
        daily = f"{spec.ticker}-{code}"
        if daily not in self._used:
            return daily, None
        # A second event of the series that day is told apart by its close time (…H1530).
        t = time.gmtime(close_ms // 1000)
        return f"{daily}H{t.tm_hour:02d}{t.tm_min:02d}", None

    def _lifecycle_schedule(self, ev: _Event) -> None:
        """Postponement, creation, determination and settlement times."""
        rng, t0, t1 = self.world, self.t0, self.t1
        inside = ev.close_ms <= t1 - CLOSE_MARGIN_MS
        first_seen = max(ev.open_ms, t0 + WORLD_QUIET_MS)
        if inside and not ev.spec.hourly and rng.random() < 0.05:
            lo, hi = first_seen + 5 * MINUTE_MS, ev.close_ms - 5 * MINUTE_MS
            if hi > lo:
                ev.announce_ms = rng.randint(lo, hi)
                new = ev.close_ms + rng.randint(20, 120) * MINUTE_MS
                if new > t1 - CLOSE_MARGIN_MS:
                    new = max(new, t1 + 10 * MINUTE_MS)
                ev.close_ms = new
        if ev.open_ms > t0:
            created = ev.open_ms - rng.randint(5 * MINUTE_MS, 4 * HOUR_MS)
            if created >= t0 + WORLD_QUIET_MS:
                ev.created_ms = created
        ev.determined_ms = ev.close_ms + rng.randint(MINUTE_MS, 10 * MINUTE_MS)
        ev.settled_ms = ev.determined_ms + 1000 * rng.choice(ev.spec.profile.settle_secs)

    def _describe_event(self, ev: _Event, game: tuple[int, int] | None) -> None:
        spec = ev.spec
        when = _human_date(ev.orig_close_ms)
        if game is not None:
            teams = _TEAMS[spec.league]
            ev.title = f"{teams[game[0]][1]} at {teams[game[1]][1]} Winner?"
            ev.sub_title = f"{teams[game[0]][0]} at {teams[game[1]][0]} ({when})"
        elif spec.hourly:
            hour = _hour_code(ev.orig_close_ms)
            ev.title = f"{spec.title} on {when} at {hour}:00 UTC?"
            ev.sub_title = f"{when} {hour}:00 UTC"
        else:
            ev.title = f"{spec.title} on {when}?"
            ev.sub_title = f"On {when}"

    def _build_markets(self, ev: _Event, n: int, game: tuple[int, int] | None) -> None:
        rng, spec = self.world, ev.spec
        if game is not None:
            home = _TEAMS[spec.league][game[1]]
            m = self._new_market(ev, f"{ev.ticker}-{home[0]}")
            m.threshold = rng.gauss(0.0, 0.8)
            m.yes_sub_title = home[1]
            m.rules = f"If {home[1]} wins the {ev.sub_title} game, the market resolves to Yes."
            return
        center = round(spec.level * math.exp(rng.gauss(0.0, 0.01)) / spec.step) * spec.step
        offset = rng.gauss(0.0, 0.5)
        spacing = rng.uniform(0.45, 0.9)
        for j in range(n):
            strike = round(center + spec.step * (j - (n - 1) // 2), spec.decimals)
            text = f"{strike:.{spec.decimals}f}"
            m = self._new_market(ev, f"{ev.ticker}-T{text}")
            m.strike = strike
            m.threshold = offset + spacing * (j - (n - 1) / 2)
            shown = spec.unit.format(strike)
            m.yes_sub_title = f"Above {shown}"
            m.rules = (
                f"If {spec.subject} is above {shown} on {_human_date(ev.orig_close_ms)}, "
                "then the market resolves to Yes."
            )

    def _new_market(self, ev: _Event, ticker: str) -> _Market:
        rng, prof = self.world, ev.spec.profile
        m = _Market(ev, ticker)
        m.market_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        m.ticks = _TAPERED if rng.random() < prof.tapered else _LINEAR
        m.grid = m.ticks.grid
        m.fractional = rng.random() < prof.fractional
        m.can_close_early = rng.random() < 0.3
        m.spread = rng.choices((1, 2, 3, 4), weights=(0.35, 0.35, 0.2, 0.1))[0]
        m.depth = rng.randint(4, 10)
        m.liq = math.exp(rng.uniform(math.log(15), math.log(600)))
        m.book_rate = 1.0 / math.exp(rng.uniform(math.log(40), math.log(160)))
        m.trade_rate = 1.0 / math.exp(rng.uniform(math.log(120), math.log(1800)))
        m.settle_secs = rng.choice(prof.settle_secs)
        created = min(ev.created_ms or ev.open_ms - rng.randint(MINUTE_MS, 6 * HOUR_MS), ev.open_ms)
        m.created_time = _rfc3339_micros(created, rng.randrange(1_000_000))
        m.pause = self._pause_window(ev)
        ev.markets.append(m)
        self.markets.append(m)
        return m

    def _pause_window(self, ev: _Event) -> tuple[int, int] | None:
        """A short trading pause for about 1.5% of markets, away from the recorder's polls."""
        rng = self.world
        if rng.random() >= 0.015:
            return None
        lo = max(ev.open_ms, self.t0 + WORLD_QUIET_MS) + 10 * MINUTE_MS
        hi = min(ev.close_ms - 15 * MINUTE_MS, self.t1 - 5 * MINUTE_MS)
        if hi <= lo:
            return None
        start = rng.randint(lo, hi)
        end = start + rng.randint(3 * MINUTE_MS, 15 * MINUTE_MS)
        if end >= ev.close_ms - 5 * MINUTE_MS or any(
            start - 30 * SECOND_MS <= d <= end + 30 * SECOND_MS for d in self.discoveries
        ):
            return None
        return start, end

    def _info_clock(self, ev: _Event) -> None:
        """Knots of ``I(t)``: linear life + pre-close ramp + news bursts + post-close share."""
        rng, prof = self.world, ev.spec.profile
        o, c, r = ev.open_ms, ev.close_ms, ev.determined_ms
        ramp = min(round(prof.final_minutes * MINUTE_MS), c - o)
        span = max(o, self.t0 - HOUR_MS)
        n_news = min(8, _poisson(rng, prof.news_per_hour * (c - span) / HOUR_MS))
        news_total = min(0.35, 0.07 * n_news)
        parts: list[tuple[int, int, float]] = []
        raw = [rng.random() + 0.2 for _ in range(n_news)]
        for w in raw:
            d = rng.randint(MINUTE_MS, 5 * MINUTE_MS)
            s = rng.randint(span, max(span, c - d))
            parts.append((s, s + d, news_total * w / sum(raw)))
        ev.bursts = sorted((s, e) for s, e, _ in parts)
        lin = max(0.05, 1.0 - prof.final_weight - prof.resolve_weight - news_total)
        parts += [(o, c, lin), (c - ramp, c, prof.final_weight), (c, r, prof.resolve_weight)]
        total = sum(w for _, _, w in parts)
        knots = sorted({t for s, e, _ in parts for t in (s, e)})
        values = []
        for t in knots:
            v = sum(w * min(1.0, max(0.0, (t - s) / (e - s))) for s, e, w in parts if e > s)
            values.append(v / total)
        values[-1] = 1.0
        ev.knot_t, ev.knot_i = knots, values

    def _skeleton(self, ev: _Event) -> None:
        """The latent path at a few information times from the window's start; the outcomes."""
        rng = self.world
        u0 = ev.info(self.t0)
        x = rng.gauss(0.0, math.sqrt(u0)) if u0 > 0 else 0.0
        ev.u_cur, ev.x_cur = u0, x
        us, xs = [], []
        prev = u0
        for k in range(1, _SKELETON_POINTS + 1):
            u = u0 + (1.0 - u0) * k / _SKELETON_POINTS
            x += rng.gauss(0.0, math.sqrt(max(0.0, u - prev)))
            us.append(u)
            xs.append(x)
            prev = u
        us[-1] = 1.0
        ev.grid_u, ev.grid_x = us, xs
        for m in ev.markets:
            m.outcome = x > m.threshold

    # -- the latent price (micro rng) ---------------------------------------------------------

    def _fair(self, m: _Market, t: int) -> float:
        """The fair probability of YES at ``t`` (advances the event's latent path)."""
        ev = m.event
        u = ev.info(t)
        if u > ev.u_cur:
            gu, gx, k = ev.grid_u, ev.grid_x, ev.k
            while k < len(gu) and gu[k] <= u:
                ev.u_cur, ev.x_cur = gu[k], gx[k]
                k += 1
            ev.k = k
            if k < len(gu) and u > ev.u_cur:
                u_a, x_a, u_b, x_b = ev.u_cur, ev.x_cur, gu[k], gx[k]
                frac = (u - u_a) / (u_b - u_a)
                sd = math.sqrt((u - u_a) * (u_b - u) / (u_b - u_a))
                ev.u_cur, ev.x_cur = u, x_a + frac * (x_b - x_a) + sd * self.micro.gauss(0.0, 1.0)
        rest = 1.0 - ev.u_cur
        if rest <= 1e-12:
            return 1.0 if ev.x_cur > m.threshold else 0.0
        return _phi((ev.x_cur - m.threshold) / math.sqrt(rest))

    def _target(self, m: _Market, t: int, spread: int) -> tuple[int | None, int | None]:
        """(best YES bid index, best YES ask index) for the current quote; None = empty side."""
        q = longshot_price(self._fair(m, t), self.bias) * ONE
        grid = m.grid
        top = len(grid) - 1
        c = bisect_right(grid, q)
        if c == 0:
            pos = q / grid[0] - 1.0
        elif c > top:
            pos = top + (q - grid[top]) / (ONE - grid[top])
        else:
            pos = c - 1 + (q - grid[c - 1]) / (grid[c] - grid[c - 1])
        bid = min(math.floor(pos - spread / 2 + 0.5), top)
        ask = max(bid + spread, 0)
        return (bid if bid >= 0 else None), (ask if ask <= top else None)

    # -- running ------------------------------------------------------------------------------

    def run(self, writer: RecordingWriter) -> None:
        """Simulate the window and write every item."""
        self.out = _Out(writer)
        heap = self.heap
        for d in self.discoveries:
            heap.push(d, _DISCOVERY, d)
        for ev in self.events:
            self._schedule_event(ev)
        handlers: dict[int, Callable[[int, Any, int], None]] = {
            _DISCOVERY: self._on_discovery,
            _CREATE: self._on_create,
            _ANNOUNCE: self._on_announce,
            _PAUSE: self._on_pause,
            _RESUME: self._on_resume,
            _CLOSE: self._on_close,
            _DETERMINE: self._on_determine,
            _SETTLE: self._on_settle,
            _BOOK: self._on_book,
            _TRADE: self._on_trade,
            _REFILL: self._on_refill,
            _REST: self._on_rest,
            _RECONCILE: self._on_reconcile,
        }
        items, t1 = heap.items, self.t1
        while items:
            t, _, kind, obj, epoch = heapq.heappop(items)
            if t >= t1:
                break
            handlers[kind](t, obj, epoch)

    def _schedule_event(self, ev: _Event) -> None:
        push, t1 = self.heap.push, self.t1
        for t, kind in (
            (ev.created_ms, _CREATE),
            (ev.announce_ms, _ANNOUNCE),
            (ev.close_ms, _CLOSE),
        ):
            if t is not None and self.t0 + WORLD_QUIET_MS <= t < t1:
                push(t, kind, ev)
        for i, m in enumerate(ev.markets):
            # Markets of an event are determined, then settled, a moment apart.
            for t, kind in (
                (ev.determined_ms + 700 * i, _DETERMINE),
                (ev.settled_ms + 500 * i, _SETTLE),
            ):
                if self.t0 + WORLD_QUIET_MS <= t < t1:
                    push(t, kind, m)
            if m.pause is not None:
                push(m.pause[0], _PAUSE, m)
                push(m.pause[1], _RESUME, m)

    # -- lifecycle ----------------------------------------------------------------------------

    def _lifecycle_frame(
        self, t: int, msg: dict[str, Any], mtype: str = "market_lifecycle_v2"
    ) -> None:
        sub = self.lifecycle
        if sub is None:  # only before the recorder's first subscription; nothing is scheduled there
            return
        sub.seq += 1
        if mtype == "market_lifecycle_v2":
            frame = {
                "type": mtype,
                "sending_ts_ms": t - 9,
                "sid": sub.sid,
                "seq": sub.seq,
                "msg": msg,
            }
        else:
            frame = {"type": mtype, "sid": sub.sid, "seq": sub.seq, "msg": msg}
        self.out.ws(t, frame)

    def _on_create(self, t: int, ev: _Event, _: int) -> None:
        spec = ev.spec
        self._lifecycle_frame(
            t,
            {
                "event_ticker": ev.ticker,
                "exchange_index": 0,
                "title": ev.title,
                "subtitle": ev.sub_title,
                "collateral_return_type": "",
                "series_ticker": spec.ticker,
                "strike_date": ev.strike_ms // 1000,
            },
            "event_lifecycle",
        )
        for i, m in enumerate(ev.markets):
            meta: dict[str, Any] = {
                "name": m.ticker,
                "title": ev.title,
                "yes_sub_title": m.yes_sub_title,
                "no_sub_title": m.yes_sub_title,
                "rules_primary": m.rules,
                "rules_secondary": "",
                "can_close_early": m.can_close_early,
                "event_ticker": ev.ticker,
                "expected_expiration_ts": (ev.orig_close_ms + HOUR_MS) // 1000,
            }
            if m.strike is not None:
                meta["strike_type"] = "greater"
                meta["floor_strike"] = m.strike
            self._lifecycle_frame(
                t + 2 * (i + 1),
                {
                    "market_ticker": m.ticker,
                    "exchange_index": 0,
                    "open_ts": ev.open_ms // 1000,
                    "close_ts": ev.orig_close_ms // 1000,
                    "additional_metadata": meta,
                    "event_type": "created",
                    "price_level_structure": m.ticks.name,
                    "price_ranges": list(m.ticks.ranges),
                },
            )

    def _on_announce(self, t: int, ev: _Event, _: int) -> None:
        for i, m in enumerate(ev.markets):
            msg = {
                "market_ticker": m.ticker,
                "event_type": "close_date_updated",
                "close_ts": ev.close_ms // 1000,
            }
            self._lifecycle_frame(t + i, msg)

    def _on_pause(self, t: int, m: _Market, _: int) -> None:
        m.paused = True
        m.epoch += 1
        msg = {"market_ticker": m.ticker, "event_type": "deactivated", "is_deactivated": True}
        self._lifecycle_frame(t, msg)

    def _on_resume(self, t: int, m: _Market, _: int) -> None:
        m.paused = False
        msg = {"market_ticker": m.ticker, "event_type": "activated", "is_deactivated": False}
        self._lifecycle_frame(t, msg)
        if m.ob_sub is not None:
            self._start_chains(m, t)

    def _on_close(self, t: int, ev: _Event, _: int) -> None:
        """Trading ends: the market is deactivated and every resting order is cancelled."""
        for i, m in enumerate(ev.markets):
            m.epoch += 1
            m.paused = False
            tm = t + 2 * i
            msg = {"market_ticker": m.ticker, "event_type": "deactivated", "is_deactivated": True}
            self._lifecycle_frame(tm, msg)
            if m.ob_sub is not None:
                for idx in list(m.yes):
                    self._delta(m, tm, "yes", idx, -m.yes.pop(idx))
                for j in list(m.no):
                    self._delta(m, tm, "no", j, -m.no.pop(j))

    def _on_determine(self, t: int, m: _Market, _: int) -> None:
        if m.outcome:
            self.determined_yes += 1
        else:
            self.determined_no += 1
        msg = {
            "market_ticker": m.ticker,
            "event_type": "determined",
            "result": "yes" if m.outcome else "no",
            "determination_ts": t // 1000,
            "settlement_value": "1.0000" if m.outcome else "0.0000",
        }
        self._lifecycle_frame(t, msg)

    def _on_settle(self, t: int, m: _Market, _: int) -> None:
        msg = {"market_ticker": m.ticker, "event_type": "settled", "settled_ts": t // 1000}
        self._lifecycle_frame(t, msg)

    # -- discovery: REST polls and subscription upkeep ---------------------------------------

    def _listed(self, d: int) -> list[_Market]:
        return [
            m for m in self.by_ticker if m.event.open_ms <= d < m.event.close_ms and not m.paused
        ]

    def _on_discovery(self, d: int, _: object, __: int) -> None:
        """A REST poll (responses arrive over the next second or so), then subscription upkeep.

        Bodies reflect the state at ``d``; each response is written at its own receive time
        while WebSocket frames keep flowing, as with the live feed's concurrent tasks.
        """
        listed = self._listed(d)
        for m in listed:
            if not m.live:
                self._go_live(m, d)
        t = d + 110
        t = self._rest_markets(t, listed)
        t = self._rest_events(t, listed)
        if d == self.t0:
            body = {"series": [_series_json(s) for s in _CATALOGUE]}
            t += 95
            self.heap.push(t, _REST, ("/series", {}, body))
        self.heap.push(t + 140, _RECONCILE, [m.ticker for m in listed])

    def _on_rest(
        self, t: int, response: tuple[str, dict[str, Any], dict[str, Any]], _: int
    ) -> None:
        self.out.rest(t, *response)

    def _on_reconcile(self, t: int, tickers: list[str], _: int) -> None:
        index = self.index
        self._reconcile(
            t, [x for x in tickers if t < index[x].event.close_ms and not index[x].paused]
        )

    def _rest_markets(self, t: int, listed: list[_Market]) -> int:
        pages = [
            listed[i : i + MARKETS_PAGE_LIMIT] for i in range(0, len(listed), MARKETS_PAGE_LIMIT)
        ]
        cursor = ""
        for n, page in enumerate(pages or [[]]):
            params: dict[str, Any] = {"limit": MARKETS_PAGE_LIMIT, "status": "open"}
            if cursor:
                params = {"cursor": cursor, **params}
            nxt = ""
            if n + 1 < len(pages):
                nxt = base64.urlsafe_b64encode(self.micro.randbytes(27)).decode()
            body = {"cursor": nxt, "markets": [self._market_json(m, t) for m in page]}
            t += self.micro.randint(80, 220)
            self.heap.push(t, _REST, ("/markets", params, body))
            cursor = nxt
        return t

    def _rest_events(self, t: int, listed: list[_Market]) -> int:
        new: dict[str, _Event] = {}
        for m in listed:
            ev = m.event
            if ev.ticker not in self.announced_events:
                new[ev.ticker] = ev
        ordered = [new[k] for k in sorted(new)]
        self.announced_events.update(new)
        for i in range(0, len(ordered), EVENTS_PER_REQUEST):
            chunk = ordered[i : i + EVENTS_PER_REQUEST]
            params = {"tickers": ",".join(ev.ticker for ev in chunk)}
            body = {"cursor": "", "events": [self._event_json(ev) for ev in chunk]}
            t += self.micro.randint(60, 160)
            self.heap.push(t, _REST, ("/events", params, body))
        return t

    def _event_json(self, ev: _Event) -> dict[str, Any]:
        return {
            "category": ev.spec.profile.category,
            "collateral_return_type": "",
            "event_ticker": ev.ticker,
            "mutually_exclusive": False,
            "series_ticker": ev.spec.ticker,
            "strike_date": _rfc3339(ev.strike_ms),
            "sub_title": ev.sub_title,
            "title": ev.title,
        }

    def _market_json(self, m: _Market, t: int) -> dict[str, Any]:
        ev = m.event
        close = ev.close_known_at(t)
        bid = max(m.yes) if m.yes else None
        ask = min(m.no) if m.no else None
        bid_p = m.grid[bid] if bid is not None else 0
        ask_p = m.grid[ask] if ask is not None else ONE
        if not m.static:
            m.static = self._market_static(m)
        body = dict(m.static)
        body.update(
            close_time=_rfc3339(close),
            expected_expiration_time=_rfc3339(close + HOUR_MS),
            expiration_time=_rfc3339(close + 7 * 24 * HOUR_MS),
            last_price_dollars=_PRICE_STR[m.last_price],
            latest_expiration_time=_rfc3339(close + 7 * 24 * HOUR_MS),
            no_ask_dollars=_PRICE_STR[ONE - bid_p],
            no_bid_dollars=_PRICE_STR[ONE - ask_p],
            open_interest_fp=_count(m.oi),
            status="active",
            volume_24h_fp=_count(m.volume_24h),
            volume_fp=_count(m.volume),
            yes_ask_dollars=_PRICE_STR[ask_p],
            yes_ask_size_fp=_count(m.no[ask] if ask is not None else 0),
            yes_bid_dollars=_PRICE_STR[bid_p],
            yes_bid_size_fp=_count(m.yes[bid] if bid is not None else 0),
        )
        return dict(sorted(body.items()))

    def _market_static(self, m: _Market) -> dict[str, Any]:
        ev = m.event
        static: dict[str, Any] = {
            "can_close_early": m.can_close_early,
            "created_time": m.created_time,
            "event_ticker": ev.ticker,
            "expiration_value": "",
            "fractional_trading_enabled": m.fractional,
            "liquidity_dollars": "0.0000",
            "market_type": "binary",
            "no_sub_title": m.yes_sub_title,
            "notional_value_dollars": "1.0000",
            "open_time": _rfc3339(ev.open_ms),
            "previous_price_dollars": _PRICE_STR[m.prev[0]],
            "previous_yes_ask_dollars": _PRICE_STR[m.prev[2]],
            "previous_yes_bid_dollars": _PRICE_STR[m.prev[1]],
            "price_level_structure": m.ticks.name,
            "price_ranges": list(m.ticks.ranges),
            "response_price_units": "usd_cent",
            "result": "",
            "rules_primary": m.rules,
            "rules_secondary": "",
            "settlement_timer_seconds": m.settle_secs,
            "subtitle": m.yes_sub_title,
            "ticker": m.ticker,
            "title": ev.title,
            "updated_time": _rfc3339(ev.open_ms),
            "yes_sub_title": m.yes_sub_title,
        }
        if m.can_close_early:
            static["early_close_condition"] = (
                "If the outcome is known early, the market closes the following 10am ET."
            )
        if m.strike is not None:
            static["strike_type"] = "greater"
            static["floor_strike"] = m.strike
        return static

    def _go_live(self, m: _Market, t: int) -> None:
        """First sight of an open market: seed its statistics and its book."""
        rng = self.micro
        m.live = True
        bid, ask = self._target(m, t, m.spread)
        age_h = max(0.0, (t - m.event.open_ms) / HOUR_MS)
        m.volume = round(m.liq * 100 * math.sqrt(age_h + 1) * rng.lognormvariate(0.0, 0.7)) * 100
        m.volume_24h = _lot(m, round(m.volume * min(1.0, 24 / (age_h + 1)) * rng.uniform(0.6, 1)))
        m.oi = _lot(m, round(m.volume * rng.uniform(0.3, 0.8)))
        mid = self._mid_price(m, bid, ask)
        m.last_price = mid
        m.notional = m.volume * mid // 100
        if age_h >= 24:
            drift = rng.choice((-2, -1, 0, 0, 1, 2))
            i = min(max(m.grid.index(mid) + drift, 1), len(m.grid) - 2)
            m.prev = (m.grid[i], m.grid[i - 1], m.grid[i + 1])
        for k in range(m.depth):
            if bid is None or bid < 0:
                break
            m.yes[bid] = self._size(m, k)
            bid -= rng.choice((1, 1, 1, 2, 3))
        for k in range(m.depth):
            if ask is None or ask >= len(m.grid):
                break
            m.no[ask] = self._size(m, k)
            ask += rng.choice((1, 1, 1, 2, 3))

    def _mid_price(self, m: _Market, bid: int | None, ask: int | None) -> int:
        """A grid price at (or just below) the mid of the target quote."""
        grid = m.grid
        if bid is None:
            return grid[0]
        if ask is None:
            return grid[-1]
        return grid[(bid + ask) // 2]

    def _size(self, m: _Market, depth_rank: int) -> int:
        rng = self.micro
        contracts = max(1, int(m.liq * (1 + 0.35 * depth_rank) * rng.lognormvariate(0.0, 0.8)))
        centi = contracts * 100
        if m.fractional and rng.random() < 0.3:
            centi += rng.randrange(1, 100)
        return centi

    def _reconcile(self, t: int, wanted_list: list[str]) -> None:
        """Mirror the live client: place tickers in chunks, then subscribe/update/unsubscribe."""
        wanted = set(wanted_list)
        for channel in _PER_MARKET_CHANNELS:
            chunks = [s for s in self.subs if s.channel == channel]
            have: set[str] = set()
            for s in chunks:  # per-market channels always list their tickers
                s.want = [x for x in s.want or () if x in wanted]
                have.update(s.want)
            new = [x for x in wanted_list if x not in have]  # wanted_list is sorted
            for s in chunks:
                kept = s.want or []
                room = TICKERS_PER_SUBSCRIPTION - len(kept)
                if room > 0 and new:
                    s.want = sorted(kept + new[:room])
                    new = new[room:]
            while new:
                self._new_sub(channel, new[:TICKERS_PER_SUBSCRIPTION])
                new = new[TICKERS_PER_SUBSCRIPTION:]
        if self.lifecycle is None:
            self.lifecycle = self._new_sub("market_lifecycle_v2", None)
        for s in list(self.subs):
            t = self._sync(t, s)

    def _new_sub(self, channel: str, want: list[str] | None) -> _Sub:
        s = _Sub(self.next_key, channel, want)
        self.next_key += 1
        self.subs.append(s)
        return s

    def _sync(self, t: int, s: _Sub) -> int:
        out = self.out
        if s.want is None:  # market_lifecycle_v2: subscribed once, no tickers
            if s.sid == 0:
                t = self._subscribed(t, s)
            return t
        if not s.want:
            if s.sid:
                cmd = self._cmd()
                reply: dict[str, Any] = {"id": cmd, "sid": s.sid}
                if s.channel == "orderbook_delta":
                    reply["seq"] = s.seq
                reply["type"] = "unsubscribed"
                t = out.ws(t + 4, reply)
                self._detach(s, s.server)
            self.subs.remove(s)
            return t
        if s.sid == 0:
            t = self._subscribed(t, s)
            return self._attach(t, s, list(s.want))
        server = set(s.server)
        add = [x for x in s.want if x not in server]
        keep = set(s.want)
        remove = [x for x in s.server if x not in keep]
        if add:
            s.server = sorted(s.server + add)
            t = self._ok(t, s)
            t = self._attach(t, s, add)
        if remove:
            s.server = [x for x in s.server if x in keep]
            t = self._ok(t, s)
            self._detach(s, remove)
        return t

    def _cmd(self) -> int:
        self.next_cmd += 1
        return self.next_cmd - 1

    def _subscribed(self, t: int, s: _Sub) -> int:
        s.sid = self.next_sid
        self.next_sid += 1
        s.server = list(s.want) if s.want is not None else []
        msg = {"id": self._cmd(), "type": "subscribed", "msg": {"channel": s.channel, "sid": s.sid}}
        return self.out.ws(t + 6, msg)

    def _ok(self, t: int, s: _Sub) -> int:
        reply: dict[str, Any] = {"id": self._cmd(), "sid": s.sid}
        if s.channel == "orderbook_delta":
            s.seq += 1  # like Kalshi's: the ok takes the next seq of the sid's stream
            reply["seq"] = s.seq
        reply["type"] = "ok"
        reply["msg"] = {"market_tickers": list(s.server)}
        return self.out.ws(t + 5, reply)

    def _attach(self, t: int, s: _Sub, tickers: list[str]) -> int:
        by_ticker = self.index
        for x in tickers:
            m = by_ticker[x]
            if s.channel == "orderbook_delta":
                m.ob_sub = s
                t = self._snapshot(t, m)
                self._start_chains(m, t)
            elif s.channel == "ticker":
                m.tk_sub = s
            else:
                m.tr_sub = s
        return t

    def _detach(self, s: _Sub, tickers: list[str]) -> None:
        by_ticker = self.index
        for x in tickers:
            m = by_ticker[x]
            if s.channel == "orderbook_delta":
                m.ob_sub = None
                m.epoch += 1
            elif s.channel == "ticker":
                m.tk_sub = None
            else:
                m.tr_sub = None

    @staticmethod
    def _book_sub(m: _Market) -> _Sub:
        """The market's order-book subscription (book frames only flow while it has one)."""
        if m.ob_sub is None:
            raise RuntimeError(f"{m.ticker}: order-book frame without a subscription")
        return m.ob_sub

    def _snapshot(self, t: int, m: _Market) -> int:
        s = self._book_sub(m)
        s.seq += 1
        grid = m.grid
        msg: dict[str, Any] = {"market_ticker": m.ticker, "market_id": m.market_id}
        if m.yes:
            msg["yes_dollars_fp"] = [[_PRICE_STR[grid[i]], _count(m.yes[i])] for i in sorted(m.yes)]
        if m.no:
            msg["no_dollars_fp"] = [
                [_PRICE_STR[ONE - grid[j]], _count(m.no[j])] for j in sorted(m.no, reverse=True)
            ]
        frame = {"type": "orderbook_snapshot", "sid": s.sid, "seq": s.seq, "msg": msg}
        return self.out.ws(t + 1, frame)

    # -- the book ----------------------------------------------------------------------------

    def _start_chains(self, m: _Market, t: int) -> None:
        m.epoch += 1
        if m.paused or t >= m.event.close_ms:
            return
        rng, push = self.micro, self.heap.push
        push(t + 1 + int(rng.expovariate(m.book_rate) * 1000), _BOOK, m, m.epoch)
        push(t + 1 + int(rng.expovariate(m.trade_rate) * 1000), _TRADE, m, m.epoch)

    def _activity(self, m: _Market, t: int) -> float:
        ev = m.event
        mult = 1.0
        for s, e in ev.bursts:
            if s <= t < e:
                mult = 5.0
                break
        if t >= ev.close_ms - 15 * MINUTE_MS:
            mult *= 2.0
        return mult

    def _on_book(self, t: int, m: _Market, epoch: int) -> None:
        if epoch != m.epoch:
            return
        self._book_update(m, t)
        rate = m.book_rate * self._activity(m, t)
        self.heap.push(t + 1 + int(self.micro.expovariate(rate) * 1000), _BOOK, m, epoch)

    def _on_refill(self, t: int, m: _Market, epoch: int) -> None:
        if epoch == m.epoch:
            self._book_update(m, t)

    def _book_update(self, m: _Market, t: int) -> None:
        """Move the book to the current quote: cancels first, then new levels, then noise."""
        rng = self.micro
        yes, no = m.yes, m.no
        old_top = (max(yes) if yes else None, min(no) if no else None)
        r = rng.random()
        spread = m.spread + (1 if r < 0.2 else -1 if r > 0.92 and m.spread > 1 else 0)
        bid, ask = self._target(m, t, spread)
        changes = [("yes", i, -yes.pop(i)) for i in [i for i in yes if bid is None or i > bid]]
        changes += [("no", j, -no.pop(j)) for j in [j for j in no if ask is None or j < ask]]
        if bid is not None and bid not in yes:
            yes[bid] = self._size(m, 0)
            changes.append(("yes", bid, yes[bid]))
        if ask is not None and ask not in no:
            no[ask] = self._size(m, 0)
            changes.append(("no", ask, no[ask]))
        self._keep_depth(m, changes)
        if rng.random() < 0.7:
            self._noise(m, changes)
        for side, idx, delta in changes:
            self._delta(m, t, side, idx, delta)
        if (max(yes) if yes else None, min(no) if no else None) != old_top:
            self._ticker(m, t)

    def _keep_depth(self, m: _Market, changes: list[tuple[str, int, int]]) -> None:
        rng, yes, no = self.micro, m.yes, m.no
        if yes and len(yes) < m.depth:
            i = min(yes) - rng.choice((1, 1, 2, 3))
            if i >= 0:
                yes[i] = self._size(m, len(yes))
                changes.append(("yes", i, yes[i]))
        elif len(yes) > m.depth + 2:
            i = min(yes)
            changes.append(("yes", i, -yes.pop(i)))
        if no and len(no) < m.depth:
            j = max(no) + rng.choice((1, 1, 2, 3))
            if j < len(m.grid):
                no[j] = self._size(m, len(no))
                changes.append(("no", j, no[j]))
        elif len(no) > m.depth + 2:
            j = max(no)
            changes.append(("no", j, -no.pop(j)))

    def _noise(self, m: _Market, changes: list[tuple[str, int, int]]) -> None:
        """Somebody adds to or cancels part of a resting order."""
        rng = self.micro
        side = "yes" if rng.random() < 0.5 else "no"
        ladder = m.yes if side == "yes" else m.no
        if not ladder:
            return
        keys = list(ladder)
        idx = keys[rng.randrange(len(keys))]
        size = ladder[idx]
        if rng.random() < 0.55:
            delta = _lot(m, self._size(m, 1) // 2)
        else:
            delta = -min(size, _lot(m, int(size * rng.uniform(0.1, 1.0))))
            if len(keys) == 1 and -delta >= size:  # keep the side's last level alive
                delta = -_lot(m, size // 2) if size >= 200 else 0
        if delta == 0:
            return
        if size + delta == 0:
            del ladder[idx]
        else:
            ladder[idx] = size + delta
        changes.append((side, idx, delta))

    def _delta(self, m: _Market, t: int, side: str, idx: int, delta: int) -> None:
        s = self._book_sub(m)
        s.seq += 1
        price = m.grid[idx] if side == "yes" else ONE - m.grid[idx]
        msg = {
            "market_ticker": m.ticker,
            "market_id": m.market_id,
            "price_dollars": _PRICE_STR[price],
            "delta_fp": _count(delta),
            "side": side,
            "ts_ms": t - 4 - s.seq % 23,
        }
        self.out.ws(t, {"type": "orderbook_delta", "sid": s.sid, "seq": s.seq, "msg": msg})

    def _ticker(self, m: _Market, t: int) -> None:
        s = m.tk_sub
        if s is None:
            return
        grid = m.grid
        bid = max(m.yes) if m.yes else None
        ask = min(m.no) if m.no else None
        venue = t - 3 - m.oi % 17
        msg = {
            "market_id": m.market_id,
            "market_ticker": m.ticker,
            "price_dollars": _PRICE_STR[m.last_price],
            "yes_bid_dollars": _PRICE_STR[grid[bid] if bid is not None else 0],
            "yes_ask_dollars": _PRICE_STR[grid[ask] if ask is not None else ONE],
            "volume_fp": _count(m.volume),
            "open_interest_fp": _count(m.oi),
            "dollar_volume": m.notional // ONE,
            "dollar_open_interest": m.oi * m.last_price // (100 * ONE),
            "yes_bid_size_fp": _count(m.yes[bid] if bid is not None else 0),
            "yes_ask_size_fp": _count(m.no[ask] if ask is not None else 0),
            "last_trade_size_fp": _count(m.last_size),
            "ts": venue // 1000,
            "ts_ms": venue,
        }
        self.out.ws(t, {"type": "ticker", "sending_ts_ms": venue + 2, "sid": s.sid, "msg": msg})

    def _on_trade(self, t: int, m: _Market, epoch: int) -> None:
        if epoch != m.epoch:
            return
        rng = self.micro
        self._trade(m, t)
        rate = m.trade_rate * self._activity(m, t)
        self.heap.push(t + 1 + int(rng.expovariate(rate) * 1000), _TRADE, m, epoch)

    def _trade(self, m: _Market, t: int) -> None:
        """A taker takes (part of) the best level on one side: delta, trade, ticker."""
        rng = self.micro
        taker_yes = rng.random() < 0.5
        ladder = m.no if taker_yes else m.yes
        if not ladder:
            return
        idx = min(ladder) if taker_yes else max(ladder)
        size = ladder[idx]
        want = max(1, int(rng.lognormvariate(math.log(max(2.0, m.liq / 8)), 1.0))) * 100
        if m.fractional and rng.random() < 0.4:
            want = max(1, want - rng.randrange(100))
        count = min(size, want)
        yes_price = m.grid[idx]
        side = "no" if taker_yes else "yes"
        if count == size:
            del ladder[idx]
            self.heap.push(t + rng.randint(800, 6000), _REFILL, m, m.epoch)
        else:
            ladder[idx] = size - count
        self._delta(m, t, side, idx, -count)
        m.volume += count
        m.volume_24h += count
        m.oi = max(0, m.oi + (count if rng.random() < 0.6 else -count))
        m.notional += count * yes_price // 100
        m.last_price, m.last_size = yes_price, count
        trade_tr = m.tr_sub
        if trade_tr is not None:
            outcome = "yes" if taker_yes else "no"
            msg = {
                "trade_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "market_ticker": m.ticker,
                "yes_price_dollars": _PRICE_STR[yes_price],
                "no_price_dollars": _PRICE_STR[ONE - yes_price],
                "count_fp": _count(count),
                "taker_outcome_side": outcome,
                "taker_book_side": "bid" if taker_yes else "ask",
                "taker_side": outcome,
                "is_block_trade": False,
                "ts": (t - 5) // 1000,
                "ts_ms": t - 5,
            }
            self.out.ws(t, {"type": "trade", "sid": trade_tr.sid, "msg": msg})
        self._ticker(m, t)
