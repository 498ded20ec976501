"""Kalshi wire → domain: golden tests on every hand-built payload, numbers, leniency, errors.

Every expected value below was worked out by hand from ``reference/kalshi-api.md``: dollar
strings × 1_000_000 → micro-dollars, ``_fp`` counts × 100 → centi-contracts, legacy cents ×
10_000, legacy integer counts × 100, Unix seconds × 1000, RFC 3339 times → epoch ms (checked
with ``date -u -d``).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from evoarena.feeds.events import (
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
    SeriesInfo,
    Side,
    TickerUpdate,
    TradePrint,
)
from evoarena.feeds.kalshi.parse import (
    CommandReply,
    MalformedFrame,
    cents_to_micros,
    contracts_to_centi,
    parse_command_reply,
    parse_count,
    parse_decimal,
    parse_dollars,
    parse_event_fee_update,
    parse_event_lifecycle,
    parse_market_lifecycle,
    parse_orderbook_delta,
    parse_orderbook_snapshot,
    parse_price,
    parse_rest,
    parse_rfc3339_ms,
    parse_ticker,
    parse_trade,
    rest_route,
)

RES = Path(__file__).resolve().parents[2] / "resources" / "kalshi"
TS = 1_700_000_000_000  # receive time handed to the parser (after every open_ts below)

FED = "FED-23DEC-T3.00"
INX = "INXD-23SEP14-B4487"
HIGHNY = "HIGHNY-22DEC23-B53.5"

# The FED-23DEC-T3.00 book of orderbook_snapshot*.json: YES 0.08×300, 0.22×333; NO 0.54×20,
# 0.56×146 — best (highest) price first.
FED_YES = ((220_000, 33_300), (80_000, 30_000))
FED_NO = ((560_000, 14_600), (540_000, 2_000))


def load(rel: str) -> Any:
    """A resource file's JSON."""
    return json.loads((RES / rel).read_text())


def ws_msg(name: str) -> dict[str, Any]:
    """The inner ``msg`` of a WebSocket resource frame."""
    msg: dict[str, Any] = load(f"ws/{name}.json")["msg"]
    return msg


def _parse_ws(frame: dict[str, Any]) -> MarketEvent | CommandReply | None:
    """Route a whole frame to the parser for its type (what the decoder's dispatch does)."""
    parsers = {
        "orderbook_snapshot": parse_orderbook_snapshot,
        "orderbook_delta": parse_orderbook_delta,
        "ticker": parse_ticker,
        "trade": parse_trade,
        "market_lifecycle_v2": parse_market_lifecycle,
        "event_lifecycle": parse_event_lifecycle,
        "event_fee_update": parse_event_fee_update,
    }
    if frame["type"] in ("subscribed", "ok", "unsubscribed", "error"):
        return parse_command_reply(frame)
    parse: Any = parsers[frame["type"]]
    result: MarketEvent | None = parse(frame["msg"], TS)
    return result


def _info(ticker: str, **kw: Any) -> MarketInfo:
    fields: dict[str, Any] = {
        "event_ticker": None,
        "status": None,
        "open_ms": None,
        "close_ms": None,
        "title": None,
        "result": None,
        "settlement_value": None,
        "volume_24h": None,
        "open_interest": None,
        "yes_bid": None,
        "yes_ask": None,
    }
    fields.update(kw)
    return MarketInfo(ticker=ticker, ts_ms=TS, **fields)


