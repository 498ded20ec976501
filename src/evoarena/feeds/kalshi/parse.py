"""Kalshi wire → domain events: pure functions, no state, no I/O.

Covers the current (2026) WebSocket and REST shapes — dollar strings (``"0.5600"``) and
fixed-point count strings (``"10.67"``) — and, when those are absent, the legacy cent-era fields
(``yes``/``no`` ``[cents, int]`` ladders, ``price``/``delta`` ints, ``yes_bid`` cents ...).

Contracts:

* prices become integer micro-dollars, counts integer centi-contracts, times integer ms
  (see :mod:`evoarena.feeds.events`); no float ever touches money;
* unknown fields are ignored; a missing required field or a bad number raises
  :class:`MalformedFrame`, whose message names the frame type and the field;
* every event's ``ts_ms`` is the receive time passed in, never a venue timestamp.

The functions taking ``msg`` receive a WebSocket frame's inner ``msg`` object; sequencing
(``sid``/``seq``) is the decoder's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from evoarena.feeds.events import (
    COUNT_ONE,
    PRICE_ONE,
    BookDelta,
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
from evoarena.feeds.guard import MAX_COUNT, MAX_MICROS, safe_repr

JsonObj = dict[str, Any]

MICROS_PER_CENT = 10_000
"""One cent in micro-dollars."""

REST_PREFIX = "/trade-api/v2"

LIFECYCLE_EVENT_TYPES = frozenset(
    {
        "created",
        "activated",
        "deactivated",
        "close_date_updated",
        "determined",
        "settled",
        "price_level_structure_updated",
        "metadata_updated",
    }
)
"""Every documented ``market_lifecycle_v2`` ``event_type``."""

LIFECYCLE_IGNORED = frozenset({"price_level_structure_updated", "metadata_updated"})
"""Lifecycle event types that change nothing the book tracks (parsed to ``None``)."""

_CACHE_LIMIT = 1 << 16


class MalformedFrame(ValueError):
    """A frame (or REST body) that cannot be parsed; names the frame type and the field."""

    def __init__(self, frame_type: str, field: str, reason: str) -> None:
        self.frame_type = frame_type
        self.field = field
        self.reason = reason
        super().__init__(f"{frame_type}: field {field!r}: {reason}")


# -- numbers --------------------------------------------------------------------------------------


def _fixed_point(s: object, places: int, what: str) -> int:
    """Exact ``s * 10**places`` for a plain decimal string with at most ``places`` decimals."""
    if type(s) is not str:
        msg = f"invalid {what} {s!r}: expected a decimal string"
        raise ValueError(msg)
    body = s[1:] if s[:1] == "-" else s
    whole, dot, frac = body.partition(".")
    if (
        not whole
        or not (whole.isascii() and whole.isdigit())
        or len(frac) > places
        or (dot and not (frac and frac.isascii() and frac.isdigit()))
    ):
        msg = f"invalid {what} {s!r}: expected digits with at most {places} decimals"
        raise ValueError(msg)
    value: int = int(whole) * 10**places
    if frac:
        value += int(frac) * 10 ** (places - len(frac))
    return -value if body is not s else value


_DOLLARS: dict[str, int] = {}
_PRICES: dict[str, int] = {}
_COUNTS: dict[str, int] = {}


def parse_dollars(s: str) -> int:
    """Exact micro-dollars of a dollar string (``"0.5600"`` → 560_000).

    Accepts an optional leading ``-``, digits, and 0–6 decimals; anything else (exponents,
    spaces, 7+ decimals, non-strings) raises ``ValueError`` naming the value.
    """
    try:
        return _DOLLARS[s]
    except KeyError:
        pass
    except TypeError:  # unhashable: certainly not a string
        pass
    value = _fixed_point(s, 6, "dollar amount")
    if not -MAX_MICROS <= value <= MAX_MICROS:
        msg = f"dollar amount {safe_repr(s)} is out of range"
        raise ValueError(msg)
    if len(_DOLLARS) < _CACHE_LIMIT:
        _DOLLARS[s] = value
    return value


def parse_price(s: str) -> int:
    """A price: :func:`parse_dollars`, and it must lie in [0, 1] dollars."""
    try:
        return _PRICES[s]
    except KeyError:
        pass
    except TypeError:
        pass
    value = parse_dollars(s)
    if not 0 <= value <= PRICE_ONE:
        msg = f"price {s!r} is outside [0, 1] dollars"
        raise ValueError(msg)
    if len(_PRICES) < _CACHE_LIMIT:
        _PRICES[s] = value
    return value


def parse_count(s: str) -> int:
    """Exact centi-contracts of a fixed-point count string (``"10.67"`` → 1067).

    Accepts an optional leading ``-`` (deltas are signed) and 0–2 decimals; anything else raises
    ``ValueError`` naming the value.
    """
    try:
        return _COUNTS[s]
    except KeyError:
        pass
    except TypeError:
        pass
    value = _fixed_point(s, 2, "contract count")
    if not -MAX_COUNT <= value <= MAX_COUNT:
        msg = f"contract count {safe_repr(s)} is out of range"
        raise ValueError(msg)
    if len(_COUNTS) < _CACHE_LIMIT:
        _COUNTS[s] = value
    return value


def cents_to_micros(cents: int) -> int:
    """Legacy integer cents → micro-dollars (``56`` → 560_000)."""
    if type(cents) is not int:
        msg = f"invalid cents value {safe_repr(cents)}: expected an integer"
        raise ValueError(msg)
    if not -MAX_MICROS <= cents * MICROS_PER_CENT <= MAX_MICROS:
        msg = f"cents value {safe_repr(cents)} is out of range"
        raise ValueError(msg)
    return cents * MICROS_PER_CENT


def contracts_to_centi(n: int) -> int:
    """Legacy integer contract count → centi-contracts (``3`` → 300)."""
    if type(n) is not int:
        msg = f"invalid contract count {safe_repr(n)}: expected an integer"
        raise ValueError(msg)
    if not -MAX_COUNT <= n * COUNT_ONE <= MAX_COUNT:
        msg = f"contract count {safe_repr(n)} is out of range"
        raise ValueError(msg)
    return n * COUNT_ONE


def parse_decimal(v: object) -> Decimal:
    """A finite ``Decimal`` from a JSON number or numeric string (floats via their short repr)."""
    if isinstance(v, bool):
        msg = f"invalid number {v!r}"
        raise ValueError(msg)
    if isinstance(v, int):
        if abs(v) > MAX_MICROS:
            msg = f"number {safe_repr(v)} is out of range"
            raise ValueError(msg)
        return Decimal(v)
    if isinstance(v, float):
        v = repr(v)
    if isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            d = Decimal("NaN")
        if d.is_finite() and abs(d) <= MAX_MICROS:
            return d
    msg = f"invalid number {safe_repr(v)}"
    raise ValueError(msg)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def parse_rfc3339_ms(s: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 timestamp; a missing UTC offset is refused."""
    if type(s) is not str:
        msg = f"invalid timestamp {s!r}: expected an RFC 3339 string"
        raise ValueError(msg)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        msg = f"invalid timestamp {s!r}: not RFC 3339"
        raise ValueError(msg) from None
    if dt.tzinfo is None:
        msg = f"invalid timestamp {s!r}: no UTC offset"
        raise ValueError(msg)
    return (dt - _EPOCH) // _ONE_MS


