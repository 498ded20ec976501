"""KalshiWsClient against the fake Kalshi WebSocket server on 127.0.0.1."""

from __future__ import annotations

import functools
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from fake_kalshi import (
    KEY_ID,
    T0_MS,
    WS_PATH,
    EventCollector,
    FakeKalshi,
    headers_valid,
    make_signer,
    other_rsa_key,
)

from evoarena.clock import VirtualClock
from evoarena.engine.book import MarketBook
from evoarena.errors import AuthError, FatalFeedError
from evoarena.feeds.events import (
    BookDelta,
    BookInvalidated,
    BookSnapshot,
    MarketDetermined,
    Side,
    TickerUpdate,
    TradePrint,
)
from evoarena.feeds.kalshi.decoder import WS_RECONNECT_MARK, KalshiDecoder
from evoarena.feeds.kalshi.ws import KalshiWsClient
from evoarena.feeds.recording import RecordingReader, RecordingWriter

pytestmark = pytest.mark.anyio

PER_MARKET = ("orderbook_delta", "ticker", "trade")


def _client(
    fk: FakeKalshi,
    clock: VirtualClock | None = None,
    *,
    recorder: RecordingWriter | None = None,
    key: Any = None,
    **overrides: Any,
) -> KalshiWsClient:
    return KalshiWsClient(
        fk.settings(**overrides),
        clock if clock is not None else VirtualClock(T0_MS),
        make_signer(key),
        KalshiDecoder(),
        recorder=recorder,
    )


@asynccontextmanager
async def running(ws: KalshiWsClient, sink: EventCollector) -> AsyncIterator[None]:
    """Run the client in the background for the duration of the block."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(ws.run, sink)
        yield
        tg.cancel_scope.cancel()


def _micros(price: str) -> int:
    return int(Decimal(price) * 1_000_000)


def _centi(count: Decimal) -> int:
    return int(count * 100)


def book_matches(book: MarketBook, fk: FakeKalshi, ticker: str) -> bool:
    """The client-side book equals the fake server's book for ``ticker``, and is fresh."""
    m = book.get(ticker)
    if m is None or not m.has_book or m.stale:
        return False
    server = fk.books[ticker]
    yes = {_micros(p): _centi(c) for p, c in server["yes"].items()}
    no = {_micros(p): _centi(c) for p, c in server["no"].items()}
    return m.yes_bids == yes and m.no_bids == no


def _snapshotted(sink: EventCollector, *tickers: str) -> bool:
    seen = {ev.ticker for ev in sink.of_type(BookSnapshot)}
    return set(tickers) <= seen


def _serving(fk: FakeKalshi, n: int) -> bool:
    return fk.accepted == n and fk.session is not None


def _snapshot_count(sink: EventCollector, n: int) -> bool:
    return len(sink.of_type(BookSnapshot)) == n


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_handshake_is_signed_and_channels_are_subscribed_per_reference() -> None:
    """Signed handshake; one subscribe per channel and chunk; lifecycle without tickers."""
    clock = VirtualClock(T0_MS + 42)
    sink = EventCollector()
    async with FakeKalshi() as fk:
        for t in ("A", "B", "C"):
            fk.set_book(t, [("0.4000", "10.00")], [("0.5500", "5.00")])
        ws = _client(fk, clock, orderbook_tickers_per_subscription=2)
        await ws.set_markets(["C", "A", "B"])
        async with running(ws, sink):
            await sink.wait_for(lambda: _snapshotted(sink, "A", "B", "C"))
            await fk.wait_for(lambda: len(fk.commands_named("subscribe")) == 7)
    assert fk.accepted == 1
    assert fk.rejected == 0
    headers = fk.handshake_headers[0]
    assert headers["KALSHI-ACCESS-KEY"] == KEY_ID
    assert headers["KALSHI-ACCESS-TIMESTAMP"] == str(T0_MS + 42)
    assert headers_valid(fk.public_key, headers, "GET", WS_PATH)
    subs = fk.commands_named("subscribe")
    assert [c["id"] for c in subs] == list(range(1, 8))
    by_channel: dict[str, list[Any]] = {}
    for c in subs:
        (channel,) = c["params"]["channels"]
        by_channel.setdefault(channel, []).append(c["params"].get("market_tickers"))
    assert by_channel["market_lifecycle_v2"] == [None]
    for channel in PER_MARKET:
        assert by_channel[channel] == [["A", "B"], ["C"]]