WS_GOLDEN: dict[str, MarketEvent | CommandReply | None] = {
    "orderbook_snapshot": BookSnapshot(FED, FED_YES, FED_NO, TS),
    "orderbook_snapshot_legacy": BookSnapshot(FED, FED_YES, FED_NO, TS),
    "orderbook_snapshot_cents": BookSnapshot(FED, FED_YES, FED_NO, TS),
    # 0.1250×10.67, 0.0900×1.00, 0.1300×0.50, sorted best first; the NO side key is omitted.
    "orderbook_snapshot_one_side": BookSnapshot(
        "FED-23DEC-T3.25", ((130_000, 50), (125_000, 1_067), (90_000, 100)), (), TS
    ),
    "orderbook_delta": BookDelta(FED, Side.YES, 960_000, -5_400, TS),
    "orderbook_delta_legacy": BookDelta(FED, Side.NO, 540_000, 1_200, TS),
    "orderbook_delta_subpenny": BookDelta("FED-23DEC-T3.25", Side.NO, 3_000, 250, TS),
    "ticker": TickerUpdate(FED, 480_000, 450_000, 530_000, 3_389_600, None, 2_042_200, TS),
    "ticker_legacy": TickerUpdate(FED, 480_000, 450_000, 530_000, 3_389_600, None, 2_042_200, TS),
    "trade": TradePrint(HIGHNY, 360_000, 13_600, Side.NO, TS),
    "trade_legacy": TradePrint(HIGHNY, 360_000, 13_600, Side.YES, TS),
    "trade_outcome_side": TradePrint(HIGHNY, 365_000, 250, Side.YES, TS),
    "lifecycle_created": _info(
        INX,
        event_ticker="INXD-23SEP14",
        status=MarketStatus.ACTIVE,  # open_ts 1694635200 s is before TS
        open_ms=1_694_635_200_000,
        close_ms=1_694_721_600_000,
        title="S&P 500 closes up by 0.02% or more",
    ),
    "lifecycle_activated": MarketStatusChanged(INX, MarketStatus.ACTIVE, TS),
    "lifecycle_deactivated": MarketStatusChanged(INX, MarketStatus.INACTIVE, TS),
    "lifecycle_close_date_updated": CloseTimeChanged(INX, 1_694_718_000_000, TS),
    "lifecycle_determined": MarketDetermined(INX, Side.NO, 0, TS),
    "lifecycle_determined_no_value": MarketDetermined(
        "INXD-23SEP14-B4500", Side.YES, 1_000_000, TS
    ),
    "lifecycle_determined_scalar": MarketDetermined("GDP-24Q1-SCALAR", None, 625_000, TS),
    "lifecycle_settled": MarketStatusChanged(INX, MarketStatus.FINALIZED, TS),
    "lifecycle_price_level_structure_updated": None,
    "lifecycle_metadata_updated": None,
    "lifecycle_unknown_event": None,
    "event_lifecycle": EventInfo("INXD-23SEP14", "INXD", None, None, None, TS),
    "event_fee_update": EventFeeChanged(
        "INXD-23SEP14", "quadratic_with_maker_fees", Decimal("0.5"), TS
    ),
    "event_fee_update_cleared": EventFeeChanged("INXD-23SEP14", None, None, TS),
    "reply_subscribed": CommandReply(1, "subscribed", sid=1, channel="orderbook_delta"),
    "reply_ok": CommandReply(123, "ok", sid=456, market_tickers=(FED, "FED-23DEC-T3.25"), seq=222),
    "reply_list_subscriptions": CommandReply(
        3, "ok", subscriptions=((1, "orderbook_delta"), (2, "ticker"))
    ),
    "reply_unsubscribed": CommandReply(102, "unsubscribed", sid=2, seq=7),
    "reply_error": CommandReply(
        123, "error", market_tickers=("NOPE-99",), error_code=16, error_msg="Market not found"
    ),
}

WS_NOT_PARSED = {"unknown_type"}
"""Frames with no parser at all (the decoder counts them as unknown types)."""


def test_every_ws_resource_has_a_golden_value() -> None:
    """Each ws/*.json file is covered by exactly one golden expectation (or is an unknown type)."""
    names = {p.stem for p in (RES / "ws").glob("*.json")}
    assert names == set(WS_GOLDEN) | WS_NOT_PARSED


@pytest.mark.parametrize("name", sorted(WS_GOLDEN))
def test_ws_golden(name: str) -> None:
    """The frame parses to exactly the hand-computed domain value."""
    assert _parse_ws(load(f"ws/{name}.json")) == WS_GOLDEN[name]