# -- field access ---------------------------------------------------------------------------------


def _bad(ft: str, key: str, e: ValueError) -> MalformedFrame:
    return MalformedFrame(ft, key, str(e))


def _obj(v: object, ft: str, key: str) -> JsonObj:
    if type(v) is not dict:
        raise MalformedFrame(ft, key, f"expected an object, got {type(v).__name__}")
    return v


def _req_str(d: JsonObj, key: str, ft: str) -> str:
    v = d.get(key)
    if v is None:
        raise MalformedFrame(ft, key, "missing")
    if type(v) is not str or not v:
        raise MalformedFrame(ft, key, f"expected a non-empty string, got {v!r}")
    return v


def _opt_str(d: JsonObj, key: str, ft: str) -> str | None:
    v = d.get(key)
    if v is None or v == "":
        return None
    if type(v) is not str:
        raise MalformedFrame(ft, key, f"expected a string, got {v!r}")
    return v


def _opt_int(d: JsonObj, key: str, ft: str) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if type(v) is not int:
        raise MalformedFrame(ft, key, f"expected an integer, got {v!r}")
    return v


def _opt_price(d: JsonObj, key: str, cents_key: str | None, ft: str) -> int | None:
    """A dollar-string price at ``key``, else legacy cents at ``cents_key``, else ``None``."""
    v = d.get(key)
    if v is not None and v != "":
        try:
            return parse_price(v)
        except ValueError as e:
            raise _bad(ft, key, e) from None
    if cents_key is None:
        return None
    c = d.get(cents_key)
    return None if c is None else _cents_price(c, ft, cents_key)


