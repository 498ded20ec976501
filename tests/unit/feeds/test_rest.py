"""Kalshi REST client over respx: pagination, retries, auth failures, discovery, pacing."""

from __future__ import annotations

import base64
import itertools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from evoarena.clock import VirtualClock
from evoarena.errors import AuthError, FatalFeedError
from evoarena.feeds.kalshi.auth import Signer
from evoarena.feeds.kalshi.rest import KalshiHttpError, KalshiRestClient
from evoarena.settings import KalshiSettings, load_settings

BASE = "https://rest.kalshi.test/trade-api/v2"
NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
NOW_S = NOW_MS // 1000


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    """One RSA key for the module."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _settings(**overrides: Any) -> KalshiSettings:
    base = load_settings().kalshi.model_dump()
    base.update(
        {
            "rest_url": BASE,
            "max_retries": 3,
            "retry_initial_delay_secs": 0.5,
            "retry_max_delay_secs": 8.0,
            "read_burst": 100,
        }
    )
    base.update(overrides)
    return KalshiSettings(**base)


@dataclass
class Harness:
    """A client wired to a respx router, a virtual clock and a response log."""

    router: respx.MockRouter
    clock: VirtualClock
    client: KalshiRestClient
    responses: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    """Build a :class:`Harness` (settings overrides as keyword arguments)."""
    made: list[httpx.AsyncClient] = []

    def build(signer: Signer | None = None, **overrides: Any) -> Harness:
        router = respx.MockRouter(base_url=BASE, assert_all_called=False, using=None)
        http = httpx.AsyncClient(transport=httpx.MockTransport(router.handler))
        made.append(http)
        clock = VirtualClock(NOW_MS)
        responses: list[tuple[str, dict[str, Any], int]] = []
        client = KalshiRestClient(
            http,
            _settings(**overrides),
            clock,
            signer,
            on_response=lambda _t, _m, path, params, status, _b: responses.append(
                (path, params, status)
            ),
            rng=random.Random(3),
        )
        return Harness(router, clock, client, responses)

    yield build
    for http in made:
        await http.aclose()


def _market(ticker: str, status: str = "active", event: str = "EVT-1") -> dict[str, Any]:
    return {"ticker": ticker, "event_ticker": event, "status": status, "title": ticker}


@pytest.mark.anyio
async def test_pagination_follows_the_cursor(make: Any) -> None:
    """Every page is fetched, in order, until the cursor comes back empty."""
    h = make()
    pages = {
        None: {"markets": [_market("A"), _market("B")], "cursor": "c1"},
        "c1": {"markets": [_market("C")], "cursor": "c2"},
        "c2": {"markets": [_market("D")], "cursor": ""},
    }
    route = h.router.get("/markets").mock(
        side_effect=lambda req: httpx.Response(200, json=pages[req.url.params.get("cursor")])
    )
    markets = await h.client.get_markets({"status": "open"})
    assert [m["ticker"] for m in markets] == ["A", "B", "C", "D"]
    sent = [dict(c.request.url.params) for c in route.calls]
    assert [p.get("cursor") for p in sent] == [None, "c1", "c2"]
    assert all(p["limit"] == "1000" and p["status"] == "open" for p in sent)


@pytest.mark.anyio
async def test_repeated_cursor_stops_pagination(make: Any) -> None:
    """A server that keeps returning the same cursor cannot loop us forever."""
    h = make()
    route = h.router.get("/events").mock(
        return_value=httpx.Response(200, json={"events": [{"event_ticker": "E"}], "cursor": "x"})
    )
    events = await h.client.get_events()
    assert route.call_count == 2
    assert len(events) == 2


@pytest.mark.anyio
async def test_requests_are_signed_without_the_query(make: Any, key: rsa.RSAPrivateKey) -> None:
    """Requests carry the key id and a signature over the full path (no query string)."""
    h = make(signer=Signer("key-id-1", key, "test"))
    route = h.router.get("/markets/KX-1").mock(
        return_value=httpx.Response(200, json={"market": _market("KX-1")})
    )
    await h.client.get_market("KX-1")
    req = route.calls.last.request
    assert req.headers["KALSHI-ACCESS-KEY"] == "key-id-1"
    ts = req.headers["KALSHI-ACCESS-TIMESTAMP"]
    assert ts == str(NOW_MS)
    key.public_key().verify(
        base64.b64decode(req.headers["KALSHI-ACCESS-SIGNATURE"]),
        f"{ts}GET/trade-api/v2/markets/KX-1".encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


@pytest.mark.anyio
async def test_429_honours_retry_after_then_succeeds(make: Any) -> None:
    """A 429 with Retry-After waits that long on the clock, then the retry succeeds."""
    h = make()
    route = h.router.get("/markets/A").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}, json={"message": "slow down"}),
            httpx.Response(200, json={"market": _market("A")}),
        ]
    )
    market = await h.client.get_market("A")
    assert market["ticker"] == "A"
    assert route.call_count == 2
    assert h.clock.slept_secs == [3.0]
    assert h.client.retries == 1
    assert [status for _, _, status in h.responses] == [429, 200]


@pytest.mark.anyio
async def test_429_without_retry_after_backs_off(make: Any) -> None:
    """Kalshi usually sends no Retry-After: the jittered backoff applies."""
    h = make()
    h.router.get("/markets/A").mock(
        side_effect=[httpx.Response(429), httpx.Response(429), httpx.Response(200, json={})]
    )
    await h.client.get_market("A")
    first, second = h.clock.slept_secs
    assert 0.25 <= first <= 0.5
    assert 0.5 <= second <= 1.0


@pytest.mark.anyio
async def test_timeouts_and_connection_errors_are_retried(make: Any) -> None:
    """Transport failures are transient too."""
    h = make()
    route = h.router.get("/markets/A").mock(
        side_effect=[
            httpx.ConnectTimeout("slow"),
            httpx.ConnectError("refused"),
            httpx.Response(200, json={"market": _market("A")}),
        ]
    )
    assert (await h.client.get_market("A"))["ticker"] == "A"
    assert route.call_count == 3


@pytest.mark.anyio
async def test_5xx_retried_then_a_clear_fatal_error(make: Any) -> None:
    """Persistent 5xx: retries with growing waits, then a FatalFeedError naming the host."""
    h = make()
    route = h.router.get("/markets").mock(
        return_value=httpx.Response(503, json={"message": "maintenance"})
    )
    with pytest.raises(FatalFeedError) as e:
        await h.client.get_markets()
    assert type(e.value) is FatalFeedError
    assert route.call_count == 4
    assert len(h.clock.slept_secs) == 3
    for n, slept in enumerate(h.clock.slept_secs, start=1):
        step = 0.5 * 2 ** (n - 1)
        assert step / 2 <= slept <= step
    message = str(e.value)
    assert "rest.kalshi.test" in message
    assert "503" in message
    assert "maintenance" in message
    assert "check" in message
    assert "kalshi.rest_url" in message


@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.anyio
async def test_401_and_403_are_auth_errors_without_retry(make: Any, status: int) -> None:
    """Refused credentials stop at once with a message about the key id and key."""
    h = make()
    route = h.router.get("/markets").mock(
        return_value=httpx.Response(status, json={"code": "unauthorized", "message": "bad key"})
    )
    with pytest.raises(AuthError) as e:
        await h.client.get_markets()
    assert route.call_count == 1
    assert h.clock.slept_secs == []
    message = str(e.value)
    assert f"HTTP {status}" in message
    assert "KALSHI_API_KEY_ID" in message
    assert "production" in message


@pytest.mark.anyio
async def test_other_4xx_is_not_retried(make: Any) -> None:
    """A 404 is Kalshi's answer, not a transient failure."""
    h = make()
    route = h.router.get("/markets/NOPE").mock(
        return_value=httpx.Response(404, json={"code": "not_found", "message": "market not found"})
    )
    with pytest.raises(KalshiHttpError) as e:
        await h.client.get_market("NOPE")
    assert route.call_count == 1
    assert e.value.status == 404
    assert "market not found" in str(e.value)


