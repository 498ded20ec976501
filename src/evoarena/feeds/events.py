"""Normalized domain events: what ``feeds`` emits and ``engine`` consumes.

Units (fixed at the parsing edge, never floats):

* prices are integer **micro-dollars** (``PRICE_ONE`` = $1.00 = 1_000_000);
* contract counts are integer **centi-contracts** (``COUNT_ONE`` = 1 contract = 100);
* times are integer **milliseconds** since the Unix epoch (``*_ms``).

Every event carries ``ts_ms``: the receive time (our clock) of the frame it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

PRICE_ONE = 1_000_000
"""One dollar in micro-dollars: the payout of one binary contract."""

COUNT_ONE = 100
"""One contract in centi-contracts."""


class Side(StrEnum):
    """A contract side (and, for books, which bid ladder)."""

    YES = "yes"
    NO = "no"


class MarketStatus(StrEnum):
    """Kalshi's market status vocabulary (responses, not query filters)."""

    INITIALIZED = "initialized"
    ACTIVE = "active"
    INACTIVE = "inactive"
    CLOSED = "closed"
    DETERMINED = "determined"
    DISPUTED = "disputed"
    AMENDED = "amended"
    FINALIZED = "finalized"
    UNKNOWN = "unknown"


Level = tuple[int, int]
"""A book level: (price in micro-dollars, size in centi-contracts)."""


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """A full order book for one market: YES bids and NO bids (Kalshi books are bids only)."""

    ticker: str
    yes_bids: tuple[Level, ...]
    no_bids: tuple[Level, ...]
    ts_ms: int


@dataclass(frozen=True, slots=True)
class BookDelta:
    """A signed change of the resting size at one price of one bid ladder."""

    ticker: str
    side: Side
    price: int
    delta: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class BookInvalidated:
    """These markets' books can no longer be trusted (sequence gap) until a fresh snapshot."""

    tickers: tuple[str, ...]
    reason: str
    ts_ms: int


@dataclass(frozen=True, slots=True)
class TickerUpdate:
    """Top-of-book and activity summary for one market. ``None`` = not in this frame."""

    ticker: str
    last_price: int | None
    yes_bid: int | None
    yes_ask: int | None
    volume: int | None
    volume_24h: int | None
    open_interest: int | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class TradePrint:
    """A public trade."""

    ticker: str
    yes_price: int
    count: int
    taker_side: Side | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """What discovery (REST market objects) or a lifecycle ``created`` says about a market.

    ``None`` fields are unknown and leave what the book already has unchanged.
    """

    ticker: str
    event_ticker: str | None
    status: MarketStatus | None
    open_ms: int | None
    close_ms: int | None
    title: str | None
    result: Side | None
    settlement_value: int | None
    volume_24h: int | None
    open_interest: int | None
    yes_bid: int | None
    yes_ask: int | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class MarketStatusChanged:
    """A lifecycle transition (activated, deactivated, closed, settled/finalized ...)."""

    ticker: str
    status: MarketStatus
    ts_ms: int


@dataclass(frozen=True, slots=True)
class CloseTimeChanged:
    """The market's close time moved."""

    ticker: str
    close_ms: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class MarketDetermined:
    """The outcome is known: YES pays ``settlement_value`` micro-dollars per contract.

    ``result`` is ``None`` for scalar markets (``settlement_value`` says it all).
    """

    ticker: str
    result: Side | None
    settlement_value: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class EventInfo:
    """An event: its series, its (deprecated) category and fee overrides."""

    event_ticker: str
    series_ticker: str | None
    category: str | None
    fee_type: str | None
    fee_multiplier: Decimal | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """A series: the authoritative category and the fee structure."""

    series_ticker: str
    category: str | None
    fee_type: str | None
    fee_multiplier: Decimal | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class EventFeeChanged:
    """An event's fee override changed (``None`` = override removed)."""

    event_ticker: str
    fee_type: str | None
    fee_multiplier: Decimal | None
    ts_ms: int


MarketEvent = (
    BookSnapshot
    | BookDelta
    | BookInvalidated
    | TickerUpdate
    | TradePrint
    | MarketInfo
    | MarketStatusChanged
    | CloseTimeChanged
    | MarketDetermined
    | EventInfo
    | SeriesInfo
    | EventFeeChanged
)
"""Everything a feed can tell the engine."""
