"""The stateful bridge from Kalshi frames to domain events, shared by the live feed and replay.

:class:`KalshiDecoder` turns every WebSocket frame (``decode_ws``) and REST response
(``decode_rest``) into :mod:`~evoarena.feeds.events`. On top of the pure parsers it keeps what
needs memory across frames:

* a per-``sid`` :class:`~.sequencer.Sequencer` over every data frame that carries ``seq``
  (command replies' ``seq`` is informational and not checked). Stale frames are dropped; a gap
  emits :class:`~evoarena.feeds.events.BookInvalidated` for every market seen on that sid and
  queues a resync request (:meth:`KalshiDecoder.take_resync_requests`); the next snapshot of each
  market re-seeds its book;
* sid → channel (from ``subscribed``) and sid → markets (from snapshots, deltas and ``ok`` lists);
* command replies, queued in :attr:`KalshiDecoder.replies` for the live client;
* :class:`DecoderCounters` for ``inspect`` and heartbeats.

Frame content never makes ``decode_*`` raise: unknown types are counted, malformed frames are
counted, logged (rate-limited) and skipped. A malformed book frame also invalidates the market it
names (or every market of its sid), since its book can no longer be trusted.

This is the hot path of a replay (about a million frames for a 500-market day): plain dict access,
a precomputed dispatch table, no validation models per frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog

from evoarena.feeds.events import BookInvalidated, MarketEvent
from evoarena.feeds.guard import safe_repr
from evoarena.feeds.kalshi.parse import (
    LIFECYCLE_EVENT_TYPES,
    LIFECYCLE_IGNORED,
    CommandReply,
    JsonObj,
    MalformedFrame,
    parse_command_reply,
    parse_event_fee_update,
    parse_event_lifecycle,
    parse_market_lifecycle,
    parse_orderbook_delta,
    parse_orderbook_snapshot,
    parse_rest,
    parse_ticker,
    parse_trade,
    rest_route,
)
from evoarena.feeds.kalshi.sequencer import Sequencer, Verdict

log = structlog.get_logger(__name__)

WS_RECONNECT_MARK = "ws_reconnect"
"""Recording ``mark`` kind for "the WebSocket session was replaced": replay resets the decoder."""

_LOG_FIRST = 20
_LOG_EVERY = 1000
_APPLY = Verdict.APPLY
_STALE = Verdict.STALE

_Handler = Callable[[JsonObj, int], list[MarketEvent]]
_Parser = Callable[[JsonObj, int], MarketEvent | None]


@dataclass(slots=True)
class DecoderCounters:
    """What the decoder has seen (cumulative)."""

    ws_frames: int = 0
    frames_by_type: dict[str, int] = field(default_factory=dict)
    rest_responses: int = 0
    rest_by_kind: dict[str, int] = field(default_factory=dict)
    rest_failed_by_kind: dict[str, int] = field(default_factory=dict)
    """Non-2xx responses (decoded to nothing), by path kind."""
    unknown_types: dict[str, int] = field(default_factory=dict)
    """Unknown frame types; unknown lifecycle event types appear as ``market_lifecycle_v2/<x>``."""
    malformed: int = 0
    malformed_by_type: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    stale_frames: int = 0
    invalidations: int = 0
    lifecycle_by_event_type: dict[str, int] = field(default_factory=dict)
    lifecycle_ignored: int = 0
    """``price_level_structure_updated`` / ``metadata_updated``: nothing for the book."""
    command_errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


class KalshiDecoder:
    """Frames in, domain events out; see the module docstring for the contract."""

    def __init__(self, *, max_replies: int = 1024) -> None:
        self.counters = DecoderCounters()
        self.replies: deque[CommandReply] = deque(maxlen=max_replies)
        """Command replies, oldest first, for the live client (bounded: replay never pops)."""
        self.sequencer = Sequencer()
        self._positions = self.sequencer.positions
        self.channels: dict[int, str] = {}
        self._sid_tickers: dict[int, set[str]] = {}
        self._resync: dict[int, set[str]] = {}
        self._dispatch: dict[str, _Handler] = {
            "orderbook_delta": self._on_delta,
            "orderbook_snapshot": self._on_snapshot,
            "ticker": self._data_handler("ticker", parse_ticker),
            "trade": self._data_handler("trade", parse_trade),
            "market_lifecycle_v2": self._data_handler("market_lifecycle_v2", self._lifecycle),
            "event_lifecycle": self._data_handler("event_lifecycle", parse_event_lifecycle),
            "event_fee_update": self._data_handler("event_fee_update", parse_event_fee_update),
            "subscribed": self._on_reply,
            "ok": self._on_reply,
            "unsubscribed": self._on_reply,
            "error": self._on_reply,
        }

    # -- public API -------------------------------------------------------------------------------

    def decode_ws(self, obj: JsonObj, recv_ms: int) -> list[MarketEvent]:
        """One WebSocket message object (already JSON-decoded) → its domain events."""
        c = self.counters
        c.ws_frames += 1
        try:
            mtype = obj["type"]
        except (KeyError, TypeError, IndexError):
            self._malformed("?", "not an object with a 'type'")
            return []
        if type(mtype) is not str:
            self._malformed("?", f"'type' is not a string: {safe_repr(mtype)}")
            return []
        by_type = c.frames_by_type
        by_type[mtype] = by_type.get(mtype, 0) + 1
        handler = self._dispatch.get(mtype)
        if handler is None:
            self._unknown(mtype)
            return []
        try:
            return handler(obj, recv_ms)
        except MalformedFrame as e:
            self._malformed(mtype, str(e))
            return []
        except RecursionError:
            self._malformed(mtype, "nested too deeply")
            return []
        except Exception as e:  # hostile input never escapes as a traceback (see feeds.guard)
            self._malformed(mtype, f"unreadable: {type(e).__name__}: {safe_repr(str(e))}")
            return []

    def decode_rest(
        self, path: str, params: dict[str, Any], status: int, body: object, recv_ms: int
    ) -> list[MarketEvent]:
        """One REST response → its domain events (none for a non-2xx status or an unknown path).

        ``params`` (the query) is accepted for symmetry with the recording; decoding needs only
        the path.
        """
        try:
            return self._decode_rest(path, status, body, recv_ms)
        except RecursionError:
            self._malformed("rest", "nested too deeply")
        except Exception as e:  # hostile input never escapes as a traceback (see feeds.guard)
            self._malformed("rest", f"unreadable: {type(e).__name__}: {safe_repr(str(e))}")
        return []

    def _decode_rest(self, path: str, status: int, body: object, recv_ms: int) -> list[MarketEvent]:
        c = self.counters
        c.rest_responses += 1
        kind, _ = rest_route(path)
        c.rest_by_kind[kind] = c.rest_by_kind.get(kind, 0) + 1
        if not 200 <= status < 300:
            c.rest_failed_by_kind[kind] = c.rest_failed_by_kind.get(kind, 0) + 1
            return []
        ft = f"rest {kind}"
        try:
            result = parse_rest(path, body, recv_ms)
        except MalformedFrame as e:
            self._malformed(ft, str(e))
            return []
        for err in result.errors:
            self._malformed(ft, str(err))
        return result.events

    def take_resync_requests(self) -> dict[int, list[str]]:
        """sid → markets whose book needs a fresh snapshot (sorted); clears the queue.

        A market whose snapshot arrived since its invalidation is no longer listed.
        """
        out = {sid: sorted(t) for sid, t in self._resync.items() if t}
        self._resync.clear()
        return out

    def tickers_on(self, sid: int) -> list[str]:
        """The markets seen on ``sid`` (sorted)."""
        return sorted(self._sid_tickers.get(sid, ()))

    def note_malformed(self, frame_type: str, reason: str) -> None:
        """Count and log a malformed item found by a caller (e.g. a recording's REST line)."""
        self._malformed(frame_type, reason)

    def reset_session(self, recv_ms: int) -> list[MarketEvent]:
        """A new WebSocket connection: forget every sid; invalidate every book fed by one.

        The live client calls this on reconnect (and records a :data:`WS_RECONNECT_MARK`, so a
        replay does the same at the same point).
        """
        tickers = sorted(set().union(*self._sid_tickers.values())) if self._sid_tickers else []
        self.sequencer.clear()
        self.channels.clear()
        self._sid_tickers.clear()
        self._resync.clear()
        if not tickers:
            return []
        self.counters.invalidations += 1
        return [BookInvalidated(tuple(tickers), "websocket session reset", recv_ms)]

    # -- order book frames (the hot path) ---------------------------------------------------------

    def _on_delta(self, obj: JsonObj, recv_ms: int) -> list[MarketEvent]:
        sid = obj.get("sid")
        seq = obj.get("seq")
        positions = self._positions
        if type(seq) is int and type(sid) is int and positions.get(sid) == seq - 1:
            positions[sid] = seq  # the sequencer's in-order case, inlined for the hot path
            out: list[MarketEvent] = []
        elif seq is None:
            out = []
        else:
            # A delta that reveals a gap belongs to that sid, even if it is the first we see of
            # its market: register the market first so the gap invalidates it too.
            msg0 = obj.get("msg")
            ticker0 = msg0.get("market_ticker") if type(msg0) is dict else None
            if type(sid) is int and type(ticker0) is str and ticker0:
                self._sid_tickers.setdefault(sid, set()).add(ticker0)
            checked = self._sequence(sid, seq, "orderbook_delta", recv_ms)
            if checked is None:
                return []
            out = checked
        msg = obj.get("msg")
        try:
            if type(msg) is not dict:
                raise MalformedFrame("orderbook_delta", "msg", "missing or not an object")
            ev = parse_orderbook_delta(msg, recv_ms)
        except MalformedFrame as e:
            self._malformed("orderbook_delta", str(e))
            out.extend(self._invalidate_bad_book(sid, msg, "orderbook_delta", recv_ms))
            return out
        if sid is not None:
            tickers = self._sid_tickers.get(sid)
            if tickers is None:
                tickers = self._sid_tickers[sid] = set()
            tickers.add(ev.ticker)
        out.append(ev)
        return out

    def _on_snapshot(self, obj: JsonObj, recv_ms: int) -> list[MarketEvent]:
        sid = obj.get("sid")
        seq = obj.get("seq")
        if seq is None:
            out: list[MarketEvent] = []
        else:
            checked = self._sequence(sid, seq, "orderbook_snapshot", recv_ms)
            if checked is None:
                return []
            out = checked
        msg = obj.get("msg")
        try:
            if type(msg) is not dict:
                raise MalformedFrame("orderbook_snapshot", "msg", "missing or not an object")
            ev = parse_orderbook_snapshot(msg, recv_ms)
        except MalformedFrame as e:
            self._malformed("orderbook_snapshot", str(e))
            out.extend(self._invalidate_bad_book(sid, msg, "orderbook_snapshot", recv_ms))
            return out
        if sid is not None:
            self._sid_tickers.setdefault(sid, set()).add(ev.ticker)
            pending = self._resync.get(sid)
            if pending:
                pending.discard(ev.ticker)
        out.append(ev)
        return out

    def _sequence(
        self, sid: object, seq: object, mtype: str, recv_ms: int
    ) -> list[MarketEvent] | None:
        """Check ``seq``: ``None`` = stale (drop the frame), else the events to emit first."""
        if type(seq) is not int:
            raise MalformedFrame(mtype, "seq", f"expected an integer, got {seq!r}")
        if type(sid) is not int:
            raise MalformedFrame(mtype, "sid", f"expected an integer, got {sid!r}")
        verdict = self.sequencer.check(sid, seq)
        if verdict is _APPLY:
            return []
        if verdict is _STALE:
            self.counters.stale_frames += 1
            return None
        return self._gap(sid, recv_ms)

    def _gap(self, sid: int, recv_ms: int) -> list[MarketEvent]:
        self.counters.gaps += 1
        gap = self.sequencer.last_gap
        tickers = self._sid_tickers.get(sid)
        log.warning(
            "kalshi_seq_gap",
            sid=sid,
            channel=self.channels.get(sid),
            expected_seq=gap[1] if gap else None,
            received_seq=gap[2] if gap else None,
            markets=len(tickers) if tickers else 0,
        )
        if not tickers:
            return []
        return [self._invalidate(sid, tickers, f"seq gap on sid {sid}", recv_ms)]

    def _invalidate(
        self, sid: int, tickers: set[str], reason: str, recv_ms: int
    ) -> BookInvalidated:
        ordered = tuple(sorted(tickers))
        self._resync.setdefault(sid, set()).update(ordered)
        self.counters.invalidations += 1
        return BookInvalidated(ordered, reason, recv_ms)

    def _invalidate_bad_book(
        self, sid: object, msg: object, mtype: str, recv_ms: int
    ) -> list[MarketEvent]:
        """A book frame we could not read: distrust the market it names, else its whole sid."""
        if type(sid) is not int:
            return []
        ticker = msg.get("market_ticker") if type(msg) is dict else None
        known = self._sid_tickers.setdefault(sid, set())
        if type(ticker) is str and ticker:
            known.add(ticker)
            tickers = {ticker}
        else:
            tickers = known
        if not tickers:
            return []
        return [self._invalidate(sid, tickers, f"malformed {mtype} on sid {sid}", recv_ms)]

    # -- other data frames ------------------------------------------------------------------------

    def _data_handler(self, mtype: str, parse: _Parser) -> _Handler:
        """A handler for a non-book data frame: optional seq check, then ``parse(msg)``."""

        def handle(obj: JsonObj, recv_ms: int) -> list[MarketEvent]:
            seq = obj.get("seq")
            if seq is None:
                out: list[MarketEvent] = []
            else:
                checked = self._sequence(obj.get("sid"), seq, mtype, recv_ms)
                if checked is None:
                    return []
                out = checked
            msg = obj.get("msg")
            try:
                if type(msg) is not dict:
                    raise MalformedFrame(mtype, "msg", "missing or not an object")
                ev = parse(msg, recv_ms)
            except MalformedFrame as e:
                self._malformed(mtype, str(e))
                return out
            if ev is not None:
                out.append(ev)
            return out

        return handle

    def _lifecycle(self, msg: JsonObj, recv_ms: int) -> MarketEvent | None:
        event_type = msg.get("event_type")
        if type(event_type) is str:
            c = self.counters
            by_event = c.lifecycle_by_event_type
            by_event[event_type] = by_event.get(event_type, 0) + 1
            if event_type in LIFECYCLE_IGNORED:
                c.lifecycle_ignored += 1
            elif event_type not in LIFECYCLE_EVENT_TYPES:
                self._unknown(f"market_lifecycle_v2/{event_type}")
        return parse_market_lifecycle(msg, recv_ms)

    # -- command replies --------------------------------------------------------------------------

    def _on_reply(self, obj: JsonObj, recv_ms: int) -> list[MarketEvent]:
        reply = parse_command_reply(obj)
        sid = reply.sid
        out: list[MarketEvent] = []
        if reply.type == "subscribed" and sid is not None:
            self._drop_sid(sid)  # a new subscription numbers its frames afresh
            self.channels[sid] = reply.channel or ""
        elif reply.type == "ok":
            seq = obj.get("seq")
            if sid is not None and type(seq) is int:
                # The ok reply to update_subscription carries the next seq of the sid's stream
                # (kalshi-api.md §9.3/§9.5): count it, or the next data frame looks like a gap.
                checked = self._sequence(sid, seq, "ok", recv_ms)
                if checked:
                    out.extend(checked)
            if sid is not None and reply.market_tickers is not None:
                # Union, not replace: dropping a market we still receive would leave its book
                # un-invalidated on a gap; keeping an extra one only costs a spare resync.
                self._sid_tickers.setdefault(sid, set()).update(reply.market_tickers)
            for sub_sid, channel in reply.subscriptions:
                self.channels[sub_sid] = channel
        elif reply.type == "unsubscribed" and sid is not None:
            self._drop_sid(sid)
        elif reply.type == "error":
            self.counters.command_errors += 1
            log.warning(
                "kalshi_command_error",
                command_id=reply.id,
                code=reply.error_code,
                error=reply.error_msg,
                market=reply.market_tickers[0] if reply.market_tickers else None,
            )
        self.replies.append(reply)
        return out

    def _drop_sid(self, sid: int) -> None:
        self.sequencer.forget(sid)
        self.channels.pop(sid, None)
        self._sid_tickers.pop(sid, None)
        self._resync.pop(sid, None)

    # -- bookkeeping ------------------------------------------------------------------------------

    def _unknown(self, mtype: str) -> None:
        unknown = self.counters.unknown_types
        n = unknown[mtype] = unknown.get(mtype, 0) + 1
        if n == 1:
            log.info("kalshi_unknown_message_type", frame_type=mtype)

    def _malformed(self, frame_type: str, reason: str) -> None:
        c = self.counters
        c.malformed += 1
        n = c.malformed_by_type[frame_type] = c.malformed_by_type.get(frame_type, 0) + 1
        if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
            log.warning("kalshi_malformed_frame", frame_type=frame_type, reason=reason, count=n)