@pytest.mark.parametrize("name", sorted(WS_GOLDEN))
def test_ws_unknown_fields_are_ignored(name: str) -> None:
    """Extra keys in the envelope and in ``msg`` change nothing."""
    frame = load(f"ws/{name}.json")
    frame["zz_future_envelope"] = [1, {"x": None}]
    if isinstance(frame.get("msg"), dict):
        frame["msg"]["zz_future_field"] = {"nested": ["0.5", 7]}
        frame["msg"]["yes_dollars_v9"] = "not a price"
    assert _parse_ws(frame) == WS_GOLDEN[name]


# -- market_lifecycle_v2 details ------------------------------------------------------------------


def test_lifecycle_created_before_open_is_initialized() -> None:
    """A market created with ``open_ts`` still in the future is not yet trading."""
    msg = ws_msg("lifecycle_created")
    before_open = 1_694_635_200_000 - 1
    ev = parse_market_lifecycle(msg, before_open)
    assert isinstance(ev, MarketInfo)
    assert ev.status is MarketStatus.INITIALIZED
    assert ev.open_ms == 1_694_635_200_000


def test_lifecycle_created_without_times_leaves_them_unknown() -> None:
    """Missing optional keys of ``created`` come out as ``None`` (unknown), not errors."""
    ev = parse_market_lifecycle({"market_ticker": "X-1", "event_type": "created"}, TS)
    assert ev == _info("X-1")


def test_lifecycle_is_deactivated_wins_over_event_name() -> None:
    """``is_deactivated`` decides the status; the event name is the fallback."""
    ev = parse_market_lifecycle(
        {"market_ticker": "X-1", "event_type": "activated", "is_deactivated": True}, TS
    )
    assert ev == MarketStatusChanged("X-1", MarketStatus.INACTIVE, TS)
    ev = parse_market_lifecycle({"market_ticker": "X-1", "event_type": "deactivated"}, TS)
    assert ev == MarketStatusChanged("X-1", MarketStatus.INACTIVE, TS)
    ev = parse_market_lifecycle({"market_ticker": "X-1", "event_type": "activated"}, TS)
    assert ev == MarketStatusChanged("X-1", MarketStatus.ACTIVE, TS)


def test_lifecycle_determined_settlement_value_dollar_string_wins_over_result() -> None:
    """``settlement_value`` (dollars) is the payout even when ``result`` says yes."""
    msg = {"market_ticker": "X-1", "event_type": "determined", "result": "yes"}
    assert parse_market_lifecycle({**msg, "settlement_value": "0.9900"}, TS) == MarketDetermined(
        "X-1", Side.YES, 990_000, TS
    )
    # Legacy integer cents in the same key.
    assert parse_market_lifecycle({**msg, "settlement_value": 100}, TS) == MarketDetermined(
        "X-1", Side.YES, 1_000_000, TS
    )


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        ({"market_ticker": "X-1", "event_type": "determined", "result": "scalar"}, "settlement"),
        ({"market_ticker": "X-1", "event_type": "close_date_updated"}, "close_ts"),
        ({"market_ticker": "X-1", "event_type": "close_date_updated", "close_ts": "soon"}, "close"),
        ({"market_ticker": "X-1", "event_type": "activated", "is_deactivated": "no"}, "is_deact"),
        ({"market_ticker": "X-1"}, "event_type"),
        ({"event_type": "settled"}, "market_ticker"),
    ],
)
def test_lifecycle_malformed(msg: dict[str, Any], field: str) -> None:
    """A lifecycle frame missing what its event type needs raises, naming the field."""
    with pytest.raises(MalformedFrame) as info:
        parse_market_lifecycle(msg, TS)
    assert info.value.frame_type == "market_lifecycle_v2"
    assert info.value.field.startswith(field)


# -- REST -----------------------------------------------------------------------------------------

HIGHNY_OPEN = 1_779_112_800_000  # 2026-05-18T14:00:00Z
HIGHNY_CLOSE = 1_779_249_540_000  # 2026-05-20T03:59:00Z

