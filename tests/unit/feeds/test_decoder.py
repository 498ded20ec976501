"""KalshiDecoder: sid tracking, stale drops, gaps → invalidation + resync, malformed input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from evoarena.engine.book import MarketBook
from evoarena.feeds.events import (
    BookDelta,
    BookInvalidated,
    BookSnapshot,
    MarketDetermined,
    MarketEvent,
    Side,
    TickerUpdate,
)
from evoarena.feeds.kalshi.decoder import KalshiDecoder

RES = Path(__file__).resolve().parents[2] / "resources" / "kalshi"
T = 1_700_000_000_000


def snap(sid: int, seq: int, ticker: str, yes: list[list[str]] | None = None) -> dict[str, Any]:
    """An ``orderbook_snapshot`` frame (NO side omitted)."""
    msg: dict[str, Any] = {"market_ticker": ticker}
    if yes is not None:
        msg["yes_dollars_fp"] = yes
    return {"type": "orderbook_snapshot", "sid": sid, "seq": seq, "msg": msg}


def delta(
    sid: int, seq: int, ticker: str, price: str = "0.5000", d: str = "1.00", side: str = "yes"
) -> dict[str, Any]:
    """An ``orderbook_delta`` frame."""
    return {
        "type": "orderbook_delta",
        "sid": sid,
        "seq": seq,
        "msg": {"market_ticker": ticker, "price_dollars": price, "delta_fp": d, "side": side},
    }


def subscribed(cmd_id: int, sid: int, channel: str) -> dict[str, Any]:
    """A ``subscribed`` reply."""
    return {"id": cmd_id, "type": "subscribed", "msg": {"channel": channel, "sid": sid}}


def feed(dec: KalshiDecoder, frames: list[dict[str, Any]]) -> list[MarketEvent]:
    """Decode frames in order; all events, flattened."""
    out: list[MarketEvent] = []
    for i, f in enumerate(frames):
        out.extend(dec.decode_ws(f, T + i))
    return out


def test_in_order_frames_emit_their_events() -> None:
    """Snapshot then consecutive deltas: one event each, no gaps, markets tracked per sid."""
    dec = KalshiDecoder()
    evs = feed(
        dec,
        [
            subscribed(1, 2, "orderbook_delta"),
            snap(2, 1, "A", [["0.5000", "3.00"]]),
            delta(2, 2, "A", d="-1.00"),
            snap(2, 3, "B"),
            delta(2, 4, "B", price="0.1", d="2.00", side="no"),
        ],
    )
    assert evs == [
        BookSnapshot("A", ((500_000, 300),), (), T + 1),
        BookDelta("A", Side.YES, 500_000, -100, T + 2),
        BookSnapshot("B", (), (), T + 3),
        BookDelta("B", Side.NO, 100_000, 200, T + 4),
    ]
    assert dec.channels == {2: "orderbook_delta"}
    assert dec.tickers_on(2) == ["A", "B"]
    assert dec.counters.gaps == 0
    assert dec.counters.frames_by_type == {
        "subscribed": 1,
        "orderbook_snapshot": 2,
        "orderbook_delta": 2,
    }
    assert len(dec.replies) == 1


def test_stale_and_duplicate_frames_are_dropped() -> None:
    """A repeated or older seq yields nothing and is counted; the stream then continues."""
    dec = KalshiDecoder()
    feed(dec, [snap(2, 1, "A"), delta(2, 2, "A")])
    assert dec.decode_ws(delta(2, 2, "A"), T) == []
    assert dec.decode_ws(delta(2, 1, "A"), T) == []
    assert dec.decode_ws(snap(2, 2, "A", [["0.9", "1"]]), T) == []
    assert dec.counters.stale_frames == 3
    assert dec.decode_ws(delta(2, 3, "A"), T) == [BookDelta("A", Side.YES, 500_000, 100, T)]
    assert dec.counters.gaps == 0


def test_gap_invalidates_only_that_sids_markets_and_queues_a_resync() -> None:
    """seq 2 → 4 on sid 2 distrusts A and B (sid 2) but not C (sid 3); a resync is queued."""
    dec = KalshiDecoder()
    feed(dec, [snap(2, 1, "B"), snap(2, 2, "A"), snap(3, 1, "C")])
    evs = dec.decode_ws(delta(2, 4, "A"), T + 50)
    assert evs[0] == BookInvalidated(("A", "B"), "seq gap on sid 2", T + 50)
    assert dec.counters.gaps == 1
    assert dec.counters.invalidations == 1
    assert dec.take_resync_requests() == {2: ["A", "B"]}
    assert dec.take_resync_requests() == {}  # taking clears the queue
    # sid 3 is untouched and continues in order.
    assert dec.decode_ws(delta(3, 2, "C"), T) == [BookDelta("C", Side.YES, 500_000, 100, T)]


def test_the_next_snapshot_reseeds_and_leaves_the_resync_queue() -> None:
    """After a gap, a snapshot of A clears A's pending resync; B still needs one."""
    dec = KalshiDecoder()
    book = MarketBook()
    frames = [
        snap(2, 1, "A", [["0.4000", "5.00"]]),
        snap(2, 2, "B", [["0.3000", "5.00"]]),
        delta(2, 5, "A", price="0.4000", d="1.00"),  # gap: 3 and 4 lost
        delta(2, 6, "B", price="0.3000", d="1.00"),
    ]
    for ev in feed(dec, frames):
        book.apply(ev)
    assert book.stale_tickers() == ["A", "B"]
    a, b = book.market("A"), book.market("B")
    assert a.yes_bids == {400_000: 500}  # the deltas after the gap were not applied
    assert b.yes_bids == {300_000: 500}
    for ev in dec.decode_ws(snap(2, 7, "A", [["0.4100", "2.00"]]), T):
        book.apply(ev)
    assert book.stale_tickers() == ["B"]
    assert a.yes_bids == {410_000: 200}
    assert dec.take_resync_requests() == {2: ["B"]}


