"""Constants, wire formatting, small maths and the ordered output of the synthetic day."""

from __future__ import annotations

import heapq
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

from evoarena.feeds.events import PRICE_ONE
from evoarena.feeds.recording import RecordingWriter

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


def longshot_price(p: float, bias: float) -> float:
    """The quoted probability for a true probability ``p``: ``σ((1 − 2·bias) · logit p)``.

    ``bias = 0`` returns ``p``; larger values pull quotes toward 0.5 (favourite–longshot bias).
    """
    if bias == 0.0:
        return p
    p = min(max(p, 1e-12), 1.0 - 1e-12)
    x = (1.0 - 2.0 * bias) * math.log(p / (1.0 - p))
    return 1.0 / (1.0 + math.exp(-x))
