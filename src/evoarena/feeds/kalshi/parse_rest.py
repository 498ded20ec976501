"""Kalshi REST bodies → domain events: markets, events, series and order books, routed by path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from evoarena.feeds.events import (
    PRICE_ONE,
    BookSnapshot,
    EventInfo,
    MarketEvent,
    MarketInfo,
    MarketStatus,
    SeriesInfo,
    Side,
)
from evoarena.feeds.kalshi.fields import (
    _SIDES,
    _STATUSES,
    JsonObj,
    MalformedFrame,
    _ladder,
    _lookup,
    _obj,
    _opt_count,
    _opt_decimal,
    _opt_price,
    _opt_str,
    _opt_time,
    _req_str,
    _settlement_value,
    _str_tuple,
)

REST_PREFIX = "/trade-api/v2"


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