REST_GOLDEN: dict[str, tuple[str, list[MarketEvent], str | None]] = {
    "markets": (
        "/trade-api/v2/markets",
        [
            _info(
                "KXHIGHNY-26MAY19-B71.5",
                event_ticker="KXHIGHNY-26MAY19",
                status=MarketStatus.ACTIVE,
                open_ms=HIGHNY_OPEN,
                close_ms=HIGHNY_CLOSE,  # "…03:59:00.000Z": fractional zero seconds
                title="Highest temperature in NYC on May 19, 2026?",
                volume_24h=120_000,
                open_interest=84_550,
                yes_bid=215_000,
                yes_ask=230_000,
            ),
            _info(
                "KXHIGHNY-26MAY18-B69.5",
                event_ticker="KXHIGHNY-26MAY18",
                status=MarketStatus.FINALIZED,
                open_ms=1_779_026_400_000,  # 2026-05-17T14:00:00Z
                close_ms=1_779_163_140_000,  # 2026-05-19T03:59:00Z
                title="Highest temperature in NYC on May 18, 2026?",
                result=Side.NO,
                settlement_value=0,
                volume_24h=0,
                open_interest=0,
                yes_bid=0,
                yes_ask=1_000_000,
            ),
        ],
        "CgwI3Ne0wQYQ8JvUrQISFktYSElHSE5ZLTI2TUFZMTgtQjY5LjU",
    ),
    "market": (
        "/trade-api/v2/markets/KXSPACEXSTARSHIP-12-26MAY19",
        [
            _info(
                "KXSPACEXSTARSHIP-12-26MAY19",
                event_ticker="KXSPACEXSTARSHIP-12",
                status=MarketStatus.ACTIVE,
                open_ms=1_775_138_400_000,  # 2026-04-02T14:00:00Z
                close_ms=1_779_163_140_000,  # 2026-05-19T03:59:00Z
                title="Will Starship flight 12 launch by May 19, 2026?",
                volume_24h=512_037,  # "5120.37"
                open_interest=9_021_100,  # "90211.00"
                yes_bid=410_000,
                yes_ask=430_000,
            )
        ],
        None,
    ),
    "market_legacy": (
        "https://api.elections.kalshi.com/trade-api/v2/markets/INXD-23SEP14-B4487",
        [
            _info(
                INX,
                event_ticker="INXD-23SEP14",
                status=MarketStatus.FINALIZED,  # legacy "settled"
                open_ms=1_694_635_200_000,  # 2023-09-13T20:00:00Z
                close_ms=1_694_721_600_000,  # 2023-09-14T20:00:00Z
                title="S&P 500 closes up by 0.02% or more",
                result=Side.YES,
                settlement_value=1_000_000,  # 100 cents
                volume_24h=7_700,  # 77 contracts
                open_interest=410_000,  # 4100 contracts
                yes_bid=0,
                yes_ask=1_000_000,
            )
        ],
        None,
    ),
    "orderbook": (
        "/trade-api/v2/markets/KXTEST-1/orderbook",
        [
            BookSnapshot(
                "KXTEST-1",
                ((160_000, 1_234), (150_000, 10_000), (145_000, 700)),
                ((830_000, 1), (820_000, 5_000)),
                TS,
            )
        ],
        None,
    ),
    "orderbook_legacy": (
        "/trade-api/v2/markets/KXTEST-1/orderbook",
        [BookSnapshot("KXTEST-1", ((160_000, 1_200), (150_000, 10_000)), (), TS)],
        None,
    ),
    "orderbooks": (
        "/trade-api/v2/markets/orderbooks",
        [
            BookSnapshot(
                "KXHIGHNY-26MAY19-B71.5",
                ((215_000, 4_000),),
                ((770_000, 1_525), (760_000, 300)),
                TS,
            ),
            BookSnapshot("KXHIGHNY-26MAY19-T74", (), (), TS),
        ],
        None,
    ),
    "events": (
        "/trade-api/v2/events",
        [
            EventInfo("KXHIGHNY-26MAY19", "KXHIGHNY", "Climate and Weather", None, None, TS),
            _info(
                "KXHIGHNY-26MAY19-B71.5",
                event_ticker="KXHIGHNY-26MAY19",  # nested market without one: the event's
                status=MarketStatus.ACTIVE,
                open_ms=HIGHNY_OPEN,
                close_ms=HIGHNY_CLOSE,
                yes_bid=215_000,
                yes_ask=230_000,
            ),
            _info(
                "KXHIGHNY-26MAY19-T74",
                event_ticker="KXHIGHNY-26MAY19",
                status=MarketStatus.INITIALIZED,
                open_ms=HIGHNY_OPEN,
                close_ms=HIGHNY_CLOSE,
            ),
            EventInfo(
                "KXFEDDECISION-26JUN",
                "KXFEDDECISION",
                "Economics",
                "quadratic_with_maker_fees",
                Decimal("0.5"),
                TS,
            ),
        ],
        None,  # "" means no further page
    ),
    "event": (
        "/trade-api/v2/events/KXFEDDECISION-26JUN",
        [
            EventInfo("KXFEDDECISION-26JUN", "KXFEDDECISION", "Economics", None, None, TS),
            _info(
                "KXFEDDECISION-26JUN-H0",
                event_ticker="KXFEDDECISION-26JUN",
                status=MarketStatus.ACTIVE,
                open_ms=1_773_943_200_000,  # 2026-03-19T18:00:00Z
                close_ms=1_781_719_140_000,  # 2026-06-17T17:59:00Z
                yes_bid=880_000,
                yes_ask=890_000,
            ),
        ],
        None,
    ),
    "series": (
        "/trade-api/v2/series/KXFEDDECISION",
        [SeriesInfo("KXFEDDECISION", "Economics", "flat", Decimal("0.25"), TS)],
        None,
    ),
    "series_list": (
        "/trade-api/v2/series?category=Economics",
        [
            SeriesInfo("KXHIGHNY", "Climate and Weather", "quadratic", Decimal(1), TS),
            # No primary category: the first of ``categories``.
            SeriesInfo("INXD", "Financials", "quadratic_with_maker_fees", Decimal("0.5"), TS),
        ],
        None,
    ),
}


