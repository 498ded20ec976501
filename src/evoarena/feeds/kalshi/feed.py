"""``KalshiFeed``: the live Kalshi market-data adapter (paper trading only — it never orders).

It composes the REST client (discovery, settlement polls), the WebSocket client (books,
tickers, trades, lifecycle) and one :class:`~evoarena.feeds.kalshi.decoder.KalshiDecoder`,
records every WebSocket frame and REST response as received (when given a recorder), and hands
the decoded domain events to a synchronous ``sink``: one list per frame or response, in receive
order.

**Recording/sink contract.** For every WebSocket frame and every REST response the recorder line
is written and the decoded events are delivered to the sink with no ``await`` in between (the
same holds for the ``ws_reconnect`` mark and the invalidations that follow it). So at any await
point the recording on disk and the state the sink built agree, and another task may write its
own ``mark`` lines into the same recording: replaying it reproduces the exact state at each mark.

Lifecycle of :meth:`KalshiFeed.run`:

1. discovery over REST (markets closing within ``trading.market_close_window_secs`` and their
   events and series); no open market → :class:`NoMarketsError`;
2. WebSocket connect and subscribe;
3. ``task_status.started()`` once every subscribed market's first order-book snapshot has been
   delivered, or after ``ready_timeout_secs`` if at least one has (none → :class:`NoMarketsError`);
4. rediscovery every ``discovery_refresh_secs``: new markets are subscribed, closed ones dropped.
   A failed rediscovery is logged and retried at the next period (refused credentials are fatal).

Failures that escape :meth:`run` are :class:`~evoarena.errors.FeedError` subclasses (never an
exception group) with messages meant for the person running the service:
:class:`~evoarena.errors.AuthError` (credentials refused or missing) and
:class:`~evoarena.errors.FatalFeedError` (host unreachable after retries, no markets, ...).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import anyio
import anyio.abc
import httpx
import structlog

from evoarena.clock import Clock
from evoarena.errors import AuthError, FatalFeedError, FeedError
from evoarena.feeds.events import (
    BookSnapshot,
    CloseTimeChanged,
    MarketDetermined,
    MarketEvent,
    MarketInfo,
    MarketStatus,
)
from evoarena.feeds.kalshi.auth import Signer
from evoarena.feeds.kalshi.decoder import KalshiDecoder
from evoarena.feeds.kalshi.rest import Discovery, KalshiHttpError, KalshiRestClient
from evoarena.feeds.kalshi.ws import Connect, FrameRecorder, KalshiWsClient, Sink
from evoarena.settings import KalshiSettings, TradingSettings

log = structlog.get_logger(__name__)

_FINAL_STATUSES = frozenset(
    {MarketStatus.DETERMINED, MarketStatus.DISPUTED, MarketStatus.AMENDED, MarketStatus.FINALIZED}
)


class NoMarketsError(FatalFeedError):
    """Discovery found no open market in the window, or none sent an order book in time."""


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _unwrap(group: BaseExceptionGroup[Any]) -> BaseException:
    """The one error a task group failed with (a FeedError first), else the group itself."""
    leaves = _leaves(group)
    feed_errors = [e for e in leaves if isinstance(e, FeedError)]
    if feed_errors:
        return feed_errors[0]
    return leaves[0] if len(leaves) == 1 else group


class KalshiFeed:
    """The live Kalshi feed. See the module docstring for what :meth:`run` does, in order.

    Parameters
    ----------
    settings, trading:
        ``[kalshi]`` and ``[trading]`` settings (the discovery window is
        ``trading.market_close_window_secs``).
    clock:
        Receive timestamps, backoff, the readiness timeout and the rediscovery period.
    http:
        The ``httpx.AsyncClient`` REST goes through (the caller owns and closes it).
    signer:
        Signs REST requests and the WebSocket handshake.
    recorder:
        Optional: every frame, response and ``ws_reconnect`` mark is written to it.
    connect, rng:
        WebSocket connection factory and backoff jitter source (for tests).
    """

    name = "kalshi"

    def __init__(
        self,
        settings: KalshiSettings,
        trading: TradingSettings,
        clock: Clock,
        http: httpx.AsyncClient,
        signer: Signer,
        *,
        recorder: FrameRecorder | None = None,
        connect: Connect | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._trading = trading
        self._clock = clock
        self._recorder = recorder
        rng = rng if rng is not None else random.Random()
        self.decoder = KalshiDecoder()
        self.rest = KalshiRestClient(
            http, settings, clock, signer, on_response=self._on_rest_response, rng=rng
        )
        self.ws = KalshiWsClient(
            settings, clock, signer, self.decoder, recorder=recorder, connect=connect, rng=rng
        )
        self._sink: Sink | None = None
        self._missing: set[str] = set()
        self._ready: anyio.Event | None = None
        self.snapshotted: set[str] = set()
        """Markets whose order-book snapshot has been delivered at least once."""
        self._close_ms: dict[str, int] = {}
        self._determined: set[str] = set()
        self._stats_at = clock.monotonic()
        self._stats_frames = 0
        self.last_discovery: Discovery | None = None
        """The most recent successful discovery."""

    # -- the task -------------------------------------------------------------------------------

    async def run(
        self,
        sink: Sink,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Discover, subscribe, signal readiness, then follow the markets until cancelled.

        ``sink`` is called synchronously with each frame's or response's events. Raises
        :class:`FatalFeedError` (or its :class:`AuthError`, :class:`NoMarketsError`) for
        anything retrying will not fix; never returns otherwise.
        """
        self._sink = sink
        try:
            discovery = await self._discover()
            if not discovery.open_tickers:
                window = self._trading.market_close_window_secs
                msg = (
                    f"no markets available: Kalshi ({self.rest.host}) lists no open market "
                    f"closing within the next {window} s (trading.market_close_window_secs)"
                )
                raise NoMarketsError(msg)
            await self.ws.set_markets(discovery.open_tickers)
            self._missing = set(self.ws.orderbook_tickers()) - self.snapshotted
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.ws.run, self._deliver, name="kalshi-ws")
                await self._wait_ready()
                task_status.started()
                await self._rediscover_forever()
        except BaseExceptionGroup as eg:
            raise _unwrap(eg) from None

    async def _wait_ready(self) -> None:
        """Wait for every subscribed market's first snapshot, at most ``ready_timeout_secs``."""
        ready = self._ready = anyio.Event()
        if not self._missing:
            ready.set()
        timeout = self._settings.ready_timeout_secs
        async with anyio.create_task_group() as tg:

            async def expire() -> None:
                await self._clock.sleep(timeout)
                tg.cancel_scope.cancel()

            tg.start_soon(expire, name="kalshi-ready-timeout")
            await ready.wait()
            tg.cancel_scope.cancel()
        self._ready = None
        wanted = len(self.ws.orderbook_tickers())
        if ready.is_set():
            log.info("kalshi feed ready", markets=wanted, snapshots=len(self.snapshotted))
            return
        if self.snapshotted:
            log.warning(
                "kalshi feed ready without every snapshot",
                markets=wanted,
                snapshots=len(self.snapshotted),
                missing=sorted(self._missing)[:10],
                timeout_secs=timeout,
            )
            return
        if self.ws.counters.connects == 0:
            msg = (
                f"no markets available: could not open the Kalshi WebSocket "
                f"({self.ws.host}) within {timeout:g} s (kalshi.ready_timeout_secs); check "
                "kalshi.ws_url and the network"
            )
        else:
            msg = (
                f"no markets available: none of the {wanted} subscribed markets sent an "
                f"order-book snapshot within {timeout:g} s (kalshi.ready_timeout_secs)"
            )
        raise NoMarketsError(msg)

    async def _discover(self) -> Discovery:
        discovery = await self.rest.discover(
            self._clock.now_ms(), self._trading.market_close_window_secs
        )
        self.last_discovery = discovery
        return discovery

    async def _rediscover_forever(self) -> None:
        while True:
            await self._clock.sleep(self._settings.discovery_refresh_secs)
            before = self.ws.orderbook_tickers()
            try:
                discovery = await self._discover()
            except AuthError:
                raise
            except FatalFeedError as e:
                log.error("kalshi rediscovery failed; keeping the current markets", error=str(e))
                continue
            await self.ws.set_markets(discovery.open_tickers)
            after = self.ws.orderbook_tickers()
            log.info(
                "kalshi markets refreshed",
                added=len(after - before),
                removed=len(before - after),
                markets=len(after),
            )

    # -- settlement -----------------------------------------------------------------------------

    async def poll_settlement(self, tickers: Iterable[str]) -> None:
        """Ask REST about these markets if their close time has passed and no outcome is known.

        Each ``GET /markets/{ticker}`` response is recorded and decoded into the sink (a
        ``MarketInfo`` carrying the result and settlement value once determined), so whichever
        of this and a lifecycle ``determined`` message comes first settles the market. A market
        Kalshi refuses, or a request that fails after retries, is logged and skipped (the next
        poll tries again); refused credentials raise :class:`AuthError`.
        """
        if self._sink is None:
            msg = "KalshiFeed.poll_settlement called before run()"
            raise RuntimeError(msg)
        for ticker in tickers:
            if ticker in self._determined:
                continue
            close_ms = self._close_ms.get(ticker)
            if close_ms is not None and close_ms > self._clock.now_ms():
                continue
            try:
                await self.rest.get_market(ticker)
            except AuthError:
                raise
            except KalshiHttpError as e:
                log.warning("kalshi settlement poll: market refused", market=ticker, error=str(e))
            except FatalFeedError as e:
                log.error("kalshi settlement poll failed", market=ticker, error=str(e))

    # -- events out -----------------------------------------------------------------------------

    def _on_rest_response(
        self,
        recv_ms: int,
        method: str,
        path: str,
        params: dict[str, Any],
        status: int,
        body: object,
    ) -> None:
        """Record the response, decode it and deliver its events (no await in between)."""
        if self._recorder is not None:
            self._recorder.write_rest(recv_ms, method, path, params, status, body)
        events = self.decoder.decode_rest(path, params, status, body, recv_ms)
        if events:
            self._deliver(events)

    def _deliver(self, events: list[MarketEvent]) -> None:
        """Note what readiness and settlement need, then hand the events to the sink."""
        for ev in events:
            if isinstance(ev, BookSnapshot):
                self.snapshotted.add(ev.ticker)
                self._missing.discard(ev.ticker)
            elif isinstance(ev, MarketInfo):
                if ev.close_ms is not None:
                    self._close_ms[ev.ticker] = ev.close_ms
                if ev.settlement_value is not None and ev.status in _FINAL_STATUSES:
                    self._determined.add(ev.ticker)
            elif isinstance(ev, CloseTimeChanged):
                self._close_ms[ev.ticker] = ev.close_ms
            elif isinstance(ev, MarketDetermined):
                self._determined.add(ev.ticker)
        if self._missing and self.ws.dropped:
            self._missing -= self.ws.dropped
        if self._sink is None:
            msg = "KalshiFeed has no sink (run() not started)"
            raise RuntimeError(msg)
        self._sink(events)
        if self._ready is not None and not self._missing:
            self._ready.set()

    # -- heartbeat ------------------------------------------------------------------------------

    def stats(self) -> dict[str, int | float]:
        """Counters for the heartbeat; ``frames_per_sec`` covers the time since the last call."""
        now = self._clock.monotonic()
        frames = self.ws.counters.frames
        elapsed = now - self._stats_at
        fps = (frames - self._stats_frames) / elapsed if elapsed > 0 else 0.0
        self._stats_at, self._stats_frames = now, frames
        c = self.decoder.counters
        return {
            "frames_total": frames,
            "frames_per_sec": round(fps, 1),
            "reconnects": self.ws.counters.reconnects,
            "malformed": c.malformed + self.ws.counters.not_json,
            "unknown": sum(c.unknown_types.values()),
            "gaps": c.gaps,
            "resyncs": self.ws.counters.resyncs,
            "subscribed_markets": self.ws.subscribed_markets(),
            "rest_requests": self.rest.requests,
            "rest_retries": self.rest.retries,
        }