async def test_snapshots_and_deltas_reach_the_sink_in_order() -> None:
    """Snapshots then deltas arrive in server order and move the book exactly."""
    sink = EventCollector()
    async with FakeKalshi() as fk:
        fk.set_book("A", [("0.4000", "10.00"), ("0.3800", "3.00")], [("0.5500", "20.00")])
        ws = _client(fk)
        await ws.set_markets(["A"])
        async with running(ws, sink):
            await sink.wait_for(lambda: _snapshotted(sink, "A"))
            await fk.send_delta("A", "yes", "0.4100", "7.50")
            await fk.send_delta("A", "no", "0.5500", "-20.00")
            await fk.send_delta("A", "yes", "0.3800", "-1.25")
            await sink.wait_for(lambda: len(sink.of_type(BookDelta)) == 3)
            matches = book_matches(sink.book, fk, "A")
    book_events = [ev for ev in sink.events if isinstance(ev, BookSnapshot | BookDelta)]
    assert isinstance(book_events[0], BookSnapshot)
    deltas = [ev for ev in book_events[1:] if isinstance(ev, BookDelta)]
    assert len(deltas) == len(book_events) - 1
    assert [(d.side, d.price, d.delta) for d in deltas] == [
        (Side.YES, 410_000, 750),
        (Side.NO, 550_000, -2000),
        (Side.YES, 380_000, -125),
    ]
    assert matches
    assert sink.book.market("A").best_yes_bid == 410_000
    assert sink.book.market("A").best_no_bid is None


async def test_seq_gap_invalidates_and_resyncs_the_book() -> None:
    """A skipped seq marks the sid's books stale, asks get_snapshot, and the book recovers."""
    sink = EventCollector()
    async with FakeKalshi() as fk:
        fk.set_book("A", [("0.4000", "10.00")], [("0.5500", "20.00")])
        fk.set_book("B", [("0.2000", "1.00")], [])
        ws = _client(fk)
        await ws.set_markets(["A", "B"])
        async with running(ws, sink):
            await sink.wait_for(lambda: _snapshotted(sink, "A", "B"))
            await fk.send_delta("A", "yes", "0.4000", "5.00", skip_seq=True)
            await sink.wait_for(lambda: bool(sink.of_type(BookInvalidated)))
            stale_now = sink.book.stale_tickers()
            await sink.wait_for(
                lambda: book_matches(sink.book, fk, "A") and book_matches(sink.book, fk, "B")
            )
            sid = fk.sid_for("A")
    invalid = sink.of_type(BookInvalidated)[0]
    assert invalid.tickers == ("A", "B")
    assert invalid.reason.startswith("seq gap")
    assert stale_now == ["A", "B"]
    (resync,) = fk.commands_named("update_subscription")
    assert resync["params"] == {
        "sids": [sid],
        "market_tickers": ["A", "B"],
        "action": "get_snapshot",
    }
    assert sink.book.market("A").yes_bids == {400_000: 1500}  # includes the lost delta
    assert ws.counters.resyncs == 1


async def test_refused_get_snapshot_falls_back_to_resubscribing() -> None:
    """If Kalshi refuses get_snapshot, the subscription is replaced and re-seeded."""
    sink = EventCollector()
    async with FakeKalshi() as fk:
        fk.refuse_get_snapshot = True
        fk.set_book("A", [("0.4000", "10.00")], [])
        ws = _client(fk)
        await ws.set_markets(["A"])
        async with running(ws, sink):
            await sink.wait_for(lambda: _snapshotted(sink, "A"))
            old_sid = fk.sid_for("A")
            await fk.send_delta("A", "yes", "0.3000", "2.00", skip_seq=True)
            await sink.wait_for(
                lambda: len(sink.of_type(BookSnapshot)) == 2 and book_matches(sink.book, fk, "A")
            )
            new_sid = fk.sid_for("A")
    assert new_sid != old_sid
    assert fk.commands_named("unsubscribe")[0]["params"] == {"sids": [old_sid]}
    assert ws.counters.resync_fallbacks == 1


