"""Market listings compiled into the store give replay the same events and counts as decoding
their bodies; any other REST response keeps its line and is decoded at replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from evoarena.engine.book import MarketBook
from evoarena.feeds.fused import NEVER
from evoarena.feeds.recording import RecordingWriter
from evoarena.feeds.replay import ReplaySource, ReplayStep
from evoarena.feeds.store import StoreIngest, compile_recording, store_path

pytestmark = pytest.mark.timeout(30)

T0 = 1_750_000_000_000
LIST = "/trade-api/v2/markets"


def _market(ticker: str, **over: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "ticker": ticker,
        "event_ticker": "EV-1",
        "status": "active",
        "open_time": "2026-02-08T16:42:00Z",
        "close_time": "2026-03-02T00:44:00Z",
        "title": f"Will {ticker} happen?",
        "result": "",
        "volume_24h_fp": "7308.00",
        "open_interest_fp": "75624.00",
        "yes_bid_dollars": "0.1600",
        "yes_ask_dollars": "0.1700",
        "rules_primary": "a long text nobody reads " * 20,
    }
    m.update(over)
    return m


class _Collect:
    """Records every general step's events (no schedule)."""

    gate = NEVER

    def __init__(self) -> None:
        self.steps: list[tuple[int, int, list[Any]]] = []
        self.items = self.events = self.applied = self.last_line = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.applied_t: int | None = None

    def at_gate(self, t_ms: int) -> bool:
        return False

    def general(self, step: ReplayStep) -> bool:
        self.steps.append((step.line_no, step.t_ms, step.events))
        return False

    def chunk_done(self, t_ms: int) -> None:
        pass


def _write(path: Path) -> None:
    settled = {"status": "finalized", "result": "yes", "settlement_value_dollars": "1.0000"}
    with RecordingWriter(path, "test", T0) as w:
        w.write_rest(T0 + 1, "GET", LIST, {}, 200, {"markets": [_market("A-1")], "cursor": "c"})
        w.write_rest(
            T0 + 2,
            "GET",
            LIST,
            {"cursor": "c"},
            200,
            {"markets": [_market("B-1", **settled), _market("C-1", status=None)], "cursor": ""},
        )
        # kept as lines: a market the decoder complains about, a failed call, another route,
        # a body that is not an object, a status that is not an integer
        w.write_rest(T0 + 3, "GET", LIST, {}, 200, {"markets": [_market("D-1"), {"x": 1}]})
        w.write_rest(T0 + 4, "GET", LIST, {}, 503, {"markets": [_market("E-1")]})
        w.write_rest(T0 + 5, "GET", f"{LIST}/F-1", {}, 200, {"market": _market("F-1")})
        w.write_rest(T0 + 6, "GET", LIST, {}, 200, ["not", "an", "object"])
        w.write_rest(T0 + 7, "GET", LIST, {}, True, {"markets": [_market("G-1")]})
        w.write_ws(T0 + 8, {"type": "ticker", "sid": 1, "msg": {"market_ticker": "A-1"}})


def _replay(path: Path, store: bool) -> tuple[list[Any], dict[str, Any], list[str]]:
    sink = _Collect()
    with ReplaySource(path, skip_bad=True) as source:
        if store:
            with StoreIngest(source, MarketBook(10), store_path(path)) as ingest:
                ingest.run(sink)
        else:
            for step in source:
                sink.general(step)
        return sink.steps, source.decoder.counters.as_dict(), source.reader.bad_lines


def test_compiled_market_listings_replay_as_their_decoded_bodies(tmp_path: Path) -> None:
    path = tmp_path / "rest.jsonl"
    _write(path)
    compile_recording(path)
    general = pq.read_table(store_path(path) / "general.parquet").to_pydict()
    compiled = [
        n for n, first in zip(general["line_no"], general["rest_first"], strict=True) if first >= 0
    ]
    assert compiled == [2, 3]  # the two clean listings, nothing else
    assert general["rest_count"][:2] == [1, 2]
    assert all(b"rules_primary" not in raw for raw in general["raw"][:2])  # bodies not kept

    decoded, decoded_counts, _ = _replay(path, store=False)
    from_store, store_counts, _ = _replay(path, store=True)
    assert from_store == decoded
    assert store_counts == decoded_counts
    events = [ev for _, _, evs in decoded for ev in evs]
    assert {e.ticker for e in events} >= {"A-1", "B-1", "C-1", "D-1"}
    assert decoded_counts["malformed"] >= 2


def test_values_of_the_wrong_type_do_not_break_compiling(tmp_path: Path) -> None:
    """The side tables for other tools take a column's type or nothing: a status string beside
    integer ones, numbers no int64 holds, a lifecycle field that is a number, a snapshot nested
    too deeply to describe."""
    path = tmp_path / "odd.jsonl"
    huge = (1 << 64) - 1
    with RecordingWriter(path, "test", T0) as w:
        w.write_rest(T0 + 1, "GET", LIST, {}, 200, {"markets": [_market("A-1")]})
        w.write_rest(T0 + 2, "GET", LIST, {}, "200", {"markets": [_market("B-1")]})  # type: ignore[arg-type]  # hostile on purpose
        w.write_rest(T0 + 3, "GET", LIST, {}, huge, {"markets": []})
        w.write_mark(T0 + 4, "tick", now_ms=huge)
        w.write_mark(T0 + 5, "tick", now_ms=T0 + 5)
        w.write_ws_raw(huge, b'{"type":"trade","sid":1,"msg":{}}')
        nested = b"[" * 1000 + b'"0.5000"' + b"]" * 1000  # valid JSON, too deep to describe
        w.write_ws_raw(
            T0 + 6,
            b'{"type":"orderbook_snapshot","sid":2,"seq":1,"msg":{"market_ticker":"A-1",'
            b'"yes_dollars_fp":[[' + nested + b',"1.00"]]}}',
        )
        for event_type in ("activated", 7):
            msg = {"market_ticker": "A-1", "event_type": event_type}
            w.write_ws(T0 + 6, {"type": "market_lifecycle_v2", "sid": 4, "msg": msg})
    compile_recording(path)
    rest = pq.read_table(store_path(path) / "rest.parquet").to_pydict()
    assert rest["status"] == [200, None, None]
    marks = pq.read_table(store_path(path) / "marks.parquet").to_pydict()
    assert marks["now_ms"] == [None, T0 + 5]
    lifecycle = pq.read_table(store_path(path) / "lifecycle.parquet").to_pydict()
    assert lifecycle["event_type"] == ["activated", None]
    decoded = _replay(path, store=False)
    assert _replay(path, store=True) == decoded
    assert len(decoded[2]) == 1  # the line at a time beyond 9999
