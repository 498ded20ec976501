"""The one shared, in-memory book of every market.

``MarketBook.apply(event)`` is the only way state changes, so a live run and a replay of its
recording build the same book. Kalshi books are bids only: a YES ask at ``p`` is a NO bid at
``1 - p``. A sequence gap or an impossible delta (a level going negative) marks a market *stale*;
stale books are never traded against until a fresh snapshot arrives.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from evoarena.feeds.events import (
    PRICE_ONE,
    BookDelta,
    BookInvalidated,
    BookSnapshot,
    CloseTimeChanged,
    EventFeeChanged,
    EventInfo,
    Level,
    MarketDetermined,
    MarketEvent,
    MarketInfo,
    MarketStatus,
    MarketStatusChanged,
    SeriesInfo,
    Side,
    TickerUpdate,
    TradePrint,
)

DEFAULT_FEE_TYPE = "quadratic"
DEFAULT_FEE_MULTIPLIER = Decimal(1)

_TRADABLE_STATUSES = frozenset({MarketStatus.ACTIVE})
_FINAL_STATUSES = frozenset(
    {MarketStatus.DETERMINED, MarketStatus.AMENDED, MarketStatus.FINALIZED, MarketStatus.DISPUTED}
)


class MarketState:
    """One market: its two bid ladders, lifecycle, outcome and recent price history."""

    __slots__ = (
        "_best_no",
        "_best_yes",
        "close_ms",
        "event_ticker",
        "has_book",
        "history",
        "last_price",
        "no_bids",
        "open_interest",
        "open_ms",
        "result",
        "settlement_value",
        "stale",
        "status",
        "ticker",
        "title",
        "volume",
        "volume_24h",
        "yes_bids",
    )

    def __init__(self, ticker: str, history_len: int) -> None:
        self.ticker = ticker
        self.event_ticker: str | None = None
        self.title: str | None = None
        self.status = MarketStatus.UNKNOWN
        self.open_ms: int | None = None
        self.close_ms: int | None = None
        self.yes_bids: dict[int, int] = {}
        self.no_bids: dict[int, int] = {}
        self.has_book = False
        self.stale = False
        self.result: Side | None = None
        self.settlement_value: int | None = None
        self.volume: int | None = None
        self.volume_24h: int | None = None
        self.open_interest: int | None = None
        self.last_price: int | None = None
        self.history: deque[int] = deque(maxlen=history_len)
        self._best_yes: int | None = None
        self._best_no: int | None = None

    # -- derived prices -----------------------------------------------------------------------

    @property
    def best_yes_bid(self) -> int | None:
        """Highest YES bid (micro-dollars), or ``None`` for an empty ladder."""
        return self._best_yes

    @property
    def best_no_bid(self) -> int | None:
        """Highest NO bid (micro-dollars), or ``None`` for an empty ladder."""
        return self._best_no

    @property
    def best_yes_ask(self) -> int | None:
        """Cheapest YES price one can buy at: ``1 - best NO bid``."""
        return None if self._best_no is None else PRICE_ONE - self._best_no

    @property
    def best_no_ask(self) -> int | None:
        """Cheapest NO price one can buy at: ``1 - best YES bid``."""
        return None if self._best_yes is None else PRICE_ONE - self._best_yes

    def ask_levels(self, side: Side) -> list[Level]:
        """Levels one can buy ``side`` at, cheapest first: (ask price, size).

        Buying YES takes NO bids at ``1 - p``; buying NO takes YES bids at ``1 - p``.
        """
        opposite = self.no_bids if side is Side.YES else self.yes_bids
        return [(PRICE_ONE - p, opposite[p]) for p in sorted(opposite, reverse=True)]

    def bid_levels(self, side: Side) -> list[Level]:
        """The ``side`` bid ladder, best (highest) first."""
        ladder = self.yes_bids if side is Side.YES else self.no_bids
        return [(p, ladder[p]) for p in sorted(ladder, reverse=True)]

    @property
    def tradable(self) -> bool:
        """A fresh book on an open market: the only kind the paper exchange fills against."""
        return self.has_book and not self.stale and self.status in _TRADABLE_STATUSES

    @property
    def is_final(self) -> bool:
        """The outcome is known."""
        return self.settlement_value is not None or self.status in _FINAL_STATUSES

    # -- mutation (only MarketBook calls these) -----------------------------------------------

    def _set_ladders(self, yes: tuple[Level, ...], no: tuple[Level, ...]) -> None:
        self.yes_bids = {p: s for p, s in yes if s > 0}
        self.no_bids = {p: s for p, s in no if s > 0}
        self._best_yes = max(self.yes_bids) if self.yes_bids else None
        self._best_no = max(self.no_bids) if self.no_bids else None
        self.has_book = True
        self.stale = False

    def _apply_delta(self, side: Side, price: int, delta: int) -> bool:
        """Apply a signed size change; returns False (and changes nothing) if it is impossible."""
        ladder = self.yes_bids if side is Side.YES else self.no_bids
        new_size = ladder.get(price, 0) + delta
        if new_size < 0:
            return False
        best = self._best_yes if side is Side.YES else self._best_no
        if new_size == 0:
            ladder.pop(price, None)
            if best == price:
                best = max(ladder) if ladder else None
        else:
            ladder[price] = new_size
            if best is None or price > best:
                best = price
        if side is Side.YES:
            self._best_yes = best
        else:
            self._best_no = best
        return True


@dataclass(slots=True)
class _EventMeta:
    series_ticker: str | None = None
    category: str | None = None
    fee_type: str | None = None
    fee_multiplier: Decimal | None = None
    fee_type_override: str | None = None
    fee_multiplier_override: Decimal | None = None


@dataclass(slots=True)
class _SeriesMeta:
    category: str | None = None
    fee_type: str | None = None
    fee_multiplier: Decimal | None = None


@dataclass(slots=True)
class BookCounters:
    """What the book noticed while applying events (for ``inspect`` and heartbeats)."""

    events: int = 0
    snapshots: int = 0
    deltas: int = 0
    deltas_without_book: int = 0
    impossible_deltas: int = 0
    invalidations: int = 0
    determined: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class MarketBook:
    """Every market, every event and series the feed has told us about."""

    def __init__(self, history_len: int = 120) -> None:
        self.history_len = history_len
        self.markets: dict[str, MarketState] = {}
        self._events: dict[str, _EventMeta] = {}
        self._series: dict[str, _SeriesMeta] = {}
        self.counters = BookCounters()
        self._newly_determined: list[str] = []

    # -- queries ------------------------------------------------------------------------------

    def get(self, ticker: str) -> MarketState | None:
        """The market, if known."""
        return self.markets.get(ticker)

    def market(self, ticker: str) -> MarketState:
        """The market, created empty on first mention."""
        m = self.markets.get(ticker)
        if m is None:
            m = MarketState(ticker, self.history_len)
            self.markets[ticker] = m
        return m

    def category(self, ticker: str) -> str | None:
        """The series category of the market's event, falling back to the event's category."""
        m = self.markets.get(ticker)
        if m is None or m.event_ticker is None:
            return None
        ev = self._events.get(m.event_ticker)
        if ev is None:
            return None
        if ev.series_ticker is not None:
            s = self._series.get(ev.series_ticker)
            if s is not None and s.category:
                return s.category
        return ev.category or None

    def categories(self) -> list[str]:
        """Every category of a known market, sorted (the genome's category mask indexes this)."""
        found = {c for t in self.markets if (c := self.category(t)) is not None}
        return sorted(found)

    def fee_params(self, ticker: str) -> tuple[str, Decimal]:
        """(fee type, fee multiplier): the event's override, else the series', else quadratic ×1."""
        m = self.markets.get(ticker)
        ev = self._events.get(m.event_ticker) if m is not None and m.event_ticker else None
        fee_type: str | None = None
        mult: Decimal | None = None
        if ev is not None:
            fee_type = ev.fee_type_override or ev.fee_type
            mult = (
                ev.fee_multiplier_override
                if ev.fee_multiplier_override is not None
                else (ev.fee_multiplier)
            )
            if ev.series_ticker is not None and (s := self._series.get(ev.series_ticker)):
                fee_type = fee_type or s.fee_type
                mult = mult if mult is not None else s.fee_multiplier
        return (fee_type or DEFAULT_FEE_TYPE, mult if mult is not None else DEFAULT_FEE_MULTIPLIER)

    def stale_tickers(self) -> list[str]:
        """Markets whose book is currently untrusted."""
        return sorted(t for t, m in self.markets.items() if m.stale)

    def drain_determined(self) -> list[str]:
        """Markets that became determined since the last call, in the order it happened."""
        out, self._newly_determined = self._newly_determined, []
        return out

    # -- updates ------------------------------------------------------------------------------

    def record_tick(self) -> None:
        """Append every market's current YES ask to its rolling history (once per tick)."""
        for m in self.markets.values():
            ask = m.best_yes_ask
            if ask is not None and m.has_book and not m.stale:
                m.history.append(ask)

    def apply(self, ev: MarketEvent) -> None:  # noqa: C901 — one flat dispatch reads best here
        """Apply one domain event."""
        c = self.counters
        c.events += 1
        name = type(ev).__name__
        c.by_type[name] = c.by_type.get(name, 0) + 1
        if isinstance(ev, BookDelta):
            c.deltas += 1
            m = self.markets.get(ev.ticker)
            if m is None or not m.has_book or m.stale:
                c.deltas_without_book += 1
                return
            if not m._apply_delta(ev.side, ev.price, ev.delta):
                c.impossible_deltas += 1
                m.stale = True
        elif isinstance(ev, BookSnapshot):
            c.snapshots += 1
            self.market(ev.ticker)._set_ladders(ev.yes_bids, ev.no_bids)
        elif isinstance(ev, TickerUpdate):
            m = self.market(ev.ticker)
            if ev.last_price is not None:
                m.last_price = ev.last_price
            if ev.volume is not None:
                m.volume = ev.volume
            if ev.volume_24h is not None:
                m.volume_24h = ev.volume_24h
            if ev.open_interest is not None:
                m.open_interest = ev.open_interest
        elif isinstance(ev, TradePrint):
            self.market(ev.ticker).last_price = ev.yes_price
        elif isinstance(ev, BookInvalidated):
            c.invalidations += 1
            for t in ev.tickers:
                if (m := self.markets.get(t)) is not None:
                    m.stale = True
        elif isinstance(ev, MarketInfo):
            self._apply_info(ev)
        elif isinstance(ev, MarketStatusChanged):
            self._set_status(self.market(ev.ticker), ev.status)
        elif isinstance(ev, CloseTimeChanged):
            self.market(ev.ticker).close_ms = ev.close_ms
        elif isinstance(ev, MarketDetermined):
            self._determine(self.market(ev.ticker), ev.result, ev.settlement_value)
        elif isinstance(ev, EventInfo):
            meta = self._events.setdefault(ev.event_ticker, _EventMeta())
            meta.series_ticker = ev.series_ticker or meta.series_ticker
            meta.category = ev.category or meta.category
            meta.fee_type_override = ev.fee_type or meta.fee_type_override
            if ev.fee_multiplier is not None:
                meta.fee_multiplier_override = ev.fee_multiplier
        elif isinstance(ev, SeriesInfo):
            s = self._series.setdefault(ev.series_ticker, _SeriesMeta())
            s.category = ev.category or s.category
            s.fee_type = ev.fee_type or s.fee_type
            if ev.fee_multiplier is not None:
                s.fee_multiplier = ev.fee_multiplier
        elif isinstance(ev, EventFeeChanged):
            meta = self._events.setdefault(ev.event_ticker, _EventMeta())
            meta.fee_type_override = ev.fee_type
            meta.fee_multiplier_override = ev.fee_multiplier

    def _apply_info(self, ev: MarketInfo) -> None:
        m = self.market(ev.ticker)
        if ev.event_ticker is not None:
            m.event_ticker = ev.event_ticker
            self._events.setdefault(ev.event_ticker, _EventMeta())
        if ev.title is not None:
            m.title = ev.title
        if ev.open_ms is not None:
            m.open_ms = ev.open_ms
        if ev.close_ms is not None:
            m.close_ms = ev.close_ms
        if ev.volume_24h is not None:
            m.volume_24h = ev.volume_24h
        if ev.open_interest is not None:
            m.open_interest = ev.open_interest
        if ev.status is not None:
            self._set_status(m, ev.status)
        if ev.settlement_value is not None and ev.status in _FINAL_STATUSES:
            self._determine(m, ev.result, ev.settlement_value)

    def _set_status(self, m: MarketState, status: MarketStatus) -> None:
        # A determined market never goes back to trading because of a late, stale status.
        if m.settlement_value is not None and status not in _FINAL_STATUSES:
            return
        m.status = status

    def _determine(self, m: MarketState, result: Side | None, value: int) -> None:
        if m.settlement_value is not None:
            return  # whichever source said it first wins, once
        m.result = result
        m.settlement_value = value
        if m.status not in _FINAL_STATUSES:
            m.status = MarketStatus.DETERMINED
        self.counters.determined += 1
        self._newly_determined.append(m.ticker)