def test_gap_revealed_by_a_new_markets_delta_invalidates_that_market_too() -> None:
    """A delta that reveals a gap is distrusted even if its market was not yet seen on the sid
    (its snapshot may be among the lost frames)."""
    dec = KalshiDecoder()
    book = MarketBook()
    book.apply(BookSnapshot("N", ((200_000, 100),), (), T))  # e.g. seeded from REST
    feed(dec, [snap(2, 1, "A")])
    evs = dec.decode_ws(delta(2, 3, "N", price="0.2000", d="-1.00"), T)
    assert evs[0] == BookInvalidated(("A", "N"), "seq gap on sid 2", T)
    for ev in evs:
        book.apply(ev)
    assert book.market("N").stale
    assert book.market("N").yes_bids == {200_000: 100}


def test_gap_with_no_known_markets_is_counted() -> None:
    """A gap on a lifecycle sid (no books) counts but invalidates nothing."""
    dec = KalshiDecoder()
    lc = json.loads((RES / "ws" / "lifecycle_determined.json").read_text())
    lc2 = {**lc, "seq": lc["seq"] + 5}
    evs = feed(dec, [lc, lc2])
    assert dec.counters.gaps == 1
    assert not any(isinstance(e, BookInvalidated) for e in evs)
    assert [type(e) for e in evs] == [MarketDetermined, MarketDetermined]


def test_subscribed_and_unsubscribed_restart_the_sids_numbering() -> None:
    """A sid re-announced by ``subscribed`` (or dropped by ``unsubscribed``) starts afresh."""
    dec = KalshiDecoder()
    feed(dec, [subscribed(1, 2, "orderbook_delta"), snap(2, 1, "A"), delta(2, 2, "A")])
    assert dec.decode_ws({"id": 5, "sid": 2, "seq": 3, "type": "unsubscribed"}, T) == []
    assert dec.tickers_on(2) == []
    assert 2 not in dec.channels
    feed(dec, [subscribed(6, 2, "orderbook_delta"), snap(2, 1, "A")])
    assert dec.counters.gaps == 0
    assert dec.counters.stale_frames == 0


def test_ok_reply_adds_markets_and_list_reply_names_channels() -> None:
    """``ok`` after update_subscription lists the sid's markets; a gap then covers them all."""
    dec = KalshiDecoder()
    ok = json.loads((RES / "ws" / "reply_ok.json").read_text())
    lst = json.loads((RES / "ws" / "reply_list_subscriptions.json").read_text())
    feed(dec, [ok, lst])
    assert dec.tickers_on(456) == ["FED-23DEC-T3.00", "FED-23DEC-T3.25"]
    assert dec.channels == {1: "orderbook_delta", 2: "ticker"}
    # the ok reply (seq 222) holds its place in the sid's count: the stream goes on at 223
    feed(dec, [snap(456, 223, "FED-23DEC-T3.00")])
    evs = dec.decode_ws(delta(456, 225, "FED-23DEC-T3.00"), T)
    assert evs[0] == BookInvalidated(
        ("FED-23DEC-T3.00", "FED-23DEC-T3.25"), "seq gap on sid 456", T
    )
    assert [r.type for r in dec.replies] == ["ok", "ok"]


