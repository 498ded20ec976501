"""A fake Kalshi for integration tests, plus the keys, settings, clock and sink they share.

* :class:`FakeKalshi` — a real ``websockets`` server on 127.0.0.1 (random port) that speaks
  both halves of Kalshi on one port:

  - WebSocket at ``/trade-api/ws/v2``: verifies the handshake signature with the public key
    (HTTP 401 otherwise), answers ``subscribe`` / ``update_subscription`` (``add_markets``,
    ``delete_markets``, ``get_snapshot``) / ``unsubscribe`` / ``list_subscriptions`` as
    documented, sends ``orderbook_snapshot`` then ``orderbook_delta`` frames with a per-sid
    ``seq``, and is scripted by the test (deltas with or without a ``seq`` hole, ticker, trade
    and lifecycle messages, any frame or raw text, pings, dropped or closed connections,
    refused handshakes, a silent peer). Every command received and every frame sent is logged.
  - plain HTTP GETs under ``/trade-api/v2`` are served by its :class:`FakeKalshiRest`, so a
    real ``httpx.AsyncClient`` (or ``evoarena run`` in a subprocess) can use ``rest_url``.

* :class:`FakeKalshiRest` — the REST half: ``/markets`` (cursor pagination, close-time window,
  the status/close-time combination rule, ``tickers``), ``/markets/{ticker}``,
  ``/markets/{ticker}/orderbook``, ``/events`` (``tickers``), ``/series`` and
  ``/series/{ticker}``, with scripted failures per path (statuses, ready responses or
  exceptions, consumed in order) and a log of every request. Usable alone through
  ``httpx.MockTransport`` (:meth:`FakeKalshiRest.client`).
* :class:`ManualClock` — a clock whose ``sleep`` blocks until the test advances time, so periodic
  loops (rediscovery, readiness timeout) wait for the test instead of spinning.
* :class:`EventCollector` — a synchronous sink that keeps every event batch, applies it to a
  :class:`~evoarena.engine.book.MarketBook`, and lets a test wait (bounded) for a condition.

Keys are generated on first use (cached per session), never committed.
"""

from __future__ import annotations

import base64
import functools
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any, TypeVar

import anyio
import httpx
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from evoarena.engine.book import MarketBook
from evoarena.feeds.events import MarketEvent
from evoarena.feeds.kalshi.auth import Signer
from evoarena.settings import KalshiSettings, TradingSettings, load_settings

KEY_ID = "0f0e0d0c-test-key-id"
REST_PREFIX = "/trade-api/v2"
REST_BASE = "https://kalshi.test/trade-api/v2"
"""The REST base URL for :meth:`FakeKalshiRest.client` (MockTransport: never resolved)."""
WS_PATH = "/trade-api/ws/v2"
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
WAIT_SECS = 5.0
"""Upper bound for every wait in these helpers (they never sleep)."""

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
E = TypeVar("E")


# -- keys, signatures, settings -------------------------------------------------------------------