def _cents_price(c: object, ft: str, key: str) -> int:
    """A legacy integer-cents price in [0, 100] → micro-dollars."""
    if type(c) is not int:
        raise MalformedFrame(ft, key, f"expected integer cents, got {c!r}")
    if not 0 <= c <= 100:
        raise MalformedFrame(ft, key, f"price {c!r} cents is outside [0, 100]")
    return c * MICROS_PER_CENT


def _opt_count(d: JsonObj, key: str, int_key: str | None, ft: str) -> int | None:
    """A fixed-point count at ``key``, else a legacy integer count at ``int_key``, else ``None``."""
    v = d.get(key)
    if v is not None and v != "":
        try:
            return parse_count(v)
        except ValueError as e:
            raise _bad(ft, key, e) from None
    if int_key is None:
        return None
    n = d.get(int_key)
    if n is None:
        return None
    try:
        return contracts_to_centi(n)
    except ValueError as e:
        raise _bad(ft, int_key, e) from None


def _opt_decimal(d: JsonObj, key: str, ft: str) -> Decimal | None:
    v = d.get(key)
    if v is None or v == "":
        return None
    try:
        return parse_decimal(v)
    except ValueError as e:
        raise _bad(ft, key, e) from None


def _opt_time(d: JsonObj, key: str, ft: str) -> int | None:
    v = d.get(key)
    if v is None or v == "":
        return None
    try:
        return parse_rfc3339_ms(v)
    except ValueError as e:
        raise _bad(ft, key, e) from None


def _opt_unix_secs_ms(d: JsonObj, key: str, ft: str) -> int | None:
    secs = _opt_int(d, key, ft)
    return None if secs is None else secs * 1000


_SIDES: dict[str, Side] = {"yes": Side.YES, "no": Side.NO}
_STATUSES: dict[str, MarketStatus] = {
    **{s.value: s for s in MarketStatus},
    # Legacy response vocabulary (today only query-filter values).
    "unopened": MarketStatus.INITIALIZED,
    "open": MarketStatus.ACTIVE,
    "paused": MarketStatus.INACTIVE,
    "settled": MarketStatus.FINALIZED,
}


def _lookup(table: dict[str, Side], v: object) -> Side | None:
    """``table[v]`` for a known string, else ``None`` (never raises, whatever ``v`` is)."""
    return table.get(v) if type(v) is str else None


def _side(v: object, ft: str, key: str) -> Side:
    side = _lookup(_SIDES, v)
    if side is None:
        raise MalformedFrame(ft, key, f"expected 'yes' or 'no', got {v!r}")
    return side


# -- order books ----------------------------------------------------------------------------------


def _level(item: object, ft: str, key: str, cents: bool) -> Level:
    if type(item) is not list or len(item) != 2:
        raise MalformedFrame(ft, key, f"expected [price, size] pairs, got {item!r}")
    p, n = item
    price = _cents_price(p, ft, key) if cents else 0
    try:
        if not cents:
            price = parse_price(p)
        size = contracts_to_centi(n) if type(n) is int else parse_count(n)
    except ValueError as e:
        raise _bad(ft, key, e) from None
    if size < 0:
        raise MalformedFrame(ft, key, f"negative size {n!r} at price {p!r}")
    return price, size


def _levels(raw: object, ft: str, key: str, cents: bool) -> tuple[Level, ...]:
    """A bid ladder, best price first; zero sizes dropped; a repeated price keeps the last."""
    if type(raw) is not list:
        raise MalformedFrame(ft, key, f"expected a list of levels, got {type(raw).__name__}")
    ladder: dict[int, int] = {}
    for item in raw:
        price, size = _level(item, ft, key, cents)
        ladder[price] = size
    return tuple(sorted(((p, s) for p, s in ladder.items() if s > 0), reverse=True))


def _ladder(d: JsonObj, ft: str, keys: tuple[str, ...], cents_key: str) -> tuple[Level, ...]:
    """The first present of the dollar-priced ``keys``, else the legacy cents ladder."""
    for key in keys:
        raw = d.get(key)
        if raw is not None:
            return _levels(raw, ft, key, cents=False)
    raw = d.get(cents_key)
    if raw is not None:
        return _levels(raw, ft, cents_key, cents=True)
    return ()