@pytest.mark.anyio
async def test_discovery_asks_for_the_close_window_and_keeps_open_markets(make: Any) -> None:
    """Discovery sends the close-time window (no status, mve excluded) and sorts by status."""
    h = make()
    markets = [
        _market("B-OPEN", "active", "EVT-1"),
        _market("A-PAUSED", "inactive", "EVT-1"),
        _market("C-SOON", "initialized", "EVT-2"),
        _market("D-CLOSED", "closed", "EVT-2"),
        _market("E-DONE", "determined", "EVT-3"),
        {"status": "active"},  # no ticker: ignored
    ]
    markets_route = h.router.get("/markets").mock(
        return_value=httpx.Response(200, json={"markets": markets, "cursor": ""})
    )
    events_route = h.router.get("/events").mock(
        return_value=httpx.Response(
            200,
            json={
                "events": [
                    {"event_ticker": "EVT-1", "series_ticker": "SER-X"},
                    {"event_ticker": "EVT-2", "series_ticker": "SER-Y"},
                    {"event_ticker": "EVT-3", "series_ticker": "SER-X"},
                ],
                "cursor": "",
            },
        )
    )
    series_x = h.router.get("/series/SER-X").mock(
        return_value=httpx.Response(200, json={"series": {"ticker": "SER-X", "category": "A"}})
    )
    series_y = h.router.get("/series/SER-Y").mock(
        return_value=httpx.Response(200, json={"series": {"ticker": "SER-Y", "category": "B"}})
    )
    found = await h.client.discover(NOW_MS, 7200)

    params = dict(markets_route.calls.last.request.url.params)
    assert params["min_close_ts"] == str(NOW_S)
    assert params["max_close_ts"] == str(NOW_S + 7200)
    assert params["mve_filter"] == "exclude"
    assert "status" not in params
    assert found.open_tickers == ("A-PAUSED", "B-OPEN")
    assert found.upcoming_tickers == ("C-SOON",)
    assert {m["ticker"] for m in found.markets} == {"A-PAUSED", "B-OPEN", "C-SOON"}
    assert events_route.calls.last.request.url.params["tickers"] == "EVT-1,EVT-2"
    assert series_x.call_count == 1
    assert series_y.call_count == 1
    assert [p for p, _, _ in h.responses] == [
        "/markets",
        "/events",
        "/series/SER-X",
        "/series/SER-Y",
    ]