def test_every_rest_resource_has_a_golden_value() -> None:
    """Each rest/*.json file is covered by a golden expectation."""
    assert {p.stem for p in (RES / "rest").glob("*.json")} == set(REST_GOLDEN)


@pytest.mark.parametrize("name", sorted(REST_GOLDEN))
def test_rest_golden(name: str) -> None:
    """The body parses to exactly the hand-computed events, in order, with the page cursor."""
    path, events, cursor = REST_GOLDEN[name]
    result = parse_rest(path, load(f"rest/{name}.json"), TS)
    assert result.errors == []
    assert result.events == events
    assert result.cursor == cursor


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/trade-api/v2/markets", ("markets", None)),
        ("/markets?limit=1000&status=open", ("markets", None)),
        ("https://external-api.kalshi.com/trade-api/v2/markets/ABC-1", ("market", "ABC-1")),
        ("/trade-api/v2/markets/ABC-1/orderbook?depth=0", ("orderbook", "ABC-1")),
        ("/trade-api/v2/markets/orderbooks", ("orderbooks", None)),
        ("/trade-api/v2/markets/trades", ("other", None)),
        ("/trade-api/v2/events", ("events", None)),
        ("/trade-api/v2/events/EV-1", ("event", "EV-1")),
        ("/trade-api/v2/events/multivariate", ("other", None)),
        ("/trade-api/v2/series", ("series_list", None)),
        ("/trade-api/v2/series/SER", ("series", "SER")),
        ("/trade-api/v2/historical/markets", ("markets", None)),
        ("/trade-api/v2/historical/cutoff", ("other", None)),
        ("/trade-api/v2/portfolio/balance", ("other", None)),
    ],
)
def test_rest_route(path: str, route: tuple[str, str | None]) -> None:
    """Paths (with or without host, prefix and query) map to the body shape they return."""
    assert rest_route(path) == route


def test_rest_other_paths_yield_nothing() -> None:
    """A path that is not market data is accepted and produces no events."""
    result = parse_rest("/trade-api/v2/exchange/status", {"trading_active": True}, TS)
    assert result.kind == "other"
    assert result.events == []