_WS_YES_KEYS = ("yes_dollars_fp", "yes_dollars")
_WS_NO_KEYS = ("no_dollars_fp", "no_dollars")


def parse_orderbook_snapshot(msg: JsonObj, ts_ms: int) -> BookSnapshot:
    """``orderbook_snapshot`` → :class:`BookSnapshot` (an omitted side is an empty ladder)."""
    ft = "orderbook_snapshot"
    ticker = _req_str(msg, "market_ticker", ft)
    yes = _ladder(msg, ft, _WS_YES_KEYS, "yes")
    no = _ladder(msg, ft, _WS_NO_KEYS, "no")
    return BookSnapshot(ticker, yes, no, ts_ms)


def parse_orderbook_delta(msg: JsonObj, ts_ms: int) -> BookDelta:
    """``orderbook_delta`` → :class:`BookDelta` (signed, relative size change)."""
    # Fast path: every value already seen and validated (the hot loop of a replay).
    try:
        ticker = msg["market_ticker"]
        if type(ticker) is str and ticker:
            return BookDelta(
                ticker,
                _SIDES[msg["side"]],
                _PRICES[msg["price_dollars"]],
                _COUNTS[msg["delta_fp"]],
                ts_ms,
            )
    except (KeyError, TypeError):
        pass
    return _parse_delta_slow(msg, ts_ms)


def _parse_delta_slow(msg: JsonObj, ts_ms: int) -> BookDelta:
    ft = "orderbook_delta"
    ticker = _req_str(msg, "market_ticker", ft)
    side = _side(msg.get("side"), ft, "side")
    price = _opt_price(msg, "price_dollars", "price", ft)
    if price is None:
        raise MalformedFrame(ft, "price_dollars", "missing")
    delta = _opt_count(msg, "delta_fp", "delta", ft)
    if delta is None:
        raise MalformedFrame(ft, "delta_fp", "missing")
    return BookDelta(ticker, side, price, delta, ts_ms)


# -- ticker and trades ----------------------------------------------------------------------------


def parse_ticker(msg: JsonObj, ts_ms: int) -> TickerUpdate:
    """``ticker`` → :class:`TickerUpdate` (the WS ticker has no 24 h volume: always ``None``)."""
    ft = "ticker"
    return TickerUpdate(
        ticker=_req_str(msg, "market_ticker", ft),
        last_price=_opt_price(msg, "price_dollars", "price", ft),
        yes_bid=_opt_price(msg, "yes_bid_dollars", "yes_bid", ft),
        yes_ask=_opt_price(msg, "yes_ask_dollars", "yes_ask", ft),
        volume=_opt_count(msg, "volume_fp", "volume", ft),
        volume_24h=None,
        open_interest=_opt_count(msg, "open_interest_fp", "open_interest", ft),
        ts_ms=ts_ms,
    )


_BOOK_SIDES: dict[str, Side] = {"bid": Side.YES, "ask": Side.NO}


def parse_trade(msg: JsonObj, ts_ms: int) -> TradePrint:
    """``trade`` → :class:`TradePrint`.

    The taker side is ``taker_outcome_side``, else the deprecated ``taker_side``, else
    ``taker_book_side`` (bid ≡ yes); ``None`` if none is recognisable. The YES price falls back to
    ``1 − no price`` when only the NO price is present.
    """
    ft = "trade"
    ticker = _req_str(msg, "market_ticker", ft)
    yes_price = _opt_price(msg, "yes_price_dollars", "yes_price", ft)
    if yes_price is None:
        no_price = _opt_price(msg, "no_price_dollars", "no_price", ft)
        if no_price is None:
            raise MalformedFrame(ft, "yes_price_dollars", "missing")
        yes_price = PRICE_ONE - no_price
    count = _opt_count(msg, "count_fp", "count", ft)
    if count is None:
        raise MalformedFrame(ft, "count_fp", "missing")
    taker = _lookup(_SIDES, msg.get("taker_outcome_side")) or _lookup(_SIDES, msg.get("taker_side"))
    if taker is None:
        taker = _lookup(_BOOK_SIDES, msg.get("taker_book_side"))
    return TradePrint(ticker, yes_price, count, taker, ts_ms)


# -- lifecycle ------------------------------------------------------------------------------------


