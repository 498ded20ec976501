"""The discrete-event run of a synthetic day and its market lifecycle."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from evoarena.feeds.recording import RecordingWriter
from evoarena.feeds.synth.common import (
    _ANNOUNCE,
    _BOOK,
    _CLOSE,
    _CREATE,
    _DETERMINE,
    _DISCOVERY,
    _PAUSE,
    _RECONCILE,
    _REFILL,
    _REST,
    _RESUME,
    _SETTLE,
    _TRADE,
    HOUR_MS,
    WORLD_QUIET_MS,
    _Out,
)
from evoarena.feeds.synth.model import _Event, _Market
from evoarena.feeds.synth.recorder import _Recorder


class _Day(_Recorder):
    """Builds the world from the seed, then runs it as a discrete-event simulation."""

    # -- running ------------------------------------------------------------------------------

    def run(
        self, writer: RecordingWriter, on_progress: Callable[[float], None] | None = None
    ) -> None:
        """Simulate the window and write every item (progress reported at each discovery)."""
        self.out = _Out(writer)
        heap = self.heap
        for d in self.discoveries:
            heap.push(d, _DISCOVERY, d)
        for ev in self.events:
            self._schedule_event(ev)
        handlers: dict[int, Callable[[int, Any, int], None]] = {
            _DISCOVERY: self._on_discovery,
            _CREATE: self._on_create,
            _ANNOUNCE: self._on_announce,
            _PAUSE: self._on_pause,
            _RESUME: self._on_resume,
            _CLOSE: self._on_close,
            _DETERMINE: self._on_determine,
            _SETTLE: self._on_settle,
            _BOOK: self._on_book,
            _TRADE: self._on_trade,
            _REFILL: self._on_refill,
            _REST: self._on_rest,
            _RECONCILE: self._on_reconcile,
        }
        items, t1 = heap.items, self.t1
        if on_progress is not None:
            discover, t0 = handlers[_DISCOVERY], self.t0

            def discover_and_report(t: int, obj: Any, epoch: int) -> None:
                discover(t, obj, epoch)
                on_progress((t - t0) / max(1, t1 - t0))

            handlers[_DISCOVERY] = discover_and_report
        while items:
            t, _, kind, obj, epoch = heapq.heappop(items)
            if t >= t1:
                break
            handlers[kind](t, obj, epoch)

    def _schedule_event(self, ev: _Event) -> None:
        push, t1 = self.heap.push, self.t1
        for t, kind in (
            (ev.created_ms, _CREATE),
            (ev.announce_ms, _ANNOUNCE),
            (ev.close_ms, _CLOSE),
        ):
            if t is not None and self.t0 + WORLD_QUIET_MS <= t < t1:
                push(t, kind, ev)
        for i, m in enumerate(ev.markets):
            # Markets of an event are determined, then settled, a moment apart.
            for t, kind in (
                (ev.determined_ms + 700 * i, _DETERMINE),
                (ev.settled_ms + 500 * i, _SETTLE),
            ):
                if self.t0 + WORLD_QUIET_MS <= t < t1:
                    push(t, kind, m)
            if m.pause is not None:
                push(m.pause[0], _PAUSE, m)
                push(m.pause[1], _RESUME, m)

    # -- lifecycle ----------------------------------------------------------------------------

    def _lifecycle_frame(
        self, t: int, msg: dict[str, Any], mtype: str = "market_lifecycle_v2"
    ) -> None:
        sub = self.lifecycle
        if sub is None:  # only before the recorder's first subscription; nothing is scheduled there
            return
        sub.seq += 1
        if mtype == "market_lifecycle_v2":
            frame = {
                "type": mtype,
                "sending_ts_ms": t - 9,
                "sid": sub.sid,
                "seq": sub.seq,
                "msg": msg,
            }
        else:
            frame = {"type": mtype, "sid": sub.sid, "seq": sub.seq, "msg": msg}
        self.out.ws(t, frame)

    def _on_create(self, t: int, ev: _Event, _: int) -> None:
        spec = ev.spec
        self._lifecycle_frame(
            t,
            {
                "event_ticker": ev.ticker,
                "exchange_index": 0,
                "title": ev.title,
                "subtitle": ev.sub_title,
                "collateral_return_type": "",
                "series_ticker": spec.ticker,
                "strike_date": ev.strike_ms // 1000,
            },
            "event_lifecycle",
        )
        for i, m in enumerate(ev.markets):
            meta: dict[str, Any] = {
                "name": m.ticker,
                "title": ev.title,
                "yes_sub_title": m.yes_sub_title,
                "no_sub_title": m.yes_sub_title,
                "rules_primary": m.rules,
                "rules_secondary": "",
                "can_close_early": m.can_close_early,
                "event_ticker": ev.ticker,
                "expected_expiration_ts": (ev.orig_close_ms + HOUR_MS) // 1000,
            }
            if m.strike is not None:
                meta["strike_type"] = "greater"
                meta["floor_strike"] = m.strike
            self._lifecycle_frame(
                t + 2 * (i + 1),
                {
                    "market_ticker": m.ticker,
                    "exchange_index": 0,
                    "open_ts": ev.open_ms // 1000,
                    "close_ts": ev.orig_close_ms // 1000,
                    "additional_metadata": meta,
                    "event_type": "created",
                    "price_level_structure": m.ticks.name,
                    "price_ranges": list(m.ticks.ranges),
                },
            )

    def _on_announce(self, t: int, ev: _Event, _: int) -> None:
        for i, m in enumerate(ev.markets):
            msg = {
                "market_ticker": m.ticker,
                "event_type": "close_date_updated",
                "close_ts": ev.close_ms // 1000,
            }
            self._lifecycle_frame(t + i, msg)

    def _on_pause(self, t: int, m: _Market, _: int) -> None:
        m.paused = True
        m.epoch += 1
        msg = {"market_ticker": m.ticker, "event_type": "deactivated", "is_deactivated": True}
        self._lifecycle_frame(t, msg)

    def _on_resume(self, t: int, m: _Market, _: int) -> None:
        m.paused = False
        msg = {"market_ticker": m.ticker, "event_type": "activated", "is_deactivated": False}
        self._lifecycle_frame(t, msg)
        if m.ob_sub is not None:
            self._start_chains(m, t)

    def _on_close(self, t: int, ev: _Event, _: int) -> None:
        """Trading ends: the market is deactivated and every resting order is cancelled."""
        for i, m in enumerate(ev.markets):
            m.epoch += 1
            m.paused = False
            tm = t + 2 * i
            msg = {"market_ticker": m.ticker, "event_type": "deactivated", "is_deactivated": True}
            self._lifecycle_frame(tm, msg)
            if m.ob_sub is not None:
                for idx in list(m.yes):
                    self._delta(m, tm, "yes", idx, -m.yes.pop(idx))
                for j in list(m.no):
                    self._delta(m, tm, "no", j, -m.no.pop(j))

    def _on_determine(self, t: int, m: _Market, _: int) -> None:
        if m.outcome:
            self.determined_yes += 1
        else:
            self.determined_no += 1
        msg = {
            "market_ticker": m.ticker,
            "event_type": "determined",
            "result": "yes" if m.outcome else "no",
            "determination_ts": t // 1000,
            "settlement_value": "1.0000" if m.outcome else "0.0000",
        }
        self._lifecycle_frame(t, msg)

    def _on_settle(self, t: int, m: _Market, _: int) -> None:
        msg = {"market_ticker": m.ticker, "event_type": "settled", "settled_ts": t // 1000}
        self._lifecycle_frame(t, msg)
