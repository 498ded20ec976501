"""Kalshi WebSocket session: connect, subscribe, read, resync, reconnect (read-only).

The loop, per connection: sign the handshake afresh → connect → replay every tracked
subscription → read frames until the connection fails → invalidate the books → back off → again.

* **Subscriptions** are tracked by what we *want* (channel + tickers), independently of the
  session: each one remembers its state (``idle``; ``pending`` until Kalshi answers
  ``subscribed``; then ``confirmed`` with a ``sid``) and the tickers the server has. Changes
  (discovery adding or dropping markets) are reconciled with ``update_subscription``
  ``add_markets`` / ``delete_markets``; a reconnect replays every subscription with its current
  arguments. ``orderbook_delta``, ``ticker`` and ``trade`` are subscribed in chunks of
  ``orderbook_tickers_per_subscription`` tickers (one channel per command, so one ``sid`` per
  command); ``market_lifecycle_v2`` once, without tickers (it always covers every market).
* **Frames**: every text frame is timestamped (``clock.now_ms``), written to the recorder as
  received, parsed with orjson, decoded, and its events handed to the sink — synchronously, with
  no ``await`` in between, so the recording and the sink's state agree at every await point.
  A frame that is not a JSON object is counted, logged, recorded (wrapped) and skipped.
* **Resync**: a ``seq`` gap makes the decoder invalidate the sid's books and ask for a re-seed;
  we send ``update_subscription`` ``get_snapshot`` for those tickers and, if Kalshi answers with
  an error, fall back to unsubscribe + subscribe.
* **Errors** from Kalshi are handled by code: 9 (authentication) is fatal; 16 (market not found)
  drops the market for good; a failed ``get_snapshot``, an unknown sid (7) or a buffer overflow
  (25) resubscribes; other failed commands are undone locally and retried at the next
  reconciliation.
* **Reconnect**: jittered exponential backoff through the injected clock (tenacity), reset after
  a session that lasted ``healthy_session_secs``. Until the first successful connection the
  attempts are bounded (``max_retries`` retries) and end in a
  :class:`~evoarena.errors.FatalFeedError` naming the host; afterwards the client keeps trying.
  A handshake refused with 401/403 is an :class:`~evoarena.errors.AuthError`. When a session
  ends — including when :meth:`KalshiWsClient.run` is cancelled at shutdown — a
  ``ws_reconnect`` mark is recorded and the decoder's session is reset (which invalidates every
  book it was feeding); books become fresh again when their snapshots return.
* **Keep-alive**: the websockets library answers Kalshi's pings and sends our own every
  ``ping_interval_secs``; no pong within ``ping_timeout_secs`` fails the connection (the closing
  handshake is also bounded by ``ping_timeout_secs``), so a silent peer is detected within
  about ``ping_interval_secs + 2 × ping_timeout_secs``.

Only this module knows the ``websockets`` library. The connection factory is injectable.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import anyio
import orjson
import structlog
import websockets
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from evoarena.clock import Clock
from evoarena.errors import AuthError, FatalFeedError
from evoarena.feeds.events import MarketEvent
from evoarena.feeds.kalshi.auth import WS_SIGN_PATH, Signer
from evoarena.feeds.kalshi.decoder import WS_RECONNECT_MARK, KalshiDecoder
from evoarena.feeds.kalshi.parse import CommandReply
from evoarena.feeds.kalshi.ratelimit import JitteredBackoff, TransientError
from evoarena.settings import KalshiSettings

log = structlog.get_logger(__name__)

ORDERBOOK = "orderbook_delta"
TICKER = "ticker"
TRADE = "trade"
LIFECYCLE = "market_lifecycle_v2"
PER_MARKET_CHANNELS = (ORDERBOOK, TICKER, TRADE)
"""Channels subscribed per market list (chunked); ``market_lifecycle_v2`` takes no tickers."""

MAX_FRAME_BYTES = 16 * 1024 * 1024
"""Largest frame accepted (big order-book snapshots exceed websockets' 1 MiB default)."""

ERROR_MEANINGS: Mapping[int, str] = {
    1: "unable to process message",
    2: "params required",
    3: "channels required",
    4: "subscription IDs required",
    5: "unknown command",
    6: "already subscribed",
    7: "unknown subscription ID",
    8: "unknown channel name",
    9: "authentication required",
    10: "channel error",
    11: "invalid parameter",
    12: "exactly one subscription ID is required",
    13: "unsupported action",
    14: "market ticker required",
    15: "action required",
    16: "market not found",
    17: "internal error",
    18: "command timeout",
    19: "shard_factor must be > 0",
    20: "shard_factor required when shard_key is set",
    21: "shard_key out of range",
    22: "shard_factor must be <= 100",
    25: "subscription buffer overflow",
    26: "too many markets in one subscription",
    27: "command rate limit",
}
"""Kalshi WebSocket error codes (``kalshi-api.md`` §9.3 and §7)."""

ERR_ALREADY_SUBSCRIBED = 6
ERR_UNKNOWN_SID = 7
ERR_AUTH_REQUIRED = 9
ERR_MARKET_NOT_FOUND = 16
ERR_BUFFER_OVERFLOW = 25

Sink = Callable[[list[MarketEvent]], None]
"""Where decoded events go: one list per frame, in receive order, called synchronously."""


class FrameRecorder(Protocol):
    """**Protocol:** what the feed writes into a recording (``RecordingWriter`` fits)."""

    def write_ws(self, t_ms: int, message: Any) -> None:
        """Record a WebSocket message object."""
        ...

    def write_ws_raw(self, t_ms: int, raw: bytes | str) -> None:
        """Record a WebSocket text frame (one JSON object) byte for byte."""
        ...

    def write_rest(
        self,
        t_ms: int,
        method: str,
        path: str,
        params: dict[str, Any],
        status: int,
        body: Any,
    ) -> None:
        """Record a REST response."""
        ...

    def write_mark(self, t_ms: int, kind: str, **fields: Any) -> None:
        """Record an instant (here: ``ws_reconnect``)."""
        ...


class WsConnection(Protocol):
    """The part of a websockets client connection this module uses."""

    def __aiter__(self) -> AsyncIterator[str | bytes]: ...

    async def send(self, message: str) -> None:
        """Send one text frame."""
        ...


Connect = Callable[..., Any]
"""``connect(url, *, additional_headers, ping_interval, ping_timeout, open_timeout,
close_timeout, max_size)`` → an async context manager yielding a :class:`WsConnection`
(``websockets.connect`` by default)."""


# -- subscription tracking -------------------------------------------------------------------------

SubState = Literal["idle", "pending", "confirmed"]
CommandKind = Literal["subscribe", "add_markets", "delete_markets", "get_snapshot", "unsubscribe"]


@dataclass(slots=True)
class Subscription:
    """One tracked subscription: one channel and (for per-market channels) a set of tickers.

    ``tickers`` is what we want (``None`` = the channel takes no market list);
    ``server_tickers`` what Kalshi is believed to have. :meth:`args` gives the subscribe
    ``params`` a (re)connect sends.
    """

    key: int
    channel: str
    tickers: set[str] | None
    state: SubState = "idle"
    sid: int | None = None
    server_tickers: set[str] = field(default_factory=set)

    def args(self) -> dict[str, Any]:
        """The ``params`` of the subscribe command for this subscription."""
        params: dict[str, Any] = {"channels": [self.channel]}
        if self.tickers is not None:
            params["market_tickers"] = sorted(self.tickers)
        return params


@dataclass(frozen=True, slots=True)
class _Command:
    """A command in flight: what it was for, so its reply (or error) can be acted on."""

    kind: CommandKind
    sub_key: int
    tickers: tuple[str, ...] = ()


class _HealthySessionEnded(Exception):
    """A session that lasted long enough ended: reconnect with a fresh backoff."""


@dataclass(slots=True)
class WsCounters:
    """What the client saw (cumulative over reconnects)."""

    frames: int = 0
    not_json: int = 0
    commands: int = 0
    connects: int = 0
    reconnects: int = 0
    gaps: int = 0
    resyncs: int = 0
    resync_fallbacks: int = 0
    errors: int = 0
    dropped_markets: int = 0


class KalshiWsClient:
    """Kalshi market-data WebSocket with tracked subscriptions and automatic reconnect.

    Parameters
    ----------
    settings:
        ``[kalshi]`` settings: URL, reconnect backoff, ping and chunk sizes.
    clock:
        Timestamps, backoff sleeps and the healthy-session measure go through it.
    signer:
        Signs every handshake afresh.
    decoder:
        Decodes frames into domain events (shared with REST decoding in the feed).
    recorder:
        Optional: every frame and ``ws_reconnect`` mark is written to it as received.
    connect:
        Connection factory (``websockets.connect`` by default).
    rng:
        Backoff jitter source (a fresh ``random.Random`` by default).

    Call :meth:`set_markets` before or during :meth:`run`.
    """

    def __init__(
        self,
        settings: KalshiSettings,
        clock: Clock,
        signer: Signer,
        decoder: KalshiDecoder,
        *,
        recorder: FrameRecorder | None = None,
        connect: Connect | None = None,
        rng: random.Random | None = None,
    ) -> None:
        # Configuration
        self._settings = settings
        self._clock = clock
        self._signer = signer
        self.decoder = decoder
        self._recorder = recorder
        self._connect: Connect = connect if connect is not None else websockets.connect
        self._rng = rng if rng is not None else random.Random()
        self.url = settings.effective_ws_url
        parts = urlsplit(self.url)
        self.host = parts.netloc or self.url
        self._sign_path = parts.path or WS_SIGN_PATH
        # Subscriptions (survive reconnects)
        self.subscriptions: dict[int, Subscription] = {}
        """Every tracked subscription, by key (stable across reconnects)."""
        self._next_key = 1
        self.dropped: set[str] = set()
        """Tickers Kalshi said do not exist (error 16); never subscribed again."""
        # Session state
        self._by_sid: dict[int, Subscription] = {}
        self._commands: dict[int, _Command] = {}
        self._next_id = 1
        self._conn: WsConnection | None = None
        self._lock: anyio.Lock | None = None
        self._ever_connected = False
        self.connected = anyio.Event()
        """Set while a session is open (replaced by a fresh event when it ends)."""
        self.counters = WsCounters()
        self._new_sub(LIFECYCLE, None)

    # -- public view ----------------------------------------------------------------------------

    def orderbook_tickers(self) -> frozenset[str]:
        """Every market we want order books for."""
        return frozenset(
            t
            for s in self.subscriptions.values()
            if s.channel == ORDERBOOK and s.tickers is not None
            for t in s.tickers
        )

    def subscribed_markets(self) -> int:
        """Markets whose order-book subscription Kalshi has confirmed in this session."""
        return sum(
            len(s.server_tickers)
            for s in self.subscriptions.values()
            if s.channel == ORDERBOOK and s.state == "confirmed"
        )

    # -- market set -----------------------------------------------------------------------------

    async def set_markets(self, tickers: Iterable[str]) -> None:
        """Make the per-market subscriptions cover exactly ``tickers`` (minus dropped ones).

        When connected this sends ``update_subscription`` (``add_markets`` /
        ``delete_markets``), ``subscribe`` or ``unsubscribe`` as needed; otherwise the next
        connection subscribes to the new set.
        """
        wanted = set(tickers) - self.dropped
        async with self._get_lock():
            for channel in PER_MARKET_CHANNELS:
                self._place(channel, wanted)
            if self._conn is not None:
                await self._reconcile()

    def _new_sub(self, channel: str, tickers: set[str] | None) -> Subscription:
        sub = Subscription(self._next_key, channel, tickers)
        self._next_key += 1
        self.subscriptions[sub.key] = sub
        return sub

    def _place(self, channel: str, wanted: set[str]) -> None:
        """Remove unwanted tickers from ``channel``'s chunks; put new ones where there is room."""
        limit = self._settings.orderbook_tickers_per_subscription
        chunks = [
            s.tickers
            for s in self.subscriptions.values()
            if s.channel == channel and s.tickers is not None
        ]
        have: set[str] = set()
        for tickers in chunks:
            tickers &= wanted
            have |= tickers
        new = sorted(wanted - have)
        for tickers in chunks:
            room = limit - len(tickers)
            if room > 0 and new:
                tickers.update(new[:room])
                new = new[room:]
        while new:
            self._new_sub(channel, set(new[:limit]))
            new = new[limit:]

    # -- the connection loop --------------------------------------------------------------------

    def _get_lock(self) -> anyio.Lock:
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    async def run(self, sink: Sink) -> None:
        """Connect and read forever, reconnecting with backoff; returns only by cancellation.

        ``sink`` receives each frame's events synchronously. Raises :class:`AuthError` when
        Kalshi refuses the credentials, and :class:`FatalFeedError` when no connection could be
        made at all within ``max_retries`` retries.
        """
        while True:
            retrying = AsyncRetrying(
                stop=self._should_stop,
                wait=JitteredBackoff(
                    self._settings.reconnect_initial_delay_secs,
                    self._settings.reconnect_max_delay_secs,
                    self._rng,
                ),
                retry=retry_if_exception_type(TransientError),
                sleep=self._clock.sleep,
                before_sleep=self._before_sleep,
                reraise=True,
            )
            try:
                await retrying(self._session, sink)
            except _HealthySessionEnded:
                continue  # a fresh AsyncRetrying: the backoff starts over
            except TransientError as e:
                attempts = self._settings.max_retries + 1
                setting = "kalshi.demo_ws_url" if self._settings.demo else "kalshi.ws_url"
                msg = (
                    f"cannot reach the Kalshi WebSocket at {self.host} ({attempts} attempts; "
                    f"last: {e.reason}); check the network connection, DNS and any firewall or "
                    f"proxy, and that {setting} = {self.url!r} is right"
                )
                raise FatalFeedError(msg) from e

    def _should_stop(self, state: RetryCallState) -> bool:
        """Give up only while we have never been connected (afterwards: retry forever)."""
        return not self._ever_connected and state.attempt_number > self._settings.max_retries

    def _before_sleep(self, state: RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        log.warning(
            "kalshi websocket disconnected; reconnecting"
            if self._ever_connected
            else "kalshi websocket connection failed; retrying",
            host=self.host,
            attempt=state.attempt_number,
            reason=getattr(exc, "reason", str(exc)),
            retry_in_secs=round(state.upcoming_sleep, 3),
        )

    async def _session(self, sink: Sink) -> None:
        """One connection, start to end. Always raises: how it ended decides what comes next."""
        headers = self._signer.headers("GET", self._sign_path, self._clock.now_ms())
        reason = "closed by the server"
        try:
            async with self._connect(
                self.url,
                additional_headers=headers,
                ping_interval=self._settings.ping_interval_secs,
                ping_timeout=self._settings.ping_timeout_secs,
                open_timeout=self._settings.request_timeout_secs,
                close_timeout=self._settings.ping_timeout_secs,
                max_size=MAX_FRAME_BYTES,
            ) as conn:
                started = self._clock.monotonic()
                try:
                    await self._open(conn)
                    async for raw in conn:
                        await self._on_frame(raw, sink)
                except ConnectionClosed as e:
                    reason = f"connection lost ({e})"
                finally:
                    self._close_session(sink)
                healthy = self._clock.monotonic() - started >= self._settings.healthy_session_secs
        except InvalidStatus as e:
            status = e.response.status_code
            if status in (401, 403):
                env = "demo" if self._settings.demo else "production"
                msg = (
                    f"Kalshi refused the WebSocket handshake with HTTP {status}: check "
                    "KALSHI_API_KEY_ID and the private key (KALSHI_PRIVATE_KEY_PATH or "
                    f"KALSHI_PRIVATE_KEY), and that the key was created for {env} ({self.host})"
                    " — demo and production keys are separate"
                )
                raise AuthError(msg) from e
            raise TransientError(f"handshake refused with HTTP {status}") from e
        except InvalidURI as e:
            msg = f"invalid Kalshi WebSocket URL {self.url!r} (kalshi.ws_url): {e}"
            raise FatalFeedError(msg) from e
        except (OSError, TimeoutError, InvalidHandshake) as e:
            raise TransientError(f"connection failed: {e or type(e).__name__}") from e
        log.warning("kalshi websocket session ended", host=self.host, reason=reason)
        if healthy:
            raise _HealthySessionEnded
        raise TransientError(reason)

    async def _open(self, conn: WsConnection) -> None:
        """A new session: fresh command ids, replay every subscription."""
        self.counters.connects += 1
        if self._ever_connected:
            self.counters.reconnects += 1
        self._ever_connected = True
        self._next_id = 1
        self._commands.clear()
        self._by_sid.clear()
        async with self._get_lock():
            self._conn = conn
            for key in sorted(self.subscriptions):
                sub = self.subscriptions[key]
                sub.state, sub.sid, sub.server_tickers = "idle", None, set()
                if sub.tickers is not None and not sub.tickers:
                    del self.subscriptions[key]
                    continue
                await self._subscribe(sub)
        self.connected.set()
        log.info(
            "kalshi websocket connected",
            host=self.host,
            subscriptions=len(self.subscriptions),
            markets=len(self.orderbook_tickers()),
            reconnects=self.counters.reconnects,
        )

    def _close_session(self, sink: Sink) -> None:
        """The session is over: forget its sids, record the mark, distrust its books.

        Synchronous on purpose: the mark and the decoder reset (and its invalidations reaching
        the sink) happen at one point of the recording, as a replay will redo them.
        """
        self._conn = None
        self.connected = anyio.Event()
        for sub in self.subscriptions.values():
            sub.state, sub.sid, sub.server_tickers = "idle", None, set()
        self._by_sid.clear()
        self._commands.clear()
        now = self._clock.now_ms()
        if self._recorder is not None:
            self._recorder.write_mark(now, WS_RECONNECT_MARK)
        events = self.decoder.reset_session(now)
        if events:
            sink(events)

    # -- frames ---------------------------------------------------------------------------------

    async def _on_frame(self, raw: str | bytes, sink: Sink) -> None:
        self._ingest(raw, sink)
        if self.decoder.replies:
            async with self._get_lock():
                while self.decoder.replies:
                    await self._on_reply(self.decoder.replies.popleft())
        requests = self.decoder.take_resync_requests()
        if requests:
            async with self._get_lock():
                for sid, tickers in requests.items():
                    await self._resync(sid, tickers)

    def _ingest(self, raw: str | bytes, sink: Sink) -> None:
        """Record the frame, decode it and hand its events to ``sink`` (no await in between)."""
        recv_ms = self._clock.now_ms()
        self.counters.frames += 1
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            self.counters.not_json += 1
            text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
            log.warning("kalshi websocket frame is not a JSON object; skipped", frame=text[:200])
            if self._recorder is not None:
                self._recorder.write_ws(recv_ms, {"type": "evoarena_unparsed", "raw": text})
            return
        if self._recorder is not None:
            data = raw.encode() if isinstance(raw, str) else raw
            if b"\n" in data or b"\r" in data:
                self._recorder.write_ws(recv_ms, obj)  # keep the recording one line per frame
            else:
                self._recorder.write_ws_raw(recv_ms, data)
        events = self.decoder.decode_ws(obj, recv_ms)
        if events:
            sink(events)

    # -- commands -------------------------------------------------------------------------------

    async def _send(self, cmd: str, params: dict[str, Any], record: _Command) -> None:
        conn = self._conn
        if conn is None:
            return
        cmd_id = self._next_id
        self._next_id += 1
        self._commands[cmd_id] = record
        self.counters.commands += 1
        try:
            await conn.send(orjson.dumps({"id": cmd_id, "cmd": cmd, "params": params}).decode())
        except ConnectionClosed:
            log.debug("kalshi websocket command not sent: connection closed", cmd=cmd)

    async def _subscribe(self, sub: Subscription) -> None:
        sub.state = "pending"
        tickers = tuple(sorted(sub.tickers)) if sub.tickers is not None else ()
        await self._send("subscribe", sub.args(), _Command("subscribe", sub.key, tickers))

    async def _update(
        self,
        sub: Subscription,
        action: Literal["add_markets", "delete_markets", "get_snapshot"],
        tickers: list[str],
    ) -> None:
        if sub.sid is None:
            return
        params = {"sids": [sub.sid], "market_tickers": tickers, "action": action}
        await self._send("update_subscription", params, _Command(action, sub.key, tuple(tickers)))

    async def _unsubscribe(self, sub: Subscription) -> None:
        if sub.sid is None:
            return
        self._by_sid.pop(sub.sid, None)
        await self._send("unsubscribe", {"sids": [sub.sid]}, _Command("unsubscribe", sub.key))
        sub.sid, sub.state, sub.server_tickers = None, "idle", set()

    async def _reconcile(self) -> None:
        """Bring every subscription to its wanted state (subscribe, add, delete, unsubscribe)."""
        for key in sorted(self.subscriptions):
            sub = self.subscriptions.get(key)
            if sub is None:
                continue
            if sub.tickers is None:
                if sub.state == "idle":
                    await self._subscribe(sub)
                continue
            if not sub.tickers:
                if sub.state == "confirmed":
                    await self._unsubscribe(sub)
                if sub.state == "idle":
                    del self.subscriptions[key]
                continue
            if sub.state == "idle":
                await self._subscribe(sub)
            elif sub.state == "confirmed":
                add = sorted(sub.tickers - sub.server_tickers)
                remove = sorted(sub.server_tickers - sub.tickers)
                if add:
                    sub.server_tickers.update(add)
                    await self._update(sub, "add_markets", add)
                if remove:
                    sub.server_tickers.difference_update(remove)
                    await self._update(sub, "delete_markets", remove)

    async def _resync(self, sid: int, tickers: list[str]) -> None:
        self.counters.gaps += 1
        sub = self._by_sid.get(sid)
        if sub is None or sub.channel != ORDERBOOK:
            log.info("kalshi sequence gap on a subscription without books", sid=sid)
            return
        wanted = sorted(set(tickers) & sub.server_tickers) or sorted(sub.server_tickers)
        if not wanted:
            return
        self.counters.resyncs += 1
        log.info("kalshi orderbook gap; requesting snapshots", sid=sid, markets=len(wanted))
        await self._update(sub, "get_snapshot", wanted)

    async def _resubscribe(self, sub: Subscription) -> None:
        """Fallback re-seed: unsubscribe the sid, then subscribe the same tickers again."""
        self.counters.resync_fallbacks += 1
        await self._unsubscribe(sub)
        sub.state = "idle"
        if sub.tickers is None or sub.tickers:
            await self._subscribe(sub)

    # -- replies --------------------------------------------------------------------------------

    async def _on_reply(self, reply: CommandReply) -> None:
        cmd = self._commands.pop(reply.id, None) if reply.id else None
        sub = self.subscriptions.get(cmd.sub_key) if cmd is not None else None
        if reply.type == "error":
            await self._on_error(reply, cmd, sub)
            return
        if cmd is None or reply.type != "subscribed" or cmd.kind != "subscribe":
            return  # ``ok``/``unsubscribed``: our optimistic bookkeeping already has it
        if reply.sid is None:
            return
        if sub is None or sub.state != "pending":
            # Nobody wants this subscription any more: give it back.
            stale = _Command("unsubscribe", cmd.sub_key)
            await self._send("unsubscribe", {"sids": [reply.sid]}, stale)
            return
        sub.sid = reply.sid
        sub.state = "confirmed"
        sub.server_tickers = set(cmd.tickers)
        self._by_sid[reply.sid] = sub
        await self._reconcile()

    async def _on_error(
        self, reply: CommandReply, cmd: _Command | None, sub: Subscription | None
    ) -> None:
        code = reply.error_code
        context = {
            "code": code,
            "meaning": ERROR_MEANINGS.get(code or 0, "unknown error code"),
            "kalshi_msg": reply.error_msg,
            "command": cmd.kind if cmd is not None else None,
            "channel": sub.channel if sub is not None else None,
        }
        if code == ERR_AUTH_REQUIRED:
            msg = (
                "Kalshi WebSocket says authentication is required (error 9): check "
                "KALSHI_API_KEY_ID and the private key (KALSHI_PRIVATE_KEY_PATH or "
                "KALSHI_PRIVATE_KEY), and that the key belongs to this environment "
                f"({self.host}; demo and production keys are separate)"
            )
            raise AuthError(msg)
        self.counters.errors += 1
        if code == ERR_ALREADY_SUBSCRIBED:
            log.info("kalshi websocket: already subscribed (benign)", **context)
            return
        if code == ERR_MARKET_NOT_FOUND:
            await self._market_not_found(reply, cmd, sub, context)
            return
        if code == ERR_BUFFER_OVERFLOW and reply.sid is not None:
            sub = self._by_sid.get(reply.sid, sub)
        if sub is None or (cmd is None and code != ERR_BUFFER_OVERFLOW):
            log.error("kalshi websocket error", **context)
            return
        log.warning("kalshi websocket command failed", **context)
        if code in (ERR_UNKNOWN_SID, ERR_BUFFER_OVERFLOW) or (
            cmd is not None and cmd.kind == "get_snapshot"
        ):
            # Our sid is unknown to Kalshi, or frames were lost: start the subscription over.
            await self._resubscribe(sub)
        elif cmd is not None:
            self._undo(cmd, sub)  # the next reconciliation tries again

    def _undo(self, cmd: _Command, sub: Subscription) -> None:
        """Forget the optimistic effect of a command Kalshi refused."""
        if cmd.kind == "subscribe" and sub.state == "pending":
            sub.state = "idle"
        elif cmd.kind == "add_markets":
            sub.server_tickers.difference_update(cmd.tickers)
        elif cmd.kind == "delete_markets":
            sub.server_tickers.update(cmd.tickers)

    async def _market_not_found(
        self,
        reply: CommandReply,
        cmd: _Command | None,
        sub: Subscription | None,
        context: dict[str, Any],
    ) -> None:
        tickers = list(reply.market_tickers or ())
        if not tickers and cmd is not None and len(cmd.tickers) == 1:
            tickers = list(cmd.tickers)
        if cmd is not None and sub is not None:
            self._undo(cmd, sub)
        if not tickers:
            log.error("kalshi websocket: market not found (which one unknown)", **context)
            return
        log.warning("kalshi websocket: market not found; dropped", tickers=tickers, **context)
        self._drop(tickers)
        await self._reconcile()

    def _drop(self, tickers: list[str]) -> None:
        gone = set(tickers) - self.dropped
        self.dropped |= gone
        self.counters.dropped_markets += len(gone)
        for s in self.subscriptions.values():
            if s.tickers is not None:
                s.tickers -= gone
                s.server_tickers -= gone