def _settlement_value(d: JsonObj, key: str, cents_key: str, result: Side | None, ft: str) -> int:
    """YES payout: a dollar string at ``key`` (or legacy integer cents there or at ``cents_key``),
    else 1/0 from a yes/no ``result``."""
    raw = d.get(key)
    if type(raw) is int:
        value: int | None = _cents_price(raw, ft, key)
    else:
        value = _opt_price(d, key, cents_key, ft)
    if value is not None:
        return value
    if result is Side.YES:
        return PRICE_ONE
    if result is Side.NO:
        return 0
    raise MalformedFrame(ft, key, "missing, and the result is neither 'yes' nor 'no'")


def parse_market_lifecycle(msg: JsonObj, ts_ms: int) -> MarketEvent | None:
    """``market_lifecycle_v2`` → one domain event, or ``None`` for event types the book ignores.

    ``created`` → :class:`MarketInfo` (ACTIVE once ``open_ts`` has passed at ``ts_ms``, else
    INITIALIZED); ``activated``/``deactivated`` → ACTIVE/INACTIVE (``is_deactivated`` wins over the
    event name); ``close_date_updated`` → :class:`CloseTimeChanged`; ``determined`` →
    :class:`MarketDetermined`; ``settled`` → FINALIZED. ``price_level_structure_updated``,
    ``metadata_updated`` and unknown event types → ``None``.
    """
    ft = "market_lifecycle_v2"
    ticker = _req_str(msg, "market_ticker", ft)
    event_type = _req_str(msg, "event_type", ft)
    if event_type == "created":
        return _lifecycle_created(msg, ticker, ts_ms)
    if event_type in ("activated", "deactivated"):
        deactivated = msg.get("is_deactivated")
        if deactivated is None:
            deactivated = event_type == "deactivated"
        elif type(deactivated) is not bool:
            raise MalformedFrame(ft, "is_deactivated", f"expected a boolean, got {deactivated!r}")
        status = MarketStatus.INACTIVE if deactivated else MarketStatus.ACTIVE
        return MarketStatusChanged(ticker, status, ts_ms)
    if event_type == "close_date_updated":
        close_ms = _opt_unix_secs_ms(msg, "close_ts", ft)
        if close_ms is None:
            raise MalformedFrame(ft, "close_ts", "missing")
        return CloseTimeChanged(ticker, close_ms, ts_ms)
    if event_type == "determined":
        result = _lookup(_SIDES, msg.get("result"))
        value = _settlement_value(msg, "settlement_value", "settlement_value", result, ft)
        return MarketDetermined(ticker, result, value, ts_ms)
    if event_type == "settled":
        return MarketStatusChanged(ticker, MarketStatus.FINALIZED, ts_ms)
    return None


def _lifecycle_created(msg: JsonObj, ticker: str, ts_ms: int) -> MarketInfo:
    ft = "market_lifecycle_v2"
    open_ms = _opt_unix_secs_ms(msg, "open_ts", ft)
    close_ms = _opt_unix_secs_ms(msg, "close_ts", ft)
    meta_raw = msg.get("additional_metadata")
    meta = {} if meta_raw is None else _obj(meta_raw, ft, "additional_metadata")
    status: MarketStatus | None = None
    if open_ms is not None:
        status = MarketStatus.ACTIVE if open_ms <= ts_ms else MarketStatus.INITIALIZED
    return MarketInfo(
        ticker=ticker,
        event_ticker=_opt_str(meta, "event_ticker", ft),
        status=status,
        open_ms=open_ms,
        close_ms=close_ms,
        title=_opt_str(meta, "title", ft),
        result=None,
        settlement_value=None,
        volume_24h=None,
        open_interest=None,
        yes_bid=None,
        yes_ask=None,
        ts_ms=ts_ms,
    )


def parse_event_lifecycle(msg: JsonObj, ts_ms: int) -> EventInfo:
    """``event_lifecycle`` (a new event) → :class:`EventInfo` with its series."""
    ft = "event_lifecycle"
    return EventInfo(
        event_ticker=_req_str(msg, "event_ticker", ft),
        series_ticker=_opt_str(msg, "series_ticker", ft),
        category=None,
        fee_type=None,
        fee_multiplier=None,
        ts_ms=ts_ms,
    )


def parse_event_fee_update(msg: JsonObj, ts_ms: int) -> EventFeeChanged:
    """``event_fee_update`` → :class:`EventFeeChanged` (``None`` fields = override cleared)."""
    ft = "event_fee_update"
    return EventFeeChanged(
        event_ticker=_req_str(msg, "event_ticker", ft),
        fee_type=_opt_str(msg, "fee_type_override", ft),
        fee_multiplier=_opt_decimal(msg, "fee_multiplier_override", ft),
        ts_ms=ts_ms,
    )