async def test_dropped_connection_reconnects_with_backoff_and_resubscribes(
    tmp_path: Path,
) -> None:
    """A cut connection: mark recorded, books invalidated, backoff, same subscriptions again."""
    clock = VirtualClock(T0_MS)
    sink = EventCollector()
    path = tmp_path / "rec.jsonl"
    async with FakeKalshi() as fk:
        fk.set_book("A", [("0.4000", "10.00")], [("0.5500", "1.00")])
        fk.set_book("B", [("0.1000", "1.00")], [("0.8000", "1.00")])
        with RecordingWriter(path, "test", T0_MS) as rec:
            ws = _client(
                fk,
                clock,
                recorder=rec,
                reconnect_initial_delay_secs=1.0,
                healthy_session_secs=3600,
            )
            await ws.set_markets(["A", "B"])
            async with running(ws, sink):
                await sink.wait_for(lambda: _snapshotted(sink, "A", "B"))
                first_subs = [c["params"] for c in fk.commands_named("subscribe", conn=0)]
                fk.drop()
                await fk.wait_for(lambda: fk.accepted == 2)
                await sink.wait_for(lambda: len(sink.of_type(BookSnapshot)) == 4)
                await fk.send_delta("A", "yes", "0.4000", "1.00")
                await sink.wait_for(lambda: len(sink.of_type(BookDelta)) == 1)
                fresh = [book_matches(sink.book, fk, t) for t in ("A", "B")]
    second_subs = [c["params"] for c in fk.commands_named("subscribe", conn=1)]
    assert second_subs == first_subs
    invalid = sink.of_type(BookInvalidated)
    assert len(invalid) == 2  # the drop, and the shutdown at the end of the test
    assert invalid[0].tickers == ("A", "B")
    assert invalid[0].reason == "websocket session reset"
    assert fresh == [True, True]
    (backoff,) = clock.slept_secs
    assert 0.5 <= backoff <= 1.0
    assert ws.counters.reconnects == 1
    with RecordingReader(path) as reader:
        marks = [(i, item.payload) for i, item in enumerate(reader) if item.kind == "mark"]
    assert [m for _, m in marks] == [{"kind": WS_RECONNECT_MARK}, {"kind": WS_RECONNECT_MARK}]


async def test_backoff_grows_across_short_sessions_and_resets_after_a_healthy_one() -> None:
    """Unhealthy sessions back off longer each time; healthy ones reconnect at once."""
    for healthy_secs, expect_sleeps in ((3600.0, True), (0.0, False)):
        clock = VirtualClock(T0_MS)
        sink = EventCollector()
        async with FakeKalshi() as fk:
            ws = _client(
                fk,
                clock,
                reconnect_initial_delay_secs=1.0,
                healthy_session_secs=healthy_secs,
            )
            await ws.set_markets(["A"])
            async with running(ws, sink):
                for n in (1, 2, 3):
                    await fk.wait_for(functools.partial(_serving, fk, n))
                    await sink.wait_for(functools.partial(_snapshot_count, sink, n))
                    fk.drop()
                await fk.wait_for(lambda: fk.accepted == 4)
        if expect_sleeps:
            assert len(clock.slept_secs) == 3
            for n, slept in enumerate(clock.slept_secs, start=1):
                assert 2 ** (n - 1) / 2 <= slept <= 2 ** (n - 1)
        else:
            assert clock.slept_secs == []


async def test_recording_holds_every_server_frame_in_order(tmp_path: Path) -> None:
    """Recorder lines are the server's frames, byte for byte and in order (garbage wrapped)."""
    path = tmp_path / "rec.jsonl"
    sink = EventCollector()
    async with FakeKalshi() as fk:
        fk.set_book("A", [("0.4000", "10.00")], [("0.5500", "20.00")])
        with RecordingWriter(path, "test", T0_MS) as rec:
            ws = _client(fk, recorder=rec)
            await ws.set_markets(["A"])
            async with running(ws, sink):
                await sink.wait_for(lambda: _snapshotted(sink, "A"))
                await fk.wait_for(lambda: len(fk.sent) == 5)  # 4 subscribed + 1 snapshot
                await fk.send_delta("A", "yes", "0.4200", "1.00")
                await fk.send_ticker("A")
                await fk.send_trade("A")
                await fk.send_text("this is not json")
                await fk.send_lifecycle("A", "deactivated", is_deactivated=True)
                await sink.wait_for(lambda: ws.counters.frames == len(fk.sent))
        sent = list(fk.sent)
    with RecordingReader(path) as reader:
        recorded = [item.payload for item in reader if item.kind == "ws"]
    expected = []
    for text in sent:
        try:
            expected.append(orjson.loads(text))
        except orjson.JSONDecodeError:
            expected.append({"type": "evoarena_unparsed", "raw": text})
    assert recorded == expected
    raw_lines = path.read_bytes().splitlines()
    for text in sent[:5]:
        assert any(line.endswith(b',"ws":' + text.encode() + b"}") for line in raw_lines)