def test_ok_reply_seq_is_counted_in_its_sid_stream() -> None:
    """update_subscription's ok takes the next seq of the sid: no spurious gap after it."""
    dec = KalshiDecoder()
    feed(dec, [snap(7, 1, "A"), delta(7, 2, "A")])
    ok = {"id": 5, "sid": 7, "seq": 3, "type": "ok", "msg": {"market_tickers": ["A", "B"]}}
    assert dec.decode_ws(ok, T) == []
    evs = dec.decode_ws(delta(7, 4, "A"), T)
    assert [type(e).__name__ for e in evs] == ["BookDelta"]
    assert dec.counters.gaps == 0
    # an ok that skips numbers is a gap like any other frame
    dec.decode_ws({**ok, "seq": 9}, T)
    assert dec.counters.gaps == 1


def test_command_error_is_counted_and_queued() -> None:
    """An ``error`` reply is kept for the client and counted; it emits no events."""
    dec = KalshiDecoder()
    err = json.loads((RES / "ws" / "reply_error.json").read_text())
    assert dec.decode_ws(err, T) == []
    assert dec.counters.command_errors == 1
    assert dec.replies[-1].error_code == 16


def test_unknown_types_are_counted_not_fatal() -> None:
    """Unknown frame types and unknown lifecycle event types are counted; decoding continues."""
    dec = KalshiDecoder()
    unknown = json.loads((RES / "ws" / "unknown_type.json").read_text())
    lc_unknown = json.loads((RES / "ws" / "lifecycle_unknown_event.json").read_text())
    assert dec.decode_ws(unknown, T) == []
    assert dec.decode_ws(unknown, T) == []
    assert dec.decode_ws(lc_unknown, T) == []
    assert dec.counters.unknown_types == {
        "multivariate_lookup": 2,
        "market_lifecycle_v2/fractional_trading_enabled": 1,
    }
    assert dec.counters.malformed == 0
    assert dec.decode_ws(snap(2, 1, "A"), T) == [BookSnapshot("A", (), (), T)]


def test_lifecycle_event_types_are_counted() -> None:
    """Every resource lifecycle frame is counted by event type; ignorable ones emit nothing."""
    dec = KalshiDecoder()
    names = sorted(p.name for p in (RES / "ws").glob("lifecycle_*.json"))
    for name in names:
        frame = json.loads((RES / "ws" / name).read_text())
        frame.pop("seq")  # the files share sid 13 with unrelated seqs
        dec.decode_ws(frame, T)
    c = dec.counters
    assert c.lifecycle_by_event_type == {
        "activated": 1,
        "close_date_updated": 1,
        "created": 1,
        "deactivated": 1,
        "determined": 3,
        "fractional_trading_enabled": 1,
        "metadata_updated": 1,
        "price_level_structure_updated": 1,
        "settled": 1,
    }
    assert c.lifecycle_ignored == 2
    assert c.malformed == 0


MALFORMED: list[object] = [
    [],
    "orderbook_delta",
    {},
    {"type": 7},
    {"type": "orderbook_delta", "sid": 2, "seq": "3", "msg": {}},
    {"type": "orderbook_delta", "sid": "2", "seq": 3, "msg": {}},
    {"type": "orderbook_snapshot", "sid": 2, "seq": 1, "msg": "not an object"},
    {"type": "ticker", "sid": 11, "msg": {"market_ticker": "A", "price_dollars": 0.48}},
    {"type": "trade", "sid": 11, "msg": {"market_ticker": "A"}},
    {"type": "market_lifecycle_v2", "sid": 13, "msg": {"market_ticker": "A"}},
    {"type": "event_fee_update", "sid": 13, "msg": {"fee_type_override": "flat"}},
    {"type": "subscribed", "id": 1, "msg": {"channel": "ticker"}},
    {"type": "ok", "id": 1, "msg": {"market_tickers": "A"}},
]


