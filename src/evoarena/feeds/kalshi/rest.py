"""Kalshi REST client for market data (read-only: this module never places orders).

I/O only: it returns Kalshi's JSON as received and hands every response — successful or not —
to ``on_response(recv_ms, method, path, params, status, body)``, synchronously and before the
request's coroutine returns, where ``path`` is relative to the base URL (``/markets``,
``/markets/{ticker}``) and ``body`` is the decoded JSON (or the text when the body is not JSON).
The feed records and decodes from that hook.

Failure policy:

* timeouts, connection errors, HTTP 429 and 5xx are retried with jittered exponential backoff
  through the injected clock (``Retry-After`` honoured when sent); once ``max_retries`` retries
  are spent: :class:`~evoarena.errors.FatalFeedError` naming the host and what to check;
* 401/403: :class:`~evoarena.errors.AuthError` at once (no retry storm);
* any other 4xx: :class:`KalshiHttpError` naming the path and Kalshi's ``message``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

import httpx
import orjson
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from evoarena.clock import Clock
from evoarena.errors import AuthError, FatalFeedError
from evoarena.feeds.kalshi.auth import Signer
from evoarena.feeds.kalshi.ratelimit import JitteredBackoff, TokenBucket, TransientError
from evoarena.settings import KalshiSettings

log = structlog.get_logger(__name__)

OnResponse = Callable[[int, str, str, dict[str, Any], int, object], None]
"""``on_response(recv_ms, method, path, params, status, body)``, called for every response."""

Params = Mapping[str, str | int | bool | None]

MARKETS_PAGE_LIMIT = 1000
EVENTS_PAGE_LIMIT = 200
EVENT_TICKERS_PER_REQUEST = 100
"""Event tickers per ``GET /events?tickers=...`` (keeps URLs short)."""

DISCOVERABLE_STATUSES = frozenset({"active", "initialized", "inactive"})
"""Market statuses discovery keeps: open, not yet open, or paused."""
_OPEN_STATUSES = frozenset({"active", "inactive"})


class KalshiHttpError(FatalFeedError):
    """Kalshi answered with a non-retryable error status (not 401/403)."""

    def __init__(self, message: str, *, status: int, path: str) -> None:
        super().__init__(message)
        self.status = status
        self.path = path


@dataclass(frozen=True, slots=True)
class Discovery:
    """What one discovery pass found among markets closing within the window.

    ``open_tickers``: status ``active`` or ``inactive`` (paused) — they have an order book now.
    ``upcoming_tickers``: status ``initialized`` — they open later (a later pass picks them up).
    ``markets``: every kept market object, as received.
    """

    open_tickers: tuple[str, ...]
    upcoming_tickers: tuple[str, ...]
    markets: tuple[dict[str, Any], ...]


def _error_message(body: object) -> str:
    if isinstance(body, dict):
        msg = body.get("message") or body.get("error") or body.get("code")
        if isinstance(msg, str) and msg:
            return msg
        if isinstance(msg, dict) and isinstance(msg.get("message"), str):
            return str(msg["message"])
    if isinstance(body, str) and body.strip():
        return body.strip()[:200]
    return "no error message"


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: ignore it and use our own backoff


def _query(params: Params | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class KalshiRestClient:
    """Read-only Kalshi REST over an injected ``httpx.AsyncClient``.

    The base URL is ``settings.effective_rest_url``; requests are signed when a ``signer`` is
    given (public market data works without one) and paced by a client-side token bucket.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: KalshiSettings,
        clock: Clock,
        signer: Signer | None,
        on_response: OnResponse | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._http = http
        self._settings = settings
        self._clock = clock
        self._signer = signer
        self.on_response = on_response
        self.base_url = settings.effective_rest_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self.host = parts.netloc or self.base_url
        self._base_path = parts.path.rstrip("/")
        self.bucket = TokenBucket(settings.read_requests_per_sec, settings.read_burst, clock)
        self.requests = 0
        """HTTP attempts made (including retried ones)."""
        self.retries = 0
        """Attempts that failed transiently and were retried."""
        self._rng = rng if rng is not None else random.Random()
        self._known_events: set[str] = set()
        self._known_series: set[str] = set()

    # -- one request ----------------------------------------------------------------------------

    async def get(self, path: str, params: Params | None = None) -> Any:
        """``GET`` ``path`` (relative to the base URL) with retries; the decoded JSON body."""
        query = _query(params)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._settings.max_retries + 1),
            wait=JitteredBackoff(
                self._settings.retry_initial_delay_secs,
                self._settings.retry_max_delay_secs,
                self._rng,
            ),
            retry=retry_if_exception_type(TransientError),
            sleep=self._clock.sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return await retrying(self._attempt, path, query)
        except TransientError as e:
            raise FatalFeedError(self._unreachable_message(e.reason)) from e

    def _unreachable_message(self, reason: str) -> str:
        attempts = self._settings.max_retries + 1
        setting = "kalshi.demo_rest_url" if self._settings.demo else "kalshi.rest_url"
        return (
            f"cannot reach Kalshi REST at {self.host} (GET failed {attempts} times; last: "
            f"{reason}); check the network connection, DNS and any firewall or proxy, and that "
            f"{setting} = {self.base_url!r} is right"
        )

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        log.warning(
            "kalshi rest request failed; retrying",
            host=self.host,
            attempt=state.attempt_number,
            reason=getattr(exc, "reason", str(exc)),
            retry_in_secs=round(state.upcoming_sleep, 3),
            path=state.args[0] if state.args else None,
        )

    async def _attempt(self, path: str, query: dict[str, Any]) -> Any:
        await self.bucket.acquire()
        headers: dict[str, str] = {}
        if self._signer is not None:
            headers = self._signer.headers("GET", self._base_path + path, self._clock.now_ms())
        timeout = self._settings.request_timeout_secs
        self.requests += 1
        try:
            resp = await self._http.get(
                self.base_url + path, params=query, headers=headers, timeout=timeout
            )
        except httpx.UnsupportedProtocol as e:
            msg = f"invalid Kalshi REST URL {self.base_url!r}: {e}"
            raise FatalFeedError(msg) from e
        except httpx.TimeoutException as e:
            msg = f"no answer within {timeout}s ({type(e).__name__})"
            raise TransientError(msg) from e
        except httpx.TransportError as e:
            msg = f"connection failed: {e or type(e).__name__}"
            raise TransientError(msg) from e
        recv_ms = self._clock.now_ms()
        status = resp.status_code
        body: object
        try:
            body = orjson.loads(resp.content) if resp.content else None
        except orjson.JSONDecodeError:
            body = resp.text
        if self.on_response is not None:
            self.on_response(recv_ms, "GET", path, dict(query), status, body)
        if status >= 300:
            self._raise_for_status(resp, path, status, body)
        return body

    def _raise_for_status(
        self, resp: httpx.Response, path: str, status: int, body: object
    ) -> NoReturn:
        detail = _error_message(body)
        if status == 429:
            raise TransientError("rate limited (HTTP 429)", _retry_after(resp))
        if status >= 500:
            raise TransientError(f"HTTP {status} from Kalshi: {detail}", _retry_after(resp))
        if status in (401, 403):
            env = "demo" if self._settings.demo else "production"
            msg = (
                f"Kalshi refused our credentials (HTTP {status} on GET {path}: {detail}); "
                "check KALSHI_API_KEY_ID and the private key (KALSHI_PRIVATE_KEY_PATH or "
                f"KALSHI_PRIVATE_KEY), and that the key was created for {env} "
                f"({self.host}) — demo and production keys are separate"
            )
            raise AuthError(msg)
        msg = f"Kalshi rejected GET {path} with HTTP {status}: {detail}"
        raise KalshiHttpError(msg, status=status, path=path)

    # -- pagination -----------------------------------------------------------------------------

    async def paginate(
        self, path: str, params: Params | None, key: str, page_limit: int | None
    ) -> list[dict[str, Any]]:
        """Every ``key`` item over all pages (cursor pagination; a repeated cursor stops)."""
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            query: dict[str, str | int | bool | None] = dict(params or {})
            if page_limit is not None:
                query.setdefault("limit", page_limit)
            if cursor:
                query["cursor"] = cursor
            body = await self.get(path, query)
            items = body.get(key) if isinstance(body, dict) else None
            if not isinstance(items, list):
                log.warning("kalshi rest page without a list", path=path, key=key)
                return out
            out.extend(item for item in items if isinstance(item, dict))
            next_cursor = body.get("cursor") if isinstance(body, dict) else None
            if not isinstance(next_cursor, str) or not next_cursor:
                return out
            if next_cursor in seen:
                log.warning("kalshi rest cursor repeated; stopping pagination", path=path)
                return out
            seen.add(next_cursor)
            cursor = next_cursor

    # -- endpoints ------------------------------------------------------------------------------

    async def get_markets(self, params: Params | None = None) -> list[dict[str, Any]]:
        """``GET /markets``, all pages."""
        return await self.paginate("/markets", params, "markets", MARKETS_PAGE_LIMIT)

    async def get_market(self, ticker: str) -> dict[str, Any]:
        """``GET /markets/{ticker}``: the ``market`` object (empty dict if the body lacks one)."""
        body = await self.get(f"/markets/{quote(ticker, safe='')}")
        market = body.get("market") if isinstance(body, dict) else None
        return market if isinstance(market, dict) else {}

    async def get_orderbook(self, ticker: str, depth: int = 0) -> dict[str, Any]:
        """``GET /markets/{ticker}/orderbook`` (``depth`` 0 = all levels): the whole body."""
        body = await self.get(f"/markets/{quote(ticker, safe='')}/orderbook", {"depth": depth})
        return body if isinstance(body, dict) else {}

    async def get_events(self, params: Params | None = None) -> list[dict[str, Any]]:
        """``GET /events``, all pages."""
        return await self.paginate("/events", params, "events", EVENTS_PAGE_LIMIT)

    async def get_series(self, params: Params | None = None) -> list[dict[str, Any]]:
        """``GET /series``, all pages."""
        return await self.paginate("/series", params, "series", None)

    async def get_series_one(self, series_ticker: str) -> dict[str, Any]:
        """``GET /series/{series_ticker}``: the ``series`` object (empty dict if absent)."""
        body = await self.get(f"/series/{quote(series_ticker, safe='')}")
        series = body.get("series") if isinstance(body, dict) else None
        return series if isinstance(series, dict) else {}

    # -- discovery ------------------------------------------------------------------------------

    async def discover(self, now_ms: int, close_window_secs: int) -> Discovery:
        """Markets closing within ``close_window_secs`` of ``now_ms``, plus their categories.

        ``min/max_close_ts`` combine only with an empty status, so no status is sent (with
        ``mve_filter=exclude``) and markets are kept when their status is ``active``,
        ``initialized`` or ``inactive``. Events not seen before are fetched (``GET /events``,
        for the series link and the fallback category), and ``GET /series/{ticker}`` (the
        authoritative category) for each series not seen before. Their responses reach
        ``on_response`` too.
        """
        now_s = now_ms // 1000
        markets = await self.get_markets(
            {
                "min_close_ts": now_s,
                "max_close_ts": now_s + close_window_secs,
                "mve_filter": "exclude",
            }
        )
        kept = [
            m
            for m in markets
            if isinstance(m.get("ticker"), str) and m.get("status") in DISCOVERABLE_STATUSES
        ]
        kept.sort(key=lambda m: str(m["ticker"]))
        open_tickers = tuple(m["ticker"] for m in kept if m.get("status") in _OPEN_STATUSES)
        upcoming = tuple(m["ticker"] for m in kept if m.get("status") == "initialized")
        await self._fetch_metadata(kept)
        log.info(
            "kalshi discovery",
            markets_in_window=len(markets),
            open=len(open_tickers),
            upcoming=len(upcoming),
            window_secs=close_window_secs,
        )
        return Discovery(open_tickers, upcoming, tuple(kept))

    async def _fetch_metadata(self, markets: list[dict[str, Any]]) -> None:
        """Fetch events (series link, fallback category) and series (category) not seen yet.

        A request Kalshi rejects (e.g. 404 for one series) is logged and skipped: categories are
        nice to have, not a reason to stop. Transport failures after retries and refused
        credentials propagate.
        """
        wanted = sorted(
            {
                m["event_ticker"]
                for m in markets
                if isinstance(m.get("event_ticker"), str) and m["event_ticker"]
            }
            - self._known_events
        )
        series: set[str] = set()
        for chunk in _chunks(wanted, EVENT_TICKERS_PER_REQUEST):
            try:
                events = await self.get_events({"tickers": ",".join(chunk)})
            except KalshiHttpError as e:
                log.warning(
                    "kalshi events request rejected; categories may be missing", error=str(e)
                )
                continue
            for ev in events:
                if isinstance(ev.get("series_ticker"), str) and ev["series_ticker"]:
                    series.add(ev["series_ticker"])
            # Never ask again for an event Kalshi did not list (e.g. a multivariate one).
            self._known_events.update(chunk)
        for ticker in sorted(series - self._known_series):
            try:
                await self.get_series_one(ticker)
            except KalshiHttpError as e:
                log.warning("kalshi series request rejected", series=ticker, error=str(e))
            self._known_series.add(ticker)
