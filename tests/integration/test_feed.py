"""KalshiFeed end to end against the fake Kalshi (REST over real HTTP, WebSocket) on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
from fake_kalshi import (
    T0_MS,
    WS_PATH,
    EventCollector,
    FakeKalshi,
    ManualClock,
    make_signer,
    other_rsa_key,
    trading_settings,
)

from evoarena.clock import Clock, VirtualClock
from evoarena.engine.book import MarketBook
from evoarena.errors import AuthError, FatalFeedError
from evoarena.feeds.events import BookSnapshot, MarketStatus, Side
from evoarena.feeds.kalshi.feed import KalshiFeed, NoMarketsError
from evoarena.feeds.recording import RecordingWriter
from evoarena.feeds.replay import ReplaySource

pytestmark = pytest.mark.anyio

REFRESH_SECS = 600
READY_SECS = 120


@asynccontextmanager
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    """A real HTTP client (the fake serves REST on 127.0.0.1)."""
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def _feed(
    fk: FakeKalshi,
    clock: Clock,
    http: httpx.AsyncClient,
    *,
    recorder: RecordingWriter | None = None,
    **overrides: Any,
) -> KalshiFeed:
    settings = fk.settings(
        **{
            "discovery_refresh_secs": REFRESH_SECS,
            "ready_timeout_secs": READY_SECS,
            **overrides,
        }
    )
    return KalshiFeed(
        settings,
        trading_settings(market_close_window_secs=86_400),
        clock,
        http,
        make_signer(),
        recorder=recorder,
    )


@asynccontextmanager
async def started(feed: KalshiFeed, sink: EventCollector) -> AsyncIterator[anyio.abc.TaskGroup]:
    """Start the feed (waiting, bounded, for its readiness) and stop it after the block."""
    async with anyio.create_task_group() as tg:
        with anyio.fail_after(5):
            await tg.start(feed.run, sink)
        yield tg
        tg.cancel_scope.cancel()


def _snapshotted(sink: EventCollector, *tickers: str) -> bool:
    return set(tickers) <= {ev.ticker for ev in sink.of_type(BookSnapshot)}


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _book_state(book: MarketBook) -> dict[str, tuple[Any, ...]]:
    return {
        t: (
            dict(m.yes_bids),
            dict(m.no_bids),
            m.has_book,
            m.stale,
            m.status,
            m.close_ms,
            m.settlement_value,
            m.last_price,
            book.category(t),
        )
        for t, m in sorted(book.markets.items())
    }


async def test_discovery_subscribe_and_ready() -> None:
    """Open markets in the window are subscribed; ready once each has its snapshot."""
    clock = ManualClock()
    sink = EventCollector()
    async with FakeKalshi() as fk, http_client() as http:
        fk.add_market("A", event_ticker="POL-1", category="Politics")
        fk.add_market("B", event_ticker="ECO-1", category="Economics")
        fk.add_market("UPCOMING", event_ticker="ECO-1", status="initialized")
        fk.add_market("LATER", event_ticker="ECO-1", close_ms=T0_MS + 3 * 86_400_000)
        fk.add_market("PAST", event_ticker="ECO-1", close_ms=T0_MS - 60_000)
        feed = _feed(fk, clock, http)
        async with started(feed, sink):
            at_ready = {ev.ticker for ev in sink.of_type(BookSnapshot)}
            subscribed = fk.subscribed("orderbook_delta")
            stats = feed.stats()
    assert at_ready == {"A", "B"}
    assert feed.snapshotted == {"A", "B"}
    assert subscribed == {"A", "B"}
    assert feed.last_discovery is not None
    assert feed.last_discovery.upcoming_tickers == ("UPCOMING",)
    assert sink.book.category("A") == "Politics"
    assert sink.book.category("B") == "Economics"
    assert "/series/POL" in fk.rest.paths()
    assert sink.book.market("A").close_ms == T0_MS + 3_600_000
    assert stats["frames_total"] == feed.ws.counters.frames > 0
    assert stats["subscribed_markets"] == 2
    assert fk.http_requests == len(fk.rest.requests)


async def test_recording_and_sink_agree_at_every_mark(tmp_path: Path) -> None:
    """Replaying the recording reproduces the live book exactly at each mark."""
    clock = ManualClock()
    sink = EventCollector()
    path = tmp_path / "live.jsonl"
    live: dict[int, dict[str, tuple[Any, ...]]] = {}

    def mark(rec: RecordingWriter, n: int) -> None:
        rec.write_mark(clock.now_ms(), "check", n=n)
        live[n] = _book_state(sink.book)

    async with FakeKalshi() as fk, http_client() as http:
        fk.add_market("A", yes=[("0.4000", "10.00")], no=[("0.5500", "3.00")])
        fk.add_market("B", yes=[("0.1000", "1.00")], no=[])
        with RecordingWriter(path, "kalshi", T0_MS) as rec:
            feed = _feed(fk, clock, http, recorder=rec)
            async with started(feed, sink):
                mark(rec, 1)
                await fk.send_delta("A", "yes", "0.4100", "2.00")
                await fk.send_delta("B", "no", "0.8500", "4.00", skip_seq=True)
                await fk.send_trade("A", yes_price="0.4100")
                await sink.wait_for(lambda: len(sink.of_type(BookSnapshot)) == 4)
                mark(rec, 2)
                fk.drop()
                await sink.wait_for(lambda: len(sink.of_type(BookSnapshot)) == 6)
                mark(rec, 3)
                fk.rest.markets[0].update(
                    status="determined", result="yes", settlement_value_dollars="1.0000"
                )
                clock.advance(3_601)
                await feed.poll_settlement(["A"])
                mark(rec, 4)
    assert live[2] != live[1]
    assert live[4]["A"][6] == 1_000_000

    book = MarketBook(120)
    replayed: dict[int, dict[str, tuple[Any, ...]]] = {}
    with ReplaySource(path) as source:
        for step in source:
            for ev in step.events:
                book.apply(ev)
            if step.mark is not None and step.mark["kind"] == "check":
                replayed[step.mark["n"]] = _book_state(book)
    assert replayed == live


async def test_rediscovery_subscribes_new_markets_and_drops_gone_ones() -> None:
    """Each refresh period, new markets get add_markets (and snapshots), gone ones delete."""
    clock = ManualClock()
    sink = EventCollector()
    async with FakeKalshi() as fk, http_client() as http:
        fk.add_market("A")
        fk.add_market("B")
        feed = _feed(fk, clock, http)
        async with started(feed, sink):
            fk.add_market("C", event_ticker="NEW-1", category="Sports")
            fk.rest.markets = [m for m in fk.rest.markets if m["ticker"] != "B"]
            await clock.wait_for_sleep(lambda secs: secs == REFRESH_SECS)
            clock.advance(REFRESH_SECS)
            await sink.wait_for(lambda: _snapshotted(sink, "C"))
            await fk.wait_for(lambda: fk.subscribed("orderbook_delta") == {"A", "C"})
            await fk.wait_for(lambda: fk.subscribed("trade") == {"A", "C"})
    actions = [c["params"]["action"] for c in fk.commands_named("update_subscription")]
    assert actions.count("add_markets") == 3
    assert actions.count("delete_markets") == 3
    assert feed.ws.orderbook_tickers() == frozenset({"A", "C"})
    assert sink.book.category("C") == "Sports"


async def test_poll_settlement_turns_a_determined_market_into_events() -> None:
    """Closed, undetermined markets are polled; a determined answer settles the book once."""
    clock = ManualClock()
    sink = EventCollector()
    async with FakeKalshi() as fk, http_client() as http:
        fk.add_market("A")
        fk.add_market("B")
        feed = _feed(fk, clock, http, discovery_refresh_secs=10 * 86_400)
        async with started(feed, sink):
            await feed.poll_settlement(["A", "B"])
            polled_before_close = [p for p in fk.rest.paths() if p.startswith("/markets/")]
            fk.rest.markets[0].update(
                status="determined", result="yes", settlement_value_dollars="1.0000"
            )
            clock.advance(3_601)
            await feed.poll_settlement(["A", "B"])
            await feed.poll_settlement(["A", "B"])
    assert polled_before_close == []
    polled = [p for p in fk.rest.paths() if p.startswith("/markets/")]
    assert polled == ["/markets/A", "/markets/B", "/markets/B"]
    a = sink.book.market("A")
    assert (a.result, a.settlement_value, a.status) == (
        Side.YES,
        1_000_000,
        MarketStatus.DETERMINED,
    )
    assert sink.book.market("B").settlement_value is None
    assert sink.book.drain_determined() == ["A"]


async def test_lifecycle_determination_first_stops_the_polling() -> None:
    """A lifecycle ``determined`` settles the market; the poller then leaves it alone."""
    clock = ManualClock()
    sink = EventCollector()
    async with FakeKalshi() as fk, http_client() as http:
        fk.add_market("A")
        feed = _feed(fk, clock, http, discovery_refresh_secs=10 * 86_400)
        async with started(feed, sink):
            await fk.send_lifecycle("A", "determined", result="no", settlement_value="0.0000")
            await sink.wait_for(lambda: sink.book.market("A").settlement_value is not None)
            fk.rest.markets[0].update(status="determined", result="yes")
            clock.advance(3_601)
            await feed.poll_settlement(["A"])
    assert "/markets/A" not in fk.rest.paths()
    assert sink.book.market("A").result is Side.NO
    assert sink.book.market("A").settlement_value == 0


async def test_ready_after_timeout_with_some_snapshots() -> None:
    """If some markets never send a snapshot, the feed is ready at the timeout anyway."""
    clock = ManualClock()
    sink = EventCollector()
    async with FakeKalshi() as fk, http_client() as http:
        fk.send_snapshots = False
        fk.add_market("A")
        fk.add_market("B")
        feed = _feed(fk, clock, http)

        async def script() -> None:
            await fk.wait_for(lambda: len(fk.commands_named("subscribe")) == 4)
            await fk.send_snapshot("A")
            await sink.wait_for(lambda: _snapshotted(sink, "A"))
            await clock.wait_for_sleep(lambda secs: secs == READY_SECS)
            clock.advance(READY_SECS)

        async with anyio.create_task_group() as tg:
            tg.start_soon(script)
            with anyio.fail_after(5):
                await tg.start(feed.run, sink)
            ready_at = clock.now_ms()
            tg.cancel_scope.cancel()
    assert feed.snapshotted == {"A"}
    assert ready_at == T0_MS + READY_SECS * 1000


async def test_no_snapshot_at_all_is_a_clear_error() -> None:
    """No snapshot within ready_timeout_secs: NoMarketsError saying so."""
    clock = ManualClock()
    async with FakeKalshi() as fk, http_client() as http:
        fk.send_snapshots = False
        fk.add_market("A")
        feed = _feed(fk, clock, http)

        async def script() -> None:
            await fk.wait_for(lambda: len(fk.commands_named("subscribe")) == 4)
            await clock.wait_for_sleep(lambda secs: secs == READY_SECS)
            clock.advance(READY_SECS)

        expected = pytest.RaisesGroup(
            pytest.RaisesExc(NoMarketsError, match="none of the 1 subscribed markets")
        )
        with anyio.fail_after(5), expected:
            async with anyio.create_task_group() as tg:
                tg.start_soon(script)
                await feed.run(EventCollector())


async def test_no_open_market_is_a_clear_error() -> None:
    """Discovery finding nothing open in the window stops with 'no markets available'."""
    async with FakeKalshi() as fk, http_client() as http:
        fk.add_market("SOON", status="initialized")
        feed = _feed(fk, ManualClock(), http)
        with anyio.fail_after(5), pytest.raises(NoMarketsError, match="no markets available"):
            await feed.run(EventCollector())
    assert fk.accepted == 0


async def test_refused_credentials_stop_with_a_clear_message() -> None:
    """REST answering 401 is an AuthError about the key id and key, without retries."""
    async with FakeKalshi() as fk, http_client() as http:
        fk.add_market("A")
        fk.rest.public_key = other_rsa_key().public_key()
        feed = _feed(fk, ManualClock(), http)
        with anyio.fail_after(5), pytest.raises(AuthError) as e:
            await feed.run(EventCollector())
    assert fk.rest.bad_signatures == 1
    assert "KALSHI_API_KEY_ID" in str(e.value)


async def test_unreachable_rest_host_fails_with_a_clear_message() -> None:
    """A closed port: bounded retries on the virtual clock, then FatalFeedError naming the host."""
    port = _closed_port()
    clock = VirtualClock(T0_MS)
    async with FakeKalshi() as fk, http_client() as http:
        feed = _feed(
            fk,
            clock,
            http,
            rest_url=f"http://127.0.0.1:{port}/trade-api/v2",
            retry_initial_delay_secs=0.5,
            max_retries=4,
        )
        with anyio.fail_after(2), pytest.raises(FatalFeedError) as e:
            await feed.run(EventCollector())
    message = str(e.value)
    assert f"cannot reach Kalshi REST at 127.0.0.1:{port}" in message
    assert "5 times" in message
    assert "check the network" in message
    assert len(clock.slept_secs) == 4
    assert feed.rest.requests == 5


async def test_unreachable_websocket_host_fails_with_a_clear_message() -> None:
    """REST fine but nothing on the WebSocket port: FatalFeedError naming that host."""
    port = _closed_port()
    async with FakeKalshi() as fk, http_client() as http:
        fk.add_market("A")
        feed = _feed(fk, ManualClock(), http, ws_url=f"ws://127.0.0.1:{port}{WS_PATH}")
        with anyio.fail_after(5), pytest.raises(FatalFeedError) as e:
            await feed.run(EventCollector())
    assert f"cannot reach the Kalshi WebSocket at 127.0.0.1:{port}" in str(e.value)


async def test_poll_settlement_before_run_is_a_programming_error() -> None:
    """The poller needs the sink that run() installs."""
    async with FakeKalshi() as fk, http_client() as http:
        feed = _feed(fk, ManualClock(), http)
        with pytest.raises(RuntimeError, match="before run"):
            await feed.poll_settlement(["A"])