@functools.cache
def rsa_key() -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key, generated once per test session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def other_rsa_key() -> rsa.RSAPrivateKey:
    """A second RSA key (for "wrong key" tests), generated once per test session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def ed25519_key() -> ed25519.Ed25519PrivateKey:
    """An Ed25519 key, generated once per test session."""
    return ed25519.Ed25519PrivateKey.generate()


def private_key_pem(key: PrivateKey | None = None) -> str:
    """Unencrypted PKCS#8 PEM text of ``key`` (default :func:`rsa_key`), e.g. for
    ``KALSHI_PRIVATE_KEY`` or a key file."""
    k = key if key is not None else rsa_key()
    return k.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def make_signer(key: PrivateKey | None = None) -> Signer:
    """A signer with the test key id (RSA unless another key is given)."""
    return Signer(KEY_ID, key if key is not None else rsa_key(), "test")


def verify(public_key: PublicKey, signature_b64: str, message: bytes) -> bool:
    """Whether ``signature_b64`` is Kalshi's signature of ``message`` (RSA-PSS or Ed25519)."""
    try:
        sig = base64.b64decode(signature_b64, validate=True)
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(
                sig,
                message,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                hashes.SHA256(),
            )
        else:
            public_key.verify(sig, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def headers_valid(
    public_key: PublicKey, headers: Mapping[str, str], method: str, path: str
) -> bool:
    """Whether the three KALSHI-ACCESS-* headers sign ``method`` ``path`` with our key id."""
    key = headers.get("KALSHI-ACCESS-KEY")
    ts = headers.get("KALSHI-ACCESS-TIMESTAMP")
    sig = headers.get("KALSHI-ACCESS-SIGNATURE")
    if key != KEY_ID or ts is None or sig is None or not ts.isdigit():
        return False
    return verify(public_key, sig, f"{ts}{method}{path.split('?', 1)[0]}".encode())


def kalshi_settings(**overrides: Any) -> KalshiSettings:
    """The package's [kalshi] defaults with test overrides (REST at :data:`REST_BASE`).

    Defaults suited to tests: no backoff delay (``retry_initial_delay_secs`` and
    ``reconnect_initial_delay_secs`` 0), a large rate-limit burst, few retries.
    """
    base = load_settings().kalshi.model_dump()
    base.update(
        {
            "rest_url": REST_BASE,
            "demo": False,
            "retry_initial_delay_secs": 0.0,
            "reconnect_initial_delay_secs": 0.0,
            "read_burst": 1000,
            "max_retries": 3,
        }
    )
    base.update(overrides)
    return KalshiSettings(**base)


def trading_settings(**overrides: Any) -> TradingSettings:
    """The package's [trading] defaults with test overrides."""
    base = load_settings().trading.model_dump()
    base.update(overrides)
    return TradingSettings(**base)


def iso(ms: int) -> str:
    """RFC 3339 UTC text of a millisecond timestamp."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def market(
    ticker: str,
    *,
    event_ticker: str = "EVT-A",
    status: str = "active",
    close_ms: int = T0_MS + 3_600_000,
    result: str = "",
    settlement_value: str | None = None,
) -> dict[str, Any]:
    """A Kalshi ``Market`` object (current fixed-point shape)."""
    m: dict[str, Any] = {
        "ticker": ticker,
        "event_ticker": event_ticker,
        "market_type": "binary",
        "title": f"Will {ticker} happen?",
        "status": status,
        "open_time": iso(T0_MS - 86_400_000),
        "close_time": iso(close_ms),
        "yes_bid_dollars": "0.4000",
        "yes_ask_dollars": "0.4500",
        "volume_24h_fp": "120.00",
        "open_interest_fp": "80.00",
        "result": result,
    }
    if settlement_value is not None:
        m["settlement_value_dollars"] = settlement_value
    return m


def event(event_ticker: str, series_ticker: str, *, category: str | None = None) -> dict[str, Any]:
    """A Kalshi ``EventData`` object."""
    ev: dict[str, Any] = {
        "event_ticker": event_ticker,
        "series_ticker": series_ticker,
        "title": f"Event {event_ticker}",
        "sub_title": "",
        "mutually_exclusive": False,
    }
    if category is not None:
        ev["category"] = category
    return ev


def series(ticker: str, *, category: str = "Economics") -> dict[str, Any]:
    """A Kalshi ``Series`` object."""
    return {
        "ticker": ticker,
        "title": f"Series {ticker}",
        "category": category,
        "categories": [category],
        "frequency": "daily",
        "fee_type": "quadratic",
        "fee_multiplier": 1,
    }


# -- a clock the test drives ----------------------------------------------------------------------


class ManualClock:
    """``Clock`` whose ``sleep`` waits until :meth:`advance` moves time past its deadline."""

    def __init__(self, start_ms: int = T0_MS) -> None:
        self._now_ms = start_ms
        self.slept_secs: list[float] = []
        self._sleepers: list[tuple[int, float, anyio.Event]] = []
        self._changed = anyio.Event()

    def now_ms(self) -> int:
        """Current manual time."""
        return self._now_ms

    def monotonic(self) -> float:
        """Manual time in seconds."""
        return self._now_ms / 1000

    async def sleep(self, secs: float) -> None:
        """Block until time reaches now + ``secs`` (a non-positive sleep only yields)."""
        self.slept_secs.append(secs)
        deadline = self._now_ms + round(secs * 1000)
        if deadline <= self._now_ms:
            await anyio.lowlevel.checkpoint()
            return
        entry = (deadline, secs, anyio.Event())
        self._sleepers.append(entry)
        self._notify()
        try:
            await entry[2].wait()
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    def advance(self, secs: float) -> None:
        """Move time forward and wake every sleeper that is due."""
        self._now_ms += round(secs * 1000)
        for entry in list(self._sleepers):
            if entry[0] <= self._now_ms:
                self._sleepers.remove(entry)
                entry[2].set()

    def pending(self) -> list[float]:
        """The durations of the sleeps currently waiting."""
        return [secs for _, secs, _ in self._sleepers]

    async def wait_for_sleep(self, predicate: Callable[[float], bool]) -> float:
        """Wait (bounded) until a sleep whose duration satisfies ``predicate`` is waiting."""
        with anyio.fail_after(WAIT_SECS):
            while True:
                for _, secs, _ in self._sleepers:
                    if predicate(secs):
                        return secs
                changed = self._changed
                await changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


# -- a sink the test reads ------------------------------------------------------------------------


class EventCollector:
    """A synchronous event sink: keeps every batch, applies it to :attr:`book`, wakes waiters."""

    def __init__(self, history_len: int = 120) -> None:
        self.batches: list[list[MarketEvent]] = []
        self.book = MarketBook(history_len)
        self._changed = anyio.Event()

    def __call__(self, events: list[MarketEvent]) -> None:
        """Take one frame's events."""
        self.batches.append(list(events))
        for ev in events:
            self.book.apply(ev)
        self._changed.set()
        self._changed = anyio.Event()

    @property
    def events(self) -> list[MarketEvent]:
        """Every event received, in order."""
        return [ev for batch in self.batches for ev in batch]

    def of_type(self, cls: type[E]) -> list[E]:
        """Every event of type ``cls``, in order."""
        return [ev for ev in self.events if isinstance(ev, cls)]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait (bounded) until ``predicate()`` holds; re-checked after every batch."""
        with anyio.fail_after(WAIT_SECS):
            while not predicate():
                changed = self._changed
                await changed.wait()


# -- REST -----------------------------------------------------------------------------------------

Failure = int | Exception | httpx.Response
"""A scripted failure: a status code, a ready response (e.g. with ``Retry-After``), or an
exception raised by the transport (over real HTTP: the connection is cut)."""

_STATUS_FILTERS = {
    "unopened": {"initialized"},
    "open": {"active"},
    "paused": {"inactive"},
    "closed": {"closed", "determined", "disputed", "amended"},
    "settled": {"finalized"},
}


def _close_s(m: Mapping[str, Any]) -> int:
    return int(datetime.fromisoformat(str(m["close_time"])).timestamp())


class FakeKalshiRest:
    """A handler for Kalshi's market-data REST endpoints (``httpx.Request`` → response).

    ``markets``, ``events`` and ``series`` are plain lists of Kalshi objects the test edits;
    ``books`` (ticker → side → price → contracts) serves ``/markets/{t}/orderbook``.
    """

    def __init__(
        self,
        public_key: PublicKey | None = None,
        *,
        page_size: int = 2,
        books: dict[str, dict[str, dict[str, Decimal]]] | None = None,
    ) -> None:
        self.public_key = public_key
        """When set, every request must carry a valid signature (else HTTP 401)."""
        self.page_size = page_size
        self.markets: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.series: list[dict[str, Any]] = []
        self.books = books if books is not None else {}
        self.requests: list[httpx.Request] = []
        self.failures: dict[str, deque[Failure]] = {}
        self.bad_signatures = 0

    def transport(self) -> httpx.MockTransport:
        """An ``httpx.MockTransport`` over this fake."""
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` served by this fake in-process (base :data:`REST_BASE`)."""
        return httpx.AsyncClient(transport=self.transport())

    def fail(self, path: str, *failures: Failure) -> None:
        """Make the next requests to ``path`` (relative, e.g. ``/markets``) fail in this order."""
        self.failures.setdefault(path, deque()).extend(failures)

    def paths(self) -> list[str]:
        """The relative path of every request received, in order."""
        return [r.url.path.removeprefix(REST_PREFIX) for r in self.requests]

    def add(
        self,
        m: dict[str, Any],
        *,
        series_ticker: str | None = None,
        category: str = "Economics",
    ) -> None:
        """Add a market, and its event and series if they are not listed yet."""
        self.markets.append(m)
        ev_ticker = str(m["event_ticker"])
        s_ticker = series_ticker or ev_ticker.split("-", 1)[0]
        if not any(e["event_ticker"] == ev_ticker for e in self.events):
            self.events.append(event(ev_ticker, s_ticker))
        if not any(s["ticker"] == s_ticker for s in self.series):
            self.series.append(series(s_ticker, category=category))

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Serve one request."""
        self.requests.append(request)
        path = request.url.path.removeprefix(REST_PREFIX)
        if self.public_key is not None and not headers_valid(
            self.public_key, request.headers, request.method, request.url.path
        ):
            self.bad_signatures += 1
            return httpx.Response(401, json={"code": "unauthorized", "message": "bad signature"})
        queue = self.failures.get(path)
        if queue:
            failure = queue.popleft()
            if isinstance(failure, Exception):
                raise failure
            if isinstance(failure, httpx.Response):
                return failure
            return httpx.Response(
                failure, json={"code": "error", "message": f"scripted HTTP {failure}"}
            )
        return self._route(path, request.url.params)

    def _route(self, path: str, params: httpx.QueryParams) -> httpx.Response:
        parts = [p for p in path.split("/") if p]
        match parts:
            case ["markets"]:
                return self._markets(params)
            case ["markets", ticker]:
                for m in self.markets:
                    if m["ticker"] == ticker:
                        return httpx.Response(200, json={"market": m})
                return _not_found("market not found")
            case ["markets", ticker, "orderbook"]:
                book = self.books.get(ticker, {"yes": {}, "no": {}})
                fp = {
                    f"{side}_dollars": [
                        [p, f"{c:.2f}"] for p, c in sorted(book[side].items(), key=_price_key)
                    ]
                    for side in ("yes", "no")
                }
                return httpx.Response(200, json={"orderbook_fp": fp})
            case ["events"]:
                wanted = set(filter(None, params.get("tickers", "").split(",")))
                events = [e for e in self.events if not wanted or e["event_ticker"] in wanted]
                return self._page(events, "events", params)
            case ["series"]:
                return self._page(self.series, "series", params)
            case ["series", ticker]:
                for s in self.series:
                    if s["ticker"] == ticker:
                        return httpx.Response(200, json={"series": s})
                return _not_found("series not found")
        return _not_found("no such path")

    def _markets(self, params: httpx.QueryParams) -> httpx.Response:
        status = params.get("status", "")
        min_close = params.get("min_close_ts")
        max_close = params.get("max_close_ts")
        if (min_close or max_close) and status not in ("", "closed"):
            return httpx.Response(
                400,
                json={
                    "code": "invalid_parameters",
                    "message": "min_close_ts/max_close_ts combine only with status closed",
                },
            )
        items = self.markets
        if status:
            items = [m for m in items if m["status"] in _STATUS_FILTERS.get(status, set())]
        if min_close:
            items = [m for m in items if _close_s(m) >= int(min_close)]
        if max_close:
            items = [m for m in items if _close_s(m) <= int(max_close)]
        tickers = set(filter(None, params.get("tickers", "").split(",")))
        if tickers:
            items = [m for m in items if m["ticker"] in tickers]
        if params.get("mve_filter") == "exclude":
            items = [m for m in items if not str(m["ticker"]).startswith("KXMVE")]
        return self._page(items, "markets", params)

    def _page(
        self, items: list[dict[str, Any]], key: str, params: httpx.QueryParams
    ) -> httpx.Response:
        cursor = params.get("cursor")
        start = int(cursor) if cursor else 0
        size = min(self.page_size, int(params.get("limit", self.page_size)))
        end = start + size
        next_cursor = str(end) if end < len(items) else ""
        return httpx.Response(200, json={key: items[start:end], "cursor": next_cursor})


def _not_found(message: str) -> httpx.Response:
    return httpx.Response(404, json={"code": "not_found", "message": message})


def _price_key(kv: tuple[str, Decimal]) -> Decimal:
    return Decimal(kv[0])


# -- WebSocket ------------------------------------------------------------------------------------


@dataclass
class FakeSub:
    """One subscription on the fake server."""

    sid: int
    channel: str
    tickers: set[str]
    seq: int = 0


@dataclass
class FakeSession:
    """One accepted connection."""

    index: int
    conn: ServerConnection
    subs: dict[int, FakeSub] = field(default_factory=dict)
    next_sid: int = 1
    sent: list[str] = field(default_factory=list)
    """Every text frame sent on this connection, in order."""


class FakeKalshi:
    """The scriptable fake Kalshi server (use as an async context manager).

    ``rest`` serves plain HTTP GETs on the same port; :attr:`books` is shared by WebSocket
    snapshots and the REST order book.
    """

    def __init__(self, public_key: PublicKey | None = None, *, page_size: int = 2) -> None:
        self.public_key: PublicKey = (
            public_key if public_key is not None else rsa_key().public_key()
        )
        self.books: dict[str, dict[str, dict[str, Decimal]]] = {}
        """ticker → side (yes/no) → price string → resting contracts."""
        self.rest = FakeKalshiRest(page_size=page_size, books=self.books)
        self.unknown_markets: set[str] = set()
        """Markets that answer error 16 (market not found)."""
        self.send_snapshots = True
        """Send snapshots on subscribe / add_markets (False: the test sends them)."""
        self.refuse_get_snapshot = False
        """Answer ``get_snapshot`` with error 13 (to exercise the resubscribe fallback)."""
        self.handshake_statuses: deque[int] = deque()
        """Statuses to refuse the next handshakes with (consumed in order)."""
        self.commands: list[dict[str, Any]] = []
        """Every command received, each with ``_conn`` = the connection index."""
        self.sent: list[str] = []
        """Every text frame sent, over all connections, in order."""
        self.accepted = 0
        self.rejected = 0
        self.http_requests = 0
        self.handshake_headers: list[dict[str, str]] = []
        self.session: FakeSession | None = None
        self._silenced: list[ServerConnection] = []
        self._server: Server | None = None
        self._changed = anyio.Event()
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> FakeKalshi:
        self._server = await serve(
            self._handler,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            ping_interval=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in self._silenced:
            conn.transport.abort()  # they would hold up the server's close for its timeout
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        """The ``ws://`` URL clients connect to."""
        return f"ws://127.0.0.1:{self.port}{WS_PATH}"

    @property
    def rest_url(self) -> str:
        """The ``http://`` REST base URL served on the same port."""
        return f"http://127.0.0.1:{self.port}{REST_PREFIX}"

    def settings(self, **overrides: Any) -> KalshiSettings:
        """:func:`kalshi_settings` pointed at this server (REST over real HTTP)."""
        return kalshi_settings(**{"ws_url": self.url, "rest_url": self.rest_url, **overrides})

    def set_book(
        self, ticker: str, yes: Iterable[tuple[str, str]], no: Iterable[tuple[str, str]]
    ) -> None:
        """Set a market's resting bids: ``(price dollars, contracts)`` string pairs."""
        self.books[ticker] = {
            "yes": {p: Decimal(c) for p, c in yes},
            "no": {p: Decimal(c) for p, c in no},
        }

    def add_market(
        self,
        ticker: str,
        *,
        yes: Iterable[tuple[str, str]] = (("0.4000", "10.00"),),
        no: Iterable[tuple[str, str]] = (("0.5500", "20.00"),),
        series_ticker: str | None = None,
        category: str = "Economics",
        **market_fields: Any,
    ) -> dict[str, Any]:
        """List a market over REST (with its event and series) and give it a book."""
        m = market(ticker, **market_fields)
        self.rest.add(m, series_ticker=series_ticker, category=category)
        self.set_book(ticker, yes, no)
        return m

    # -- HTTP: handshake check or REST ----------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path.startswith(REST_PREFIX + "/") or path == REST_PREFIX:
            return self._serve_rest(connection, request)
        headers = dict(request.headers.raw_items())
        self.handshake_headers.append(headers)
        if self.handshake_statuses:
            status = self.handshake_statuses.popleft()
            self.rejected += 1
            self._notify()
            return connection.respond(HTTPStatus(status), "scripted refusal\n")
        if path != WS_PATH or not headers_valid(self.public_key, request.headers, "GET", path):
            self.rejected += 1
            self._notify()
            return connection.respond(HTTPStatus.UNAUTHORIZED, "authentication failed\n")
        return None

    def _serve_rest(self, connection: ServerConnection, request: Request) -> Response:
        self.http_requests += 1
        url = f"http://127.0.0.1:{self.port}{request.path}"
        req = httpx.Request("GET", url, headers=list(request.headers.raw_items()))
        try:
            resp = self.rest.handle(req)
        except Exception:  # a scripted transport failure: cut the connection
            connection.transport.abort()
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "")
        body = resp.content
        headers = Headers(
            [
                ("Connection", "close"),
                ("Content-Length", str(len(body))),
                ("Content-Type", resp.headers.get("content-type", "application/json")),
            ]
        )
        for name in ("retry-after",):
            if name in resp.headers:
                headers[name] = resp.headers[name]
        status = HTTPStatus(resp.status_code)
        return Response(status.value, status.phrase, headers, body)

    # -- WebSocket commands -------------------------------------------------------------------

    async def _handler(self, conn: ServerConnection) -> None:
        session = FakeSession(self.accepted, conn)
        self.accepted += 1
        self.session = session
        self._notify()
        try:
            async for raw in conn:
                try:
                    cmd = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    await self._error(session, 0, 1, "Unable to process message")
                    continue
                self.commands.append({**cmd, "_conn": session.index})
                await self._dispatch(session, cmd)
                self._notify()
        except ConnectionClosed:
            pass
        finally:
            if self.session is session:
                self.session = None
            self._notify()

    async def _send(self, session: FakeSession, obj: dict[str, Any]) -> None:
        text = orjson.dumps(obj).decode()
        session.sent.append(text)
        self.sent.append(text)
        await session.conn.send(text)

    async def _error(
        self, session: FakeSession, cmd_id: int, code: int, text: str, ticker: str | None = None
    ) -> None:
        msg: dict[str, Any] = {"code": code, "msg": text}
        if ticker is not None:
            msg["market_ticker"] = ticker
        await self._send(session, {"id": cmd_id, "type": "error", "msg": msg})

    async def _dispatch(self, session: FakeSession, cmd: dict[str, Any]) -> None:
        cmd_id = cmd.get("id", 0)
        params = cmd.get("params") or {}
        name = cmd.get("cmd")
        if name == "subscribe":
            await self._subscribe(session, cmd_id, params)
        elif name == "update_subscription":
            await self._update(session, cmd_id, params)
        elif name == "unsubscribe":
            for sid in params.get("sids", []):
                sub = session.subs.pop(sid, None)
                if sub is None:
                    await self._error(session, cmd_id, 7, "Unknown subscription ID")
                    continue
                await self._send(
                    session, {"id": cmd_id, "sid": sid, "seq": sub.seq, "type": "unsubscribed"}
                )
        elif name == "list_subscriptions":
            listing = [{"channel": s.channel, "sid": s.sid} for s in session.subs.values()]
            await self._send(session, {"id": cmd_id, "type": "ok", "msg": listing})
        else:
            await self._error(session, cmd_id, 5, "Unknown command")

    async def _subscribe(self, session: FakeSession, cmd_id: int, params: dict[str, Any]) -> None:
        tickers = list(params.get("market_tickers") or [])
        if "market_ticker" in params:
            tickers.append(params["market_ticker"])
        channels = params.get("channels") or []
        if not channels:
            await self._error(session, cmd_id, 3, "Channels required")
            return
        for t in tickers:
            if t in self.unknown_markets:
                await self._error(session, cmd_id, 16, "Market not found", t)
                return
        for channel in channels:
            if channel == "orderbook_delta" and not tickers:
                await self._error(session, cmd_id, 14, "Market ticker required")
                return
            sid = session.next_sid
            session.next_sid += 1
            sub = FakeSub(sid, channel, set(tickers))
            session.subs[sid] = sub
            await self._send(
                session,
                {"id": cmd_id, "type": "subscribed", "msg": {"channel": channel, "sid": sid}},
            )
            if channel == "orderbook_delta" and self.send_snapshots:
                for t in sorted(tickers):
                    await self._snapshot(session, sub, t)

    async def _update(self, session: FakeSession, cmd_id: int, params: dict[str, Any]) -> None:
        sids = params.get("sids") or ([params["sid"]] if "sid" in params else [])
        action = params.get("action")
        tickers = list(params.get("market_tickers") or [])
        if len(sids) != 1:
            await self._error(session, cmd_id, 12, "Exactly one subscription ID is required")
            return
        sub = session.subs.get(sids[0])
        if sub is None:
            await self._error(session, cmd_id, 7, "Unknown subscription ID")
            return
        if action == "get_snapshot":
            if self.refuse_get_snapshot:
                await self._error(session, cmd_id, 13, "Unsupported action")
                return
            await self._ok(session, cmd_id, sub)
            for t in sorted(tickers):
                if t in sub.tickers:
                    await self._snapshot(session, sub, t)
        elif action == "add_markets":
            for t in tickers:
                if t in self.unknown_markets:
                    await self._error(session, cmd_id, 16, "Market not found", t)
                    return
            new = [t for t in tickers if t not in sub.tickers]
            sub.tickers.update(tickers)
            await self._ok(session, cmd_id, sub)
            if sub.channel == "orderbook_delta" and self.send_snapshots:
                for t in sorted(new):
                    await self._snapshot(session, sub, t)
        elif action == "delete_markets":
            sub.tickers.difference_update(tickers)
            await self._ok(session, cmd_id, sub)
        else:
            await self._error(session, cmd_id, 13, "Unsupported action")

    async def _ok(self, session: FakeSession, cmd_id: int, sub: FakeSub) -> None:
        # Like Kalshi, the ok reply to update_subscription takes the next seq of the sid's stream.
        sub.seq += 1
        await self._send(
            session,
            {
                "id": cmd_id,
                "sid": sub.sid,
                "seq": sub.seq,
                "type": "ok",
                "msg": {"market_tickers": sorted(sub.tickers)},
            },
        )

    async def _snapshot(self, session: FakeSession, sub: FakeSub, ticker: str) -> None:
        book = self.books.get(ticker, {"yes": {}, "no": {}})
        msg: dict[str, Any] = {"market_ticker": ticker, "market_id": f"id-{ticker}"}
        for side in ("yes", "no"):
            levels = sorted(book[side].items(), key=_price_key)
            if levels:
                msg[f"{side}_dollars_fp"] = [[p, f"{c:.2f}"] for p, c in levels]
        sub.seq += 1
        await self._send(
            session, {"type": "orderbook_snapshot", "sid": sub.sid, "seq": sub.seq, "msg": msg}
        )

    # -- scripting ----------------------------------------------------------------------------

    def _current(self) -> FakeSession:
        if self.session is None:
            msg = "no client is connected to the fake Kalshi"
            raise AssertionError(msg)
        return self.session

    def sub_for(self, ticker: str | None, channel: str = "orderbook_delta") -> FakeSub:
        """The current connection's subscription carrying ``ticker`` (any, if None) on
        ``channel``."""
        for sub in self._current().subs.values():
            if sub.channel == channel and (ticker is None or ticker in sub.tickers):
                return sub
        msg = f"{ticker} is not subscribed on {channel}"
        raise AssertionError(msg)

    def sid_for(self, ticker: str | None, channel: str = "orderbook_delta") -> int:
        """The sid carrying ``ticker`` on ``channel`` in the current connection."""
        return self.sub_for(ticker, channel).sid

    def subscribed(self, channel: str = "orderbook_delta") -> set[str]:
        """Every ticker the current connection has on ``channel`` (empty if not connected)."""
        if self.session is None:
            return set()
        return {t for s in self.session.subs.values() if s.channel == channel for t in s.tickers}

    async def send_delta(
        self, ticker: str, side: str, price: str, delta: str, *, skip_seq: bool = False
    ) -> None:
        """Change the resting size at ``price``; ``skip_seq`` leaves a hole in the sequence."""
        session = self._current()
        sub = self.sub_for(ticker)
        ladder = self.books.setdefault(ticker, {"yes": {}, "no": {}})[side]
        new = ladder.get(price, Decimal(0)) + Decimal(delta)
        if new <= 0:
            ladder.pop(price, None)
        else:
            ladder[price] = new
        sub.seq += 2 if skip_seq else 1
        msg = {
            "market_ticker": ticker,
            "market_id": f"id-{ticker}",
            "price_dollars": price,
            "delta_fp": delta,
            "side": side,
            "ts_ms": T0_MS,
        }
        await self._send(
            session, {"type": "orderbook_delta", "sid": sub.sid, "seq": sub.seq, "msg": msg}
        )

    async def send_snapshot(self, ticker: str) -> None:
        """Send ``ticker``'s current book as an ``orderbook_snapshot`` on its sid."""
        await self._snapshot(self._current(), self.sub_for(ticker), ticker)

    async def send_ticker(self, ticker: str, **fields: Any) -> None:
        """Send a ``ticker`` message (no ``seq``); ``fields`` override the defaults."""
        sub = self.sub_for(ticker, "ticker")
        msg: dict[str, Any] = {
            "market_ticker": ticker,
            "market_id": f"id-{ticker}",
            "price_dollars": "0.4800",
            "yes_bid_dollars": "0.4500",
            "yes_ask_dollars": "0.5300",
            "volume_fp": "33896.00",
            "open_interest_fp": "20422.00",
            "ts_ms": T0_MS,
            **fields,
        }
        await self._send(self._current(), {"type": "ticker", "sid": sub.sid, "msg": msg})

    async def send_trade(
        self, ticker: str, yes_price: str = "0.3600", count: str = "10.00", taker: str = "yes"
    ) -> None:
        """Send a ``trade`` message (no ``seq``)."""
        sub = self.sub_for(ticker, "trade")
        no_price = f"{Decimal(1) - Decimal(yes_price):.4f}"
        msg = {
            "trade_id": f"trade-{len(self.sent)}",
            "market_ticker": ticker,
            "yes_price_dollars": yes_price,
            "no_price_dollars": no_price,
            "count_fp": count,
            "taker_side": taker,
            "taker_outcome_side": taker,
            "taker_book_side": "bid" if taker == "yes" else "ask",
            "ts_ms": T0_MS,
        }
        await self._send(self._current(), {"type": "trade", "sid": sub.sid, "msg": msg})

    async def send_lifecycle(self, ticker: str, event_type: str, **fields: Any) -> None:
        """Send a ``market_lifecycle_v2`` message (with ``seq``) for ``ticker``.

        E.g. ``send_lifecycle("A", "determined", result="yes", settlement_value="1.0000")``.
        """
        sub = self.sub_for(None, "market_lifecycle_v2")
        sub.seq += 1
        msg = {"market_ticker": ticker, "event_type": event_type, **fields}
        frame = {
            "type": "market_lifecycle_v2",
            "sid": sub.sid,
            "seq": sub.seq,
            "sending_ts_ms": T0_MS,
            "msg": msg,
        }
        await self._send(self._current(), frame)

    async def send_frame(self, obj: dict[str, Any]) -> None:
        """Send any JSON object as a text frame."""
        await self._send(self._current(), obj)

    async def send_text(self, text: str) -> None:
        """Send raw text (e.g. something that is not JSON)."""
        session = self._current()
        session.sent.append(text)
        self.sent.append(text)
        await session.conn.send(text)

    async def ping(self) -> None:
        """Ping the client with Kalshi's ``heartbeat`` payload and wait for its pong."""
        pong = await self._current().conn.ping(b"heartbeat")
        with anyio.fail_after(WAIT_SECS):
            await pong

    def drop(self) -> None:
        """Cut the current connection abruptly (no close frame), like a network failure."""
        self._current().conn.transport.abort()

    def go_silent(self) -> None:
        """Stop reading the current connection (no pongs, no replies): a dead peer whose TCP
        connection stays open. The client's keep-alive has to notice."""
        conn = self._current().conn
        conn.transport.pause_reading()
        self._silenced.append(conn)

    async def close(self, code: int = 1001, reason: str = "going away") -> None:
        """Close the current connection cleanly with ``code``."""
        await self._current().conn.close(code, reason)

    def commands_named(self, name: str, conn: int | None = None) -> list[dict[str, Any]]:
        """Commands ``name`` received (on connection ``conn`` if given)."""
        return [
            c
            for c in self.commands
            if c.get("cmd") == name and (conn is None or c["_conn"] == conn)
        ]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait (bounded) until ``predicate()`` holds; re-checked after every server event."""
        with anyio.fail_after(WAIT_SECS):
            while not predicate():
                changed = self._changed
                await changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()