# -- command replies ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandReply:
    """A reply to one of our commands (``subscribed``, ``ok``, ``unsubscribed``, ``error``).

    ``market_tickers`` is the full list after an ``update_subscription`` (``ok``), or the market an
    ``error`` names; ``subscriptions`` is the (sid, channel) list of a ``list_subscriptions`` reply.
    """

    id: int | None
    type: str
    sid: int | None = None
    channel: str | None = None
    market_tickers: tuple[str, ...] | None = None
    error_code: int | None = None
    error_msg: str | None = None
    seq: int | None = None
    subscriptions: tuple[tuple[int, str], ...] = field(default=())


def _str_tuple(v: object, ft: str, key: str) -> tuple[str, ...]:
    if type(v) is not list or not all(type(t) is str for t in v):
        raise MalformedFrame(ft, key, "expected a list of strings")
    return tuple(v)


def parse_command_reply(obj: JsonObj) -> CommandReply:
    """A whole reply frame (envelope included) → :class:`CommandReply`."""
    ft = obj.get("type")
    if ft not in ("subscribed", "ok", "unsubscribed", "error"):
        raise MalformedFrame(str(ft), "type", "not a command reply")
    cmd_id = _opt_int(obj, "id", ft)
    sid = _opt_int(obj, "sid", ft)
    seq = _opt_int(obj, "seq", ft)
    raw = obj.get("msg")
    if ft == "subscribed":
        msg = _obj(raw, ft, "msg")
        sid = _opt_int(msg, "sid", ft) or sid
        if sid is None:
            raise MalformedFrame(ft, "sid", "missing")
        return CommandReply(cmd_id, ft, sid=sid, channel=_req_str(msg, "channel", ft), seq=seq)
    if ft == "ok":
        if type(raw) is list:
            subs: list[tuple[int, str]] = []
            for item in raw:
                entry = _obj(item, ft, "msg")
                entry_sid = _opt_int(entry, "sid", ft)
                if entry_sid is None:
                    raise MalformedFrame(ft, "sid", "missing in subscription list")
                subs.append((entry_sid, _req_str(entry, "channel", ft)))
            return CommandReply(cmd_id, ft, sid=sid, seq=seq, subscriptions=tuple(subs))
        tickers: tuple[str, ...] | None = None
        if raw is not None:
            msg = _obj(raw, ft, "msg")
            if msg.get("market_tickers") is not None:
                tickers = _str_tuple(msg["market_tickers"], ft, "market_tickers")
        return CommandReply(cmd_id, ft, sid=sid, market_tickers=tickers, seq=seq)
    if ft == "unsubscribed":
        return CommandReply(cmd_id, ft, sid=sid, seq=seq)
    msg = {} if raw is None else _obj(raw, ft, "msg")
    market = _opt_str(msg, "market_ticker", ft)
    return CommandReply(
        cmd_id,
        ft,
        sid=sid,
        market_tickers=None if market is None else (market,),
        error_code=_opt_int(msg, "code", ft),
        error_msg=_opt_str(msg, "msg", ft),
        seq=seq,
    )


# -- REST -----------------------------------------------------------------------------------------


def parse_market(m: JsonObj, ts_ms: int, *, event_ticker: str | None = None) -> MarketInfo:
    """A REST ``Market`` object → :class:`MarketInfo`.

    ``event_ticker`` is the fallback when the object lacks one (markets nested in an event). The
    settlement value is ``settlement_value_dollars`` (legacy: ``settlement_value`` cents), else
    1/0 from a ``yes``/``no`` result, else ``None``.
    """
    ft = "rest market"
    ticker = _req_str(m, "ticker", ft)
    status_raw = _opt_str(m, "status", ft)
    status = None if status_raw is None else _STATUSES.get(status_raw, MarketStatus.UNKNOWN)
    result = _lookup(_SIDES, m.get("result"))
    settlement: int | None = None
    if any(m.get(k) not in (None, "") for k in ("settlement_value_dollars", "settlement_value")):
        settlement = _settlement_value(m, "settlement_value_dollars", "settlement_value", None, ft)
    elif result is not None:
        settlement = PRICE_ONE if result is Side.YES else 0
    return MarketInfo(
        ticker=ticker,
        event_ticker=_opt_str(m, "event_ticker", ft) or event_ticker,
        status=status,
        open_ms=_opt_time(m, "open_time", ft),
        close_ms=_opt_time(m, "close_time", ft),
        title=_opt_str(m, "title", ft),
        result=result,
        settlement_value=settlement,
        volume_24h=_opt_count(m, "volume_24h_fp", "volume_24h", ft),
        open_interest=_opt_count(m, "open_interest_fp", "open_interest", ft),
        yes_bid=_opt_price(m, "yes_bid_dollars", "yes_bid", ft),
        yes_ask=_opt_price(m, "yes_ask_dollars", "yes_ask", ft),
        ts_ms=ts_ms,
    )