@pytest.mark.anyio
async def test_rediscovery_fetches_only_new_events_and_series(make: Any) -> None:
    """Known events and series are not fetched again; a rejected series is skipped."""
    h = make()
    first = [_market("A", event="EVT-1")]
    second = [_market("A", event="EVT-1"), _market("B", event="EVT-2")]
    h.router.get("/markets").mock(
        side_effect=[
            httpx.Response(200, json={"markets": first, "cursor": ""}),
            httpx.Response(200, json={"markets": second, "cursor": ""}),
            httpx.Response(200, json={"markets": second, "cursor": ""}),
        ]
    )
    events_route = h.router.get("/events").mock(
        side_effect=lambda req: httpx.Response(
            200,
            json={
                "events": [
                    {"event_ticker": t, "series_ticker": "SER-" + t}
                    for t in req.url.params["tickers"].split(",")
                ],
                "cursor": "",
            },
        )
    )
    h.router.get("/series/SER-EVT-1").mock(return_value=httpx.Response(200, json={"series": {}}))
    gone = h.router.get("/series/SER-EVT-2").mock(
        return_value=httpx.Response(404, json={"message": "series not found"})
    )
    await h.client.discover(NOW_MS, 3600)
    found = await h.client.discover(NOW_MS + 600_000, 3600)
    assert found.open_tickers == ("A", "B")
    tickers_asked = [c.request.url.params["tickers"] for c in events_route.calls]
    assert tickers_asked == ["EVT-1", "EVT-2"]
    assert gone.call_count == 1
    await h.client.discover(NOW_MS + 1_200_000, 3600)
    assert gone.call_count == 1
    assert events_route.call_count == 2


@pytest.mark.anyio
async def test_rate_limiter_keeps_requests_within_budget(make: Any) -> None:
    """With 2 requests/s and a burst of 1, five requests take at least two seconds of clock."""
    h = make(read_requests_per_sec=2.0, read_burst=1)
    sent_at: list[int] = []

    def answer(_req: httpx.Request) -> httpx.Response:
        sent_at.append(h.clock.now_ms())
        return httpx.Response(200, json={"market": {}})

    h.router.get("/markets/A").mock(side_effect=answer)
    for _ in range(5):
        await h.client.get_market("A")
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert gaps == [500, 500, 500, 500]
    assert h.client.bucket.waited_secs == pytest.approx(2.0, abs=0.01)
