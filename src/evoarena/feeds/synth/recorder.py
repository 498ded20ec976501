"""The simulated recorder: hourly REST polls and WebSocket subscription upkeep."""

from __future__ import annotations

import base64
import math
from typing import Any

from evoarena.feeds.synth.books import _Books
from evoarena.feeds.synth.catalogue import _CATALOGUE, _series_json
from evoarena.feeds.synth.common import (
    _PER_MARKET_CHANNELS,
    _PRICE_STR,
    _RECONCILE,
    _REST,
    EVENTS_PER_REQUEST,
    HOUR_MS,
    MARKETS_PAGE_LIMIT,
    ONE,
    TICKERS_PER_SUBSCRIPTION,
    _count,
    _rfc3339,
)
from evoarena.feeds.synth.model import _Event, _lot, _Market, _Sub


class _Recorder(_Books):
    """What the live recorder would have polled and subscribed, and the replies it got."""

    # -- discovery: REST polls and subscription upkeep ---------------------------------------

    def _listed(self, d: int) -> list[_Market]:
        return [
            m for m in self.by_ticker if m.event.open_ms <= d < m.event.close_ms and not m.paused
        ]

    def _on_discovery(self, d: int, _: object, __: int) -> None:
        """A REST poll (responses arrive over the next second or so), then subscription upkeep.

        Bodies reflect the state at ``d``; each response is written at its own receive time
        while WebSocket frames keep flowing, as with the live feed's concurrent tasks.
        """
        listed = self._listed(d)
        for m in listed:
            if not m.live:
                self._go_live(m, d)
        t = d + 110
        t = self._rest_markets(t, listed)
        t = self._rest_events(t, listed)
        if d == self.t0:
            body = {"series": [_series_json(s) for s in _CATALOGUE]}
            t += 95
            self.heap.push(t, _REST, ("/series", {}, body))
        self.heap.push(t + 140, _RECONCILE, [m.ticker for m in listed])

    def _on_rest(
        self, t: int, response: tuple[str, dict[str, Any], dict[str, Any]], _: int
    ) -> None:
        self.out.rest(t, *response)

    def _on_reconcile(self, t: int, tickers: list[str], _: int) -> None:
        index = self.index
        self._reconcile(
            t, [x for x in tickers if t < index[x].event.close_ms and not index[x].paused]
        )

    def _rest_markets(self, t: int, listed: list[_Market]) -> int:
        pages = [
            listed[i : i + MARKETS_PAGE_LIMIT] for i in range(0, len(listed), MARKETS_PAGE_LIMIT)
        ]
        cursor = ""
        for n, page in enumerate(pages or [[]]):
            params: dict[str, Any] = {"limit": MARKETS_PAGE_LIMIT, "status": "open"}
            if cursor:
                params = {"cursor": cursor, **params}
            nxt = ""
            if n + 1 < len(pages):
                nxt = base64.urlsafe_b64encode(self.micro.randbytes(27)).decode()
            body = {"cursor": nxt, "markets": [self._market_json(m, t) for m in page]}
            t += self.micro.randint(80, 220)
            self.heap.push(t, _REST, ("/markets", params, body))
            cursor = nxt
        return t

    def _rest_events(self, t: int, listed: list[_Market]) -> int:
        new: dict[str, _Event] = {}
        for m in listed:
            ev = m.event
            if ev.ticker not in self.announced_events:
                new[ev.ticker] = ev
        ordered = [new[k] for k in sorted(new)]
        self.announced_events.update(new)
        for i in range(0, len(ordered), EVENTS_PER_REQUEST):
            chunk = ordered[i : i + EVENTS_PER_REQUEST]
            params = {"tickers": ",".join(ev.ticker for ev in chunk)}
            body = {"cursor": "", "events": [self._event_json(ev) for ev in chunk]}
            t += self.micro.randint(60, 160)
            self.heap.push(t, _REST, ("/events", params, body))
        return t

    def _event_json(self, ev: _Event) -> dict[str, Any]:
        return {
            "category": ev.spec.profile.category,
            "collateral_return_type": "",
            "event_ticker": ev.ticker,
            "mutually_exclusive": False,
            "series_ticker": ev.spec.ticker,
            "strike_date": _rfc3339(ev.strike_ms),
            "sub_title": ev.sub_title,
            "title": ev.title,
        }

    def _market_json(self, m: _Market, t: int) -> dict[str, Any]:
        ev = m.event
        close = ev.close_known_at(t)
        bid = max(m.yes) if m.yes else None
        ask = min(m.no) if m.no else None
        bid_p = m.grid[bid] if bid is not None else 0
        ask_p = m.grid[ask] if ask is not None else ONE
        if not m.static:
            m.static = self._market_static(m)
        body = dict(m.static)
        body.update(
            close_time=_rfc3339(close),
            expected_expiration_time=_rfc3339(close + HOUR_MS),
            expiration_time=_rfc3339(close + 7 * 24 * HOUR_MS),
            last_price_dollars=_PRICE_STR[m.last_price],
            latest_expiration_time=_rfc3339(close + 7 * 24 * HOUR_MS),
            no_ask_dollars=_PRICE_STR[ONE - bid_p],
            no_bid_dollars=_PRICE_STR[ONE - ask_p],
            open_interest_fp=_count(m.oi),
            status="active",
            volume_24h_fp=_count(m.volume_24h),
            volume_fp=_count(m.volume),
            yes_ask_dollars=_PRICE_STR[ask_p],
            yes_ask_size_fp=_count(m.no[ask] if ask is not None else 0),
            yes_bid_dollars=_PRICE_STR[bid_p],
            yes_bid_size_fp=_count(m.yes[bid] if bid is not None else 0),
        )
        return dict(sorted(body.items()))

    def _market_static(self, m: _Market) -> dict[str, Any]:
        ev = m.event
        static: dict[str, Any] = {
            "can_close_early": m.can_close_early,
            "created_time": m.created_time,
            "event_ticker": ev.ticker,
            "expiration_value": "",
            "fractional_trading_enabled": m.fractional,
            "liquidity_dollars": "0.0000",
            "market_type": "binary",
            "no_sub_title": m.yes_sub_title,
            "notional_value_dollars": "1.0000",
            "open_time": _rfc3339(ev.open_ms),
            "previous_price_dollars": _PRICE_STR[m.prev[0]],
            "previous_yes_ask_dollars": _PRICE_STR[m.prev[2]],
            "previous_yes_bid_dollars": _PRICE_STR[m.prev[1]],
            "price_level_structure": m.ticks.name,
            "price_ranges": list(m.ticks.ranges),
            "response_price_units": "usd_cent",
            "result": "",
            "rules_primary": m.rules,
            "rules_secondary": "",
            "settlement_timer_seconds": m.settle_secs,
            "subtitle": m.yes_sub_title,
            "ticker": m.ticker,
            "title": ev.title,
            "updated_time": _rfc3339(ev.open_ms),
            "yes_sub_title": m.yes_sub_title,
        }
        if m.can_close_early:
            static["early_close_condition"] = (
                "If the outcome is known early, the market closes the following 10am ET."
            )
        if m.strike is not None:
            static["strike_type"] = "greater"
            static["floor_strike"] = m.strike
        return static

    def _go_live(self, m: _Market, t: int) -> None:
        """First sight of an open market: seed its statistics and its book."""
        rng = self.micro
        m.live = True
        bid, ask = self._target(m, t, m.spread)
        age_h = max(0.0, (t - m.event.open_ms) / HOUR_MS)
        m.volume = round(m.liq * 100 * math.sqrt(age_h + 1) * rng.lognormvariate(0.0, 0.7)) * 100
        m.volume_24h = _lot(m, round(m.volume * min(1.0, 24 / (age_h + 1)) * rng.uniform(0.6, 1)))
        m.oi = _lot(m, round(m.volume * rng.uniform(0.3, 0.8)))
        mid = self._mid_price(m, bid, ask)
        m.last_price = mid
        m.notional = m.volume * mid // 100
        if age_h >= 24:
            drift = rng.choice((-2, -1, 0, 0, 1, 2))
            i = min(max(m.grid.index(mid) + drift, 1), len(m.grid) - 2)
            m.prev = (m.grid[i], m.grid[i - 1], m.grid[i + 1])
        for k in range(m.depth):
            if bid is None or bid < 0:
                break
            m.yes[bid] = self._size(m, k)
            bid -= rng.choice((1, 1, 1, 2, 3))
        for k in range(m.depth):
            if ask is None or ask >= len(m.grid):
                break
            m.no[ask] = self._size(m, k)
            ask += rng.choice((1, 1, 1, 2, 3))

    def _reconcile(self, t: int, wanted_list: list[str]) -> None:
        """Mirror the live client: place tickers in chunks, then subscribe/update/unsubscribe."""
        wanted = set(wanted_list)
        for channel in _PER_MARKET_CHANNELS:
            chunks = [s for s in self.subs if s.channel == channel]
            have: set[str] = set()
            for s in chunks:  # per-market channels always list their tickers
                s.want = [x for x in s.want or () if x in wanted]
                have.update(s.want)
            new = [x for x in wanted_list if x not in have]  # wanted_list is sorted
            for s in chunks:
                kept = s.want or []
                room = TICKERS_PER_SUBSCRIPTION - len(kept)
                if room > 0 and new:
                    s.want = sorted(kept + new[:room])
                    new = new[room:]
            while new:
                self._new_sub(channel, new[:TICKERS_PER_SUBSCRIPTION])
                new = new[TICKERS_PER_SUBSCRIPTION:]
        if self.lifecycle is None:
            self.lifecycle = self._new_sub("market_lifecycle_v2", None)
        for s in list(self.subs):
            t = self._sync(t, s)

    def _new_sub(self, channel: str, want: list[str] | None) -> _Sub:
        s = _Sub(self.next_key, channel, want)
        self.next_key += 1
        self.subs.append(s)
        return s

    def _sync(self, t: int, s: _Sub) -> int:
        out = self.out
        if s.want is None:  # market_lifecycle_v2: subscribed once, no tickers
            if s.sid == 0:
                t = self._subscribed(t, s)
            return t
        if not s.want:
            if s.sid:
                cmd = self._cmd()
                reply: dict[str, Any] = {"id": cmd, "sid": s.sid}
                if s.channel == "orderbook_delta":
                    reply["seq"] = s.seq
                reply["type"] = "unsubscribed"
                t = out.ws(t + 4, reply)
                self._detach(s, s.server)
            self.subs.remove(s)
            return t
        if s.sid == 0:
            t = self._subscribed(t, s)
            return self._attach(t, s, list(s.want))
        server = set(s.server)
        add = [x for x in s.want if x not in server]
        keep = set(s.want)
        remove = [x for x in s.server if x not in keep]
        if add:
            s.server = sorted(s.server + add)
            t = self._ok(t, s)
            t = self._attach(t, s, add)
        if remove:
            s.server = [x for x in s.server if x in keep]
            t = self._ok(t, s)
            self._detach(s, remove)
        return t

    def _cmd(self) -> int:
        self.next_cmd += 1
        return self.next_cmd - 1

    def _subscribed(self, t: int, s: _Sub) -> int:
        s.sid = self.next_sid
        self.next_sid += 1
        s.server = list(s.want) if s.want is not None else []
        msg = {"id": self._cmd(), "type": "subscribed", "msg": {"channel": s.channel, "sid": s.sid}}
        return self.out.ws(t + 6, msg)

    def _ok(self, t: int, s: _Sub) -> int:
        reply: dict[str, Any] = {"id": self._cmd(), "sid": s.sid}
        if s.channel == "orderbook_delta":
            s.seq += 1  # like Kalshi's: the ok takes the next seq of the sid's stream
            reply["seq"] = s.seq
        reply["type"] = "ok"
        reply["msg"] = {"market_tickers": list(s.server)}
        return self.out.ws(t + 5, reply)

    def _attach(self, t: int, s: _Sub, tickers: list[str]) -> int:
        by_ticker = self.index
        for x in tickers:
            m = by_ticker[x]
            if s.channel == "orderbook_delta":
                m.ob_sub = s
                t = self._snapshot(t, m)
                self._start_chains(m, t)
            elif s.channel == "ticker":
                m.tk_sub = s
            else:
                m.tr_sub = s
        return t

    def _detach(self, s: _Sub, tickers: list[str]) -> None:
        by_ticker = self.index
        for x in tickers:
            m = by_ticker[x]
            if s.channel == "orderbook_delta":
                m.ob_sub = None
                m.epoch += 1
            elif s.channel == "ticker":
                m.tk_sub = None
            else:
                m.tr_sub = None