_REST_YES_KEYS = ("yes_dollars",)
_REST_NO_KEYS = ("no_dollars",)


def parse_rest_orderbook(ticker: str, body: JsonObj, ts_ms: int) -> BookSnapshot:
    """``GET /markets/{ticker}/orderbook`` body → :class:`BookSnapshot`.

    Current shape ``orderbook_fp`` (``yes_dollars``/``no_dollars`` string pairs); legacy
    ``orderbook`` (``yes_dollars`` with integer counts, or ``yes``/``no`` in cents).
    """
    ft = "rest orderbook"
    if body.get("orderbook_fp") is not None:
        book = _obj(body["orderbook_fp"], ft, "orderbook_fp")
    elif body.get("orderbook") is not None:
        book = _obj(body["orderbook"], ft, "orderbook")
    else:
        raise MalformedFrame(ft, "orderbook_fp", "missing")
    yes = _ladder(book, ft, _REST_YES_KEYS, "yes")
    no = _ladder(book, ft, _REST_NO_KEYS, "no")
    return BookSnapshot(ticker, yes, no, ts_ms)


def parse_event(e: JsonObj, ts_ms: int) -> EventInfo:
    """A REST ``EventData`` → :class:`EventInfo` (fee fields are the event's overrides)."""
    ft = "rest event"
    return EventInfo(
        event_ticker=_req_str(e, "event_ticker", ft),
        series_ticker=_opt_str(e, "series_ticker", ft),
        category=_opt_str(e, "category", ft),
        fee_type=_opt_str(e, "fee_type_override", ft),
        fee_multiplier=_opt_decimal(e, "fee_multiplier_override", ft),
        ts_ms=ts_ms,
    )


def parse_series(s: JsonObj, ts_ms: int) -> SeriesInfo:
    """A REST ``Series`` → :class:`SeriesInfo` (category, else the first of ``categories``)."""
    ft = "rest series"
    category = _opt_str(s, "category", ft)
    if category is None:
        cats = s.get("categories")
        if cats:
            category = _str_tuple(cats, ft, "categories")[0] or None
    return SeriesInfo(
        series_ticker=_req_str(s, "ticker", ft),
        category=category,
        fee_type=_opt_str(s, "fee_type", ft),
        fee_multiplier=_opt_decimal(s, "fee_multiplier", ft),
        ts_ms=ts_ms,
    )


@dataclass(slots=True)
class RestResult:
    """What one REST response body said.

    ``errors`` holds the items of a list that could not be parsed (the rest were kept).
    """

    kind: str
    events: list[MarketEvent] = field(default_factory=list)
    cursor: str | None = None
    errors: list[MalformedFrame] = field(default_factory=list)


def rest_route(path: str) -> tuple[str, str | None]:
    """(kind, ticker) of a REST path, with or without host and ``/trade-api/v2`` prefix.

    Kinds: ``markets``, ``market``, ``orderbook``, ``orderbooks``, ``events``, ``event``,
    ``series_list``, ``series`` and ``other`` (not market data we decode).
    """
    if "://" in path:
        path = urlsplit(path).path
    path = path.split("?", 1)[0]
    if path.startswith(REST_PREFIX):
        path = path[len(REST_PREFIX) :]
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["historical"]:
        parts = parts[1:] if parts[1:2] == ["markets"] else ["?"]
    match parts:
        case ["markets"]:
            return "markets", None
        case ["markets", "orderbooks"]:
            return "orderbooks", None
        case ["markets", "trades" | "candlesticks"]:
            return "other", None
        case ["markets", ticker]:
            return "market", ticker
        case ["markets", ticker, "orderbook"]:
            return "orderbook", ticker
        case ["events"]:
            return "events", None
        case ["events", "multivariate" | "fee_changes"]:
            return "other", None
        case ["events", ticker]:
            return "event", ticker
        case ["series"]:
            return "series_list", None
        case ["series", "fee_changes"]:
            return "other", None
        case ["series", ticker]:
            return "series", ticker
    return "other", None