async def test_update_subscription_adds_and_removes_markets() -> None:
    """Changing the market set sends add_markets/delete_markets on the existing sids."""
    sink = EventCollector()
    async with FakeKalshi() as fk:
        for t in ("A", "B", "C"):
            fk.set_book(t, [("0.4000", "1.00")], [])
        ws = _client(fk)
        await ws.set_markets(["A", "B"])
        async with running(ws, sink):
            await sink.wait_for(lambda: _snapshotted(sink, "A", "B"))
            await fk.wait_for(lambda: len(fk.commands_named("subscribe")) == 4)
            await ws.set_markets(["A", "C"])
            await sink.wait_for(lambda: _snapshotted(sink, "C"))
            await fk.wait_for(lambda: len(fk.commands_named("update_subscription")) == 6)
            after_change = {ch: fk.subscribed(ch) for ch in PER_MARKET}
            sids = {ch: fk.sid_for("A", ch) for ch in PER_MARKET}
            await ws.set_markets([])
            await fk.wait_for(lambda: len(fk.commands_named("unsubscribe")) == 3)
            remaining = {s.channel for s in fk.session.subs.values()} if fk.session else set()
    updates = [c["params"] for c in fk.commands_named("update_subscription")]
    for ch in PER_MARKET:
        assert after_change[ch] == {"A", "C"}
        assert {"sids": [sids[ch]], "market_tickers": ["C"], "action": "add_markets"} in updates
        assert {"sids": [sids[ch]], "market_tickers": ["B"], "action": "delete_markets"} in updates
    assert remaining == {"market_lifecycle_v2"}
    assert ws.orderbook_tickers() == frozenset()


async def test_unknown_market_is_dropped_and_the_rest_subscribed() -> None:
    """Error 16 (market not found) drops that market for good; the others still subscribe."""
    sink = EventCollector()
    async with FakeKalshi() as fk:
        fk.unknown_markets = {"GONE"}
        fk.set_book("A", [("0.4000", "1.00")], [])
        ws = _client(fk)
        await ws.set_markets(["A", "GONE"])
        async with running(ws, sink):
            await sink.wait_for(lambda: _snapshotted(sink, "A"))
            await fk.wait_for(lambda: all(fk.subscribed(ch) == {"A"} for ch in PER_MARKET))
            await ws.set_markets(["A", "GONE"])
    assert ws.dropped == {"GONE"}
    assert ws.orderbook_tickers() == frozenset({"A"})
    assert ws.counters.dropped_markets == 1


async def test_malformed_frames_are_counted_and_skipped() -> None:
    """Garbage and a malformed delta are counted; the book is re-seeded and keeps working."""
    sink = EventCollector()
    async with FakeKalshi() as fk:
        fk.set_book("A", [("0.4000", "10.00")], [])
        ws = _client(fk)
        await ws.set_markets(["A"])
        async with running(ws, sink):
            await sink.wait_for(lambda: _snapshotted(sink, "A"))
            sub = fk.sub_for("A")
            await fk.send_text("{not json")
            sub.seq += 1
            bad = {"market_ticker": "A", "price_dollars": "abc", "delta_fp": "1.00", "side": "yes"}
            await fk.send_frame(
                {"type": "orderbook_delta", "sid": sub.sid, "seq": sub.seq, "msg": bad}
            )
            await sink.wait_for(lambda: len(sink.of_type(BookSnapshot)) == 2)
            await fk.send_delta("A", "yes", "0.4000", "-4.00")
            await sink.wait_for(lambda: len(sink.of_type(BookDelta)) == 1)
            matches = book_matches(sink.book, fk, "A")
    assert ws.counters.not_json == 1
    assert ws.decoder.counters.malformed == 1
    assert matches
    assert sink.book.market("A").yes_bids == {400_000: 600}