def test_rest_bad_list_item_is_collected_not_fatal() -> None:
    """One broken market in a page is reported in ``errors``; its neighbours still parse."""
    body = load("rest/markets.json")
    body["markets"].insert(1, {"ticker": "BAD-1", "yes_bid_dollars": 0.56})
    body["markets"].append("not an object")
    result = parse_rest("/trade-api/v2/markets", body, TS)
    assert [e.ticker for e in result.events if isinstance(e, MarketInfo)] == [
        "KXHIGHNY-26MAY19-B71.5",
        "KXHIGHNY-26MAY18-B69.5",
    ]
    assert len(result.errors) == 2
    assert result.errors[0].field == "yes_bid_dollars"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/trade-api/v2/markets", {"cursor": ""}),
        ("/trade-api/v2/markets", {"markets": {"not": "a list"}}),
        ("/trade-api/v2/markets/A-1", {"market": None}),
        ("/trade-api/v2/markets/A-1/orderbook", {"orderbook_fp": "nope"}),
        ("/trade-api/v2/markets/A-1/orderbook", {}),
        ("/trade-api/v2/series/S", {"series": []}),
        ("/trade-api/v2/events", ["not", "an", "object"]),
    ],
)
def test_rest_unusable_body_raises(path: str, body: object) -> None:
    """A body whose overall shape is wrong raises :class:`MalformedFrame`."""
    with pytest.raises(MalformedFrame):
        parse_rest(path, body, TS)


def test_rest_market_result_without_settlement_value_implies_payout() -> None:
    """A yes/no result without ``settlement_value_dollars`` pays 1/0."""
    body = {"market": {"ticker": "A-1", "status": "determined", "result": "yes"}}
    (ev,) = parse_rest("/trade-api/v2/markets/A-1", body, TS).events
    assert isinstance(ev, MarketInfo)
    assert (ev.status, ev.result, ev.settlement_value) == (
        MarketStatus.DETERMINED,
        Side.YES,
        1_000_000,
    )


def test_rest_market_unknown_status_is_kept_as_unknown() -> None:
    """A status outside the vocabulary is ``UNKNOWN``, not an error."""
    body = {"market": {"ticker": "A-1", "status": "frozen_solid"}}
    (ev,) = parse_rest("/trade-api/v2/markets/A-1", body, TS).events
    assert isinstance(ev, MarketInfo)
    assert ev.status is MarketStatus.UNKNOWN


# -- numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("0.5600", 560_000),
        ("0.56", 560_000),
        ("0.960", 960_000),
        ("0.0001", 100),
        ("0.123456", 123_456),
        ("1.0000", 1_000_000),
        ("0", 0),
        ("12", 12_000_000),
        ("-0.0200", -20_000),
        ("16948.5", 16_948_500_000),
    ],
)
def test_parse_dollars_exact(text: str, micros: int) -> None:
    """Dollar strings become exact micro-dollars."""
    assert parse_dollars(text) == micros


@pytest.mark.parametrize(
    "bad", ["0.1234567", "1e-2", " 0.5", "0.5 ", "", "-", ".5", "5.", "0,5", "+0.5", "NaN", "٠.٥"]
)
def test_parse_dollars_rejects_non_plain_decimals(bad: str) -> None:
    """Exponents, spaces, 7+ decimals, signs other than ``-`` and non-ASCII digits are refused."""
    with pytest.raises(ValueError, match="dollar amount"):
        parse_dollars(bad)


@pytest.mark.parametrize("bad", [0.56, 56, None, ["0.56"], True])
def test_parse_dollars_rejects_non_strings(bad: object) -> None:
    """Only strings are dollar amounts (a float never becomes money)."""
    with pytest.raises(ValueError, match="decimal string"):
        parse_dollars(bad)  # type: ignore[arg-type]  # deliberately wrong type


