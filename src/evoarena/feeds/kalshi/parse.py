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

This module holds the WebSocket frame parsers and re-exports the number, field and REST
parsers (:mod:`.numbers`, :mod:`.fields`, :mod:`.parse_rest`) under their historical names.

The functions taking ``msg`` receive a WebSocket frame's inner ``msg`` object; sequencing
(``sid``/``seq``) is the decoder's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evoarena.feeds.events import (
    PRICE_ONE,
    BookDelta,
    BookSnapshot,
    CloseTimeChanged,
    EventFeeChanged,
    EventInfo,
    MarketDetermined,
    MarketEvent,
    MarketInfo,
    MarketStatus,
    MarketStatusChanged,
    Side,
    TickerUpdate,
    TradePrint,
)
from evoarena.feeds.kalshi.fields import (
    _SIDES,
    _WS_NO_KEYS,
    _WS_YES_KEYS,
    JsonObj,
    MalformedFrame,
    _ladder,
    _lookup,
    _obj,
    _opt_count,
    _opt_decimal,
    _opt_int,
    _opt_price,
    _opt_str,
    _opt_unix_secs_ms,
    _req_str,
    _settlement_value,
    _side,
    _str_tuple,
)
from evoarena.feeds.kalshi.numbers import (
    _COUNTS,
    _PRICES,
    MICROS_PER_CENT,
    cents_to_micros,
    contracts_to_centi,
    parse_count,
    parse_decimal,
    parse_dollars,
    parse_price,
    parse_rfc3339_ms,
)
from evoarena.feeds.kalshi.parse_rest import (
    REST_PREFIX,
    RestResult,
    parse_event,
    parse_market,
    parse_rest,
    parse_rest_orderbook,
    parse_series,
    rest_route,
)

__all__ = [
    "LIFECYCLE_EVENT_TYPES",
    "LIFECYCLE_IGNORED",
    "MICROS_PER_CENT",
    "REST_PREFIX",
    "CommandReply",
    "JsonObj",
    "MalformedFrame",
    "RestResult",
    "cents_to_micros",
    "contracts_to_centi",
    "parse_command_reply",
    "parse_count",
    "parse_decimal",
    "parse_dollars",
    "parse_event",
    "parse_event_fee_update",
    "parse_event_lifecycle",
    "parse_market",
    "parse_market_lifecycle",
    "parse_orderbook_delta",
    "parse_orderbook_snapshot",
    "parse_price",
    "parse_rest",
    "parse_rest_orderbook",
    "parse_rfc3339_ms",
    "parse_series",
    "parse_ticker",
    "parse_trade",
    "rest_route",
]

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
