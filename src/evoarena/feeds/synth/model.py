"""The synthetic world's objects: subscriptions, events and markets."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from evoarena.feeds.synth.catalogue import _LINEAR, _Series

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