def test_parse_price_bounds() -> None:
    """A price must lie in [0, 1] dollars."""
    assert parse_price("0.0000") == 0
    assert parse_price("1.0000") == 1_000_000
    for bad in ("1.0001", "-0.0100", "2"):
        with pytest.raises(ValueError, match="outside"):
            parse_price(bad)


@pytest.mark.parametrize(
    ("text", "centi"),
    [
        ("10.67", 1_067),
        ("300.00", 30_000),
        ("0.01", 1),
        ("-54.00", -5_400),
        ("7", 700),
        ("2.5", 250),
    ],
)
def test_parse_count_exact(text: str, centi: int) -> None:
    """Fixed-point counts become exact centi-contracts (signed, for deltas)."""
    assert parse_count(text) == centi


@pytest.mark.parametrize("bad", ["1.001", "1e2", "ten", "", 10, 10.5])
def test_parse_count_rejects(bad: object) -> None:
    """More than two decimals, exponents, words and non-strings are refused."""
    with pytest.raises(ValueError, match="contract count"):
        parse_count(bad)  # type: ignore[arg-type]  # some cases are deliberately wrong types


def test_legacy_integer_conversions() -> None:
    """Legacy cents and whole-contract integers convert exactly; non-integers are refused."""
    assert cents_to_micros(56) == 560_000
    assert contracts_to_centi(3) == 300
    with pytest.raises(ValueError, match="cents"):
        cents_to_micros(True)
    with pytest.raises(ValueError, match="contract count"):
        contracts_to_centi(3.0)  # type: ignore[arg-type]  # deliberately wrong type


def test_parse_decimal_forms() -> None:
    """Fee multipliers arrive as JSON numbers or strings; all become exact Decimals."""
    assert parse_decimal(1) == Decimal(1)
    assert parse_decimal(0.5) == Decimal("0.5")
    assert parse_decimal(0.1) == Decimal("0.1")  # short repr, not the binary expansion
    assert parse_decimal("0.25") == Decimal("0.25")
    for bad in ("NaN", "Infinity", "x", True, None):
        with pytest.raises(ValueError, match="invalid number"):
            parse_decimal(bad)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-05-20T03:59:00Z", 1_779_249_540_000),
        ("2026-05-20T03:59:00.000Z", 1_779_249_540_000),
        ("2026-05-19T23:59:00-04:00", 1_779_249_540_000),
        ("2026-05-20T03:59:00.123456Z", 1_779_249_540_123),
    ],
)
def test_parse_rfc3339_ms(text: str, ms: int) -> None:
    """RFC 3339 times become epoch milliseconds, honouring the offset."""
    assert parse_rfc3339_ms(text) == ms


def test_parse_rfc3339_refuses_naive_and_garbage() -> None:
    """A time without an offset is ambiguous and refused."""
    for bad in ("2026-05-20T03:59:00", "yesterday"):
        with pytest.raises(ValueError, match="timestamp"):
            parse_rfc3339_ms(bad)


# -- books ----------------------------------------------------------------------------------------


def test_snapshot_drops_zero_levels_and_keeps_last_duplicate() -> None:
    """Zero-size levels vanish; a price given twice keeps its last size; prices compare as
    numbers (``"0.5"`` and ``"0.5000"`` are one level)."""
    msg = {
        "market_ticker": "A-1",
        "yes_dollars_fp": [["0.5", "1.00"], ["0.4000", "0.00"], ["0.5000", "2.00"]],
        "no_dollars_fp": [],
    }
    assert parse_orderbook_snapshot(msg, TS) == BookSnapshot("A-1", ((500_000, 200),), (), TS)