async def test_ticker_trade_and_lifecycle_messages_are_decoded() -> None:
    """The public channels reach the sink as domain events."""
    sink = EventCollector()
    async with FakeKalshi() as fk:
        fk.set_book("A", [("0.4000", "1.00")], [])
        ws = _client(fk)
        await ws.set_markets(["A"])
        async with running(ws, sink):
            await sink.wait_for(lambda: _snapshotted(sink, "A"))
            await fk.wait_for(lambda: len(fk.commands_named("subscribe")) == 4)
            await fk.send_ticker("A", price_dollars="0.4700")
            await fk.send_trade("A", yes_price="0.4700", count="2.50", taker="no")
            await fk.send_lifecycle(
                "A", "determined", result="yes", settlement_value="1.0000", determination_ts=1
            )
            await sink.wait_for(lambda: bool(sink.of_type(MarketDetermined)))
    (tick,) = sink.of_type(TickerUpdate)
    (trade,) = sink.of_type(TradePrint)
    (done,) = sink.of_type(MarketDetermined)
    assert tick.last_price == 470_000
    assert (trade.yes_price, trade.count, trade.taker_side) == (470_000, 250, Side.NO)
    assert (done.result, done.settlement_value) == (Side.YES, 1_000_000)
    assert sink.book.market("A").settlement_value == 1_000_000


async def test_server_pings_are_answered() -> None:
    """Kalshi's heartbeat pings get pongs (the connection stays up)."""
    sink = EventCollector()
    async with FakeKalshi() as fk:
        ws = _client(fk)
        await ws.set_markets(["A"])
        async with running(ws, sink):
            await fk.wait_for(lambda: fk.session is not None)
            await fk.ping()
            await fk.ping()
    assert fk.accepted == 1


async def test_silent_server_is_detected_by_keepalive_and_replaced() -> None:
    """No pong within ping_timeout: the connection is failed and a new one made."""
    sink = EventCollector()
    async with FakeKalshi() as fk:
        ws = _client(fk, ping_interval_secs=0.05, ping_timeout_secs=0.25)
        await ws.set_markets(["A"])
        async with running(ws, sink):
            await sink.wait_for(lambda: _snapshot_count(sink, 1))
            fk.go_silent()
            await sink.wait_for(lambda: _snapshot_count(sink, 2))
    assert fk.accepted == 2
    assert ws.counters.reconnects == 1


async def test_wrong_key_is_an_auth_error_without_retries() -> None:
    """A handshake refused with 401 stops at once with a message about the credentials."""
    async with FakeKalshi() as fk:
        ws = _client(fk, key=other_rsa_key())
        await ws.set_markets(["A"])
        with anyio.fail_after(5), pytest.raises(AuthError) as e:
            await ws.run(EventCollector())
    assert fk.rejected == 1
    assert "HTTP 401" in str(e.value)
    assert "KALSHI_API_KEY_ID" in str(e.value)


async def test_error_9_from_kalshi_is_an_auth_error() -> None:
    """An ``authentication required`` error reply is fatal."""
    async with FakeKalshi() as fk:
        ws = _client(fk)
        await ws.set_markets(["A"])

        async def script() -> None:
            await fk.wait_for(lambda: fk.session is not None)
            await fk.send_frame({"id": 0, "type": "error", "msg": {"code": 9, "msg": "auth"}})

        expected = pytest.RaisesGroup(pytest.RaisesExc(AuthError, match="error 9"))
        with anyio.fail_after(5), expected:
            async with anyio.create_task_group() as tg:
                tg.start_soon(script)
                await ws.run(EventCollector())


async def test_refused_handshakes_are_retried() -> None:
    """A 503 on the handshake is transient: the client tries again."""
    clock = VirtualClock(T0_MS)
    sink = EventCollector()
    async with FakeKalshi() as fk:
        fk.handshake_statuses.extend([503, 503])
        ws = _client(fk, clock, reconnect_initial_delay_secs=0.5)
        await ws.set_markets(["A"])
        async with running(ws, sink):
            await sink.wait_for(lambda: _snapshotted(sink, "A"))
    assert fk.rejected == 2
    assert fk.accepted == 1
    assert len(clock.slept_secs) == 2


async def test_unreachable_host_is_fatal_after_bounded_retries() -> None:
    """Nobody listening: max_retries retries, then a FatalFeedError naming the host."""
    clock = VirtualClock(T0_MS)
    port = _closed_port()
    async with FakeKalshi() as fk:
        ws = _client(fk, clock, ws_url=f"ws://127.0.0.1:{port}{WS_PATH}", max_retries=2)
    with anyio.fail_after(5), pytest.raises(FatalFeedError) as e:
        await ws.run(EventCollector())
    message = str(e.value)
    assert f"127.0.0.1:{port}" in message
    assert "3 attempts" in message
    assert "kalshi.ws_url" in message
    assert len(clock.slept_secs) == 2