def _items(
    body: JsonObj,
    key: str,
    ft: str,
    out: RestResult,
    parse_one: Callable[[JsonObj], list[MarketEvent]],
) -> None:
    raw = body.get(key)
    if raw is None:
        return
    if type(raw) is not list:
        raise MalformedFrame(ft, key, f"expected a list, got {type(raw).__name__}")
    for item in raw:
        try:
            out.events.extend(parse_one(_obj(item, ft, key)))
        except MalformedFrame as e:
            out.errors.append(e)


def _list_body(b: JsonObj, key: str, ft: str) -> None:
    if key not in b:
        raise MalformedFrame(ft, key, "missing")


def _rest_markets(b: JsonObj, ticker: str | None, ts_ms: int, out: RestResult) -> None:
    ft = "rest markets"
    _list_body(b, "markets", ft)
    _items(b, "markets", ft, out, lambda m: [parse_market(m, ts_ms)])
    out.cursor = _opt_str(b, "cursor", ft)


def _rest_market(b: JsonObj, ticker: str | None, ts_ms: int, out: RestResult) -> None:
    out.events.append(parse_market(_obj(b.get("market"), "rest market", "market"), ts_ms))


def _rest_orderbook(b: JsonObj, ticker: str | None, ts_ms: int, out: RestResult) -> None:
    out.events.append(parse_rest_orderbook(ticker or "", b, ts_ms))


def _rest_orderbooks(b: JsonObj, ticker: str | None, ts_ms: int, out: RestResult) -> None:
    ft = "rest orderbooks"
    _list_body(b, "orderbooks", ft)
    _items(
        b,
        "orderbooks",
        ft,
        out,
        lambda e: [parse_rest_orderbook(_req_str(e, "ticker", ft), e, ts_ms)],
    )


def _event_with_markets(e: JsonObj, markets_in: JsonObj, ts_ms: int, out: RestResult) -> None:
    info = parse_event(e, ts_ms)
    out.events.append(info)
    _items(
        markets_in,
        "markets",
        "rest event",
        out,
        lambda m: [parse_market(m, ts_ms, event_ticker=info.event_ticker)],
    )


def _rest_events(b: JsonObj, ticker: str | None, ts_ms: int, out: RestResult) -> None:
    ft = "rest events"
    _list_body(b, "events", ft)

    def one(e: JsonObj) -> list[MarketEvent]:
        nested = RestResult(out.kind)
        _event_with_markets(e, e, ts_ms, nested)
        out.errors.extend(nested.errors)
        return nested.events

    _items(b, "events", ft, out, one)
    out.cursor = _opt_str(b, "cursor", ft)


def _rest_event(b: JsonObj, ticker: str | None, ts_ms: int, out: RestResult) -> None:
    _event_with_markets(_obj(b.get("event"), "rest event", "event"), b, ts_ms, out)


def _rest_series_list(b: JsonObj, ticker: str | None, ts_ms: int, out: RestResult) -> None:
    ft = "rest series_list"
    _list_body(b, "series", ft)
    _items(b, "series", ft, out, lambda x: [parse_series(x, ts_ms)])
    out.cursor = _opt_str(b, "cursor", ft)


def _rest_series(b: JsonObj, ticker: str | None, ts_ms: int, out: RestResult) -> None:
    out.events.append(parse_series(_obj(b.get("series"), "rest series", "series"), ts_ms))


_REST_PARSERS: dict[str, Callable[[JsonObj, str | None, int, RestResult], None]] = {
    "markets": _rest_markets,
    "market": _rest_market,
    "orderbook": _rest_orderbook,
    "orderbooks": _rest_orderbooks,
    "events": _rest_events,
    "event": _rest_event,
    "series_list": _rest_series_list,
    "series": _rest_series,
}


def parse_rest(path: str, body: object, ts_ms: int) -> RestResult:
    """A successful REST response body → the domain events it carries (plus any list cursor).

    Raises :class:`MalformedFrame` when the body as a whole is unusable; a bad item in a list is
    collected in ``errors`` and skipped. ``other`` paths yield no events.
    """
    kind, ticker = rest_route(path)
    out = RestResult(kind)
    parser = _REST_PARSERS.get(kind)
    if parser is not None:
        parser(_obj(body, f"rest {kind}", "body"), ticker, ts_ms, out)
    return out