def test_malformed_frames_are_counted_never_raised() -> None:
    """Garbage of every kind is counted by type; nothing raises; good frames still decode."""
    dec = KalshiDecoder()
    for frame in MALFORMED:
        assert dec.decode_ws(frame, T) == []  # type: ignore[arg-type]  # deliberately bad input
    c = dec.counters
    assert c.malformed == len(MALFORMED)
    assert c.malformed_by_type["?"] == 4
    assert c.malformed_by_type["orderbook_delta"] == 2
    assert c.ws_frames == len(MALFORMED)
    assert dec.decode_ws(snap(5, 1, "A"), T) == [BookSnapshot("A", (), (), T)]


def test_malformed_book_frame_invalidates_its_market() -> None:
    """An unreadable delta (in sequence) leaves its market's book untrustworthy."""
    dec = KalshiDecoder()
    feed(dec, [snap(2, 1, "A"), snap(2, 2, "B")])
    bad = delta(2, 3, "A", d="1.001")
    assert dec.decode_ws(bad, T) == [
        BookInvalidated(("A",), "malformed orderbook_delta on sid 2", T)
    ]
    assert dec.counters.malformed == 1
    assert dec.take_resync_requests() == {2: ["A"]}
    # The bad frame consumed its seq: the next one is in order.
    assert dec.decode_ws(delta(2, 4, "B"), T) == [BookDelta("B", Side.YES, 500_000, 100, T)]


def test_reset_session_invalidates_everything_and_forgets_sids() -> None:
    """A new connection: every book fed by a sid is distrusted; seq numbering restarts."""
    dec = KalshiDecoder()
    feed(dec, [subscribed(1, 2, "orderbook_delta"), snap(2, 1, "A"), snap(2, 2, "B")])
    feed(dec, [snap(3, 1, "C")])
    assert dec.reset_session(T + 9) == [
        BookInvalidated(("A", "B", "C"), "websocket session reset", T + 9)
    ]
    assert dec.channels == {}
    assert dec.tickers_on(2) == []
    assert dec.take_resync_requests() == {}
    assert dec.decode_ws(snap(2, 1, "A"), T) == [BookSnapshot("A", (), (), T)]
    assert dec.counters.stale_frames == 0
    assert KalshiDecoder().reset_session(T) == []


def test_frames_without_seq_are_not_sequenced() -> None:
    """Ticker and trade frames (no ``seq``) always pass and do not touch the sid's position."""
    dec = KalshiDecoder()
    tick = json.loads((RES / "ws" / "ticker.json").read_text())
    evs = feed(dec, [tick, tick])
    assert [type(e) for e in evs] == [TickerUpdate, TickerUpdate]
    assert dec.sequencer.last(11) is None


def test_decode_rest_counts_kinds_and_failures() -> None:
    """Non-2xx responses decode to nothing; a broken body is counted as malformed."""
    dec = KalshiDecoder()
    body = json.loads((RES / "rest" / "markets.json").read_text())
    assert len(dec.decode_rest("/trade-api/v2/markets", {}, 200, body, T)) == 2
    assert dec.decode_rest("/trade-api/v2/markets", {}, 429, {"code": "too_many"}, T) == []
    assert dec.decode_rest("/trade-api/v2/markets/A", {}, 200, {"market": 3}, T) == []
    c = dec.counters
    assert c.rest_responses == 3
    assert c.rest_by_kind == {"markets": 2, "market": 1}
    assert c.rest_failed_by_kind == {"markets": 1}
    assert c.malformed_by_type == {"rest market": 1}


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["", "0.5", "yes", "A", "x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)
_frame = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            [
                "orderbook_snapshot",
                "orderbook_delta",
                "ticker",
                "trade",
                "market_lifecycle_v2",
                "event_lifecycle",
                "event_fee_update",
                "subscribed",
                "ok",
                "unsubscribed",
                "error",
                "mystery",
            ]
        ),
        "sid": st.integers(0, 3) | _json,
        "seq": st.integers(0, 4) | _json,
        "id": st.integers(0, 3) | _json,
        "msg": st.fixed_dictionaries(
            {},
            optional={
                k: _json
                for k in (
                    "market_ticker",
                    "event_type",
                    "side",
                    "price_dollars",
                    "delta_fp",
                    "yes_dollars_fp",
                    "channel",
                    "sid",
                    "market_tickers",
                    "event_ticker",
                )
            },
        )
        | _json,
    },
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_frame | _json, max_size=6))
def test_decode_never_raises(frames: list[Any]) -> None:
    """Whatever JSON arrives, decoding returns events and counts; it never raises."""
    dec = KalshiDecoder()
    for f in frames:
        assert isinstance(dec.decode_ws(f, T), list)
    assert dec.counters.ws_frames == len(frames)