def test_snapshot_with_no_sides_is_an_empty_book() -> None:
    """Both side keys omitted: both ladders empty (an empty book, not an error)."""
    assert parse_orderbook_snapshot({"market_ticker": "A-1"}, TS) == BookSnapshot("A-1", (), (), TS)


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        ({"yes_dollars_fp": []}, "market_ticker"),
        ({"market_ticker": "A-1", "yes_dollars_fp": [["0.5"]]}, "yes_dollars_fp"),
        ({"market_ticker": "A-1", "yes_dollars_fp": [["0.5", "-1.00"]]}, "yes_dollars_fp"),
        ({"market_ticker": "A-1", "no_dollars_fp": [["1.5", "1.00"]]}, "no_dollars_fp"),
        ({"market_ticker": "A-1", "no_dollars_fp": "0.5"}, "no_dollars_fp"),
        ({"market_ticker": "A-1", "yes": [[101, 3]]}, "yes"),
    ],
)
def test_snapshot_malformed(msg: dict[str, Any], field: str) -> None:
    """Bad ladders raise :class:`MalformedFrame` naming the frame type and field."""
    with pytest.raises(MalformedFrame) as info:
        parse_orderbook_snapshot(msg, TS)
    assert (info.value.frame_type, info.value.field) == ("orderbook_snapshot", field)


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        ({"market_ticker": "A-1", "side": "yes", "delta_fp": "1.00"}, "price_dollars"),
        ({"market_ticker": "A-1", "side": "yes", "price_dollars": "0.5"}, "delta_fp"),
        (
            {"market_ticker": "A-1", "side": "maybe", "price_dollars": "0.5", "delta_fp": "1"},
            "side",
        ),
        ({"market_ticker": "A-1", "side": "no", "price_dollars": 0.5, "delta_fp": "1"}, "price"),
        ({"market_ticker": "", "side": "no", "price_dollars": "0.5", "delta_fp": "1"}, "market"),
        ({"market_ticker": "A-1", "side": ["no"], "price_dollars": "0.5", "delta_fp": "1"}, "side"),
    ],
)
def test_delta_malformed(msg: dict[str, Any], field: str) -> None:
    """A delta missing or garbling a field raises, naming it (also after warm caches)."""
    parse_orderbook_delta(
        {"market_ticker": "A-1", "side": "no", "price_dollars": "0.5", "delta_fp": "1"}, TS
    )  # warm the fast path's caches with the valid values
    with pytest.raises(MalformedFrame) as info:
        parse_orderbook_delta(msg, TS)
    assert info.value.frame_type == "orderbook_delta"
    assert info.value.field.startswith(field)


def test_trade_taker_side_fallbacks_and_no_price_only() -> None:
    """Taker side: outcome side, else deprecated ``taker_side``, else book side (bid ≡ yes);
    a trade with only a NO price has YES price ``1 − no``."""
    base = {"market_ticker": "A-1", "count_fp": "1.00"}
    ev = parse_trade({**base, "no_price_dollars": "0.6400", "taker_book_side": "ask"}, TS)
    assert ev == TradePrint("A-1", 360_000, 100, Side.NO, TS)
    ev = parse_trade({**base, "yes_price_dollars": "0.1", "taker_book_side": "bid"}, TS)
    assert ev == TradePrint("A-1", 100_000, 100, Side.YES, TS)
    ev = parse_trade({**base, "yes_price_dollars": "0.1"}, TS)
    assert ev.taker_side is None
    with pytest.raises(MalformedFrame):
        parse_trade(base, TS)


def test_ticker_with_only_some_fields_leaves_the_rest_unknown() -> None:
    """The ticker is sent when any field changes; absent fields are ``None``."""
    ev = parse_ticker({"market_ticker": "A-1", "yes_bid_dollars": "0.4500"}, TS)
    assert ev == TickerUpdate("A-1", None, 450_000, None, None, None, None, TS)


def test_command_reply_subscribed_needs_a_sid() -> None:
    """A ``subscribed`` reply without a sid is malformed."""
    with pytest.raises(MalformedFrame):
        parse_command_reply({"id": 1, "type": "subscribed", "msg": {"channel": "ticker"}})


def test_command_reply_refuses_data_frames() -> None:
    """Only the four reply types are command replies."""
    with pytest.raises(MalformedFrame):
        parse_command_reply(load("ws/ticker.json"))


def test_malformed_frame_message_names_type_and_field() -> None:
    """The error text says which frame type and which field."""
    err = MalformedFrame("orderbook_delta", "delta_fp", "missing")
    assert str(err) == "orderbook_delta: field 'delta_fp': missing"
