"""Hostile and edge-case recordings give the same book on every read path (general, fused with
and without its scanner, compiled store), and nothing a frame carries crashes the book.

Values at and past the int64 limits (sequence numbers, subscription ids, a lifecycle's close
time, a level's size), a market whose ladders grow to thousands of levels and are emptied and
refilled, snapshots with repeated prices and zero sizes, deltas before any snapshot, markets first
seen by a ticker or a trade in the middle of a batch, gaps followed by fresh snapshots, and a
subscription the decoder forgets (a reconnect, an unsubscription) between two of its deltas.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evoarena.engine import ladders
from evoarena.engine.book import MarketBook
from evoarena.engine.ladders import DELTA, SIZE_MAX, MarketColumns
from evoarena.feeds.bulk import bulk_kernels
from evoarena.feeds.events import BookDelta, BookSnapshot, CloseTimeChanged, Side
from evoarena.feeds.recording import RecordingWriter
from evoarena.feeds.store import compile_recording
from evoarena.testing import READ_PATHS, read_through

pytestmark = pytest.mark.timeout(60)

T0 = 1_750_000_000_000
I64_MAX = (1 << 63) - 1
I64_MIN = -(1 << 63)

Writer = Callable[[int, dict[str, Any]], None]


def _writer(w: RecordingWriter) -> Writer:
    """Write one WebSocket line with the standard library's JSON (orjson refuses integers outside
    64 bits, which a hostile recording may hold)."""

    def write(t: int, frame: dict[str, Any]) -> None:
        line = {"t_ms": t, "mark": frame["mark"]} if "mark" in frame else {"t_ms": t, "ws": frame}
        w._emit(json.dumps(line, separators=(",", ":")).encode())

    return write


def _snap(
    ticker: str, sid: int, seq: int, yes: list[list[str]], no: list[list[str]] | None = None
) -> dict[str, Any]:
    msg = {"market_ticker": ticker, "yes_dollars_fp": yes, "no_dollars_fp": no or []}
    return {"type": "orderbook_snapshot", "sid": sid, "seq": seq, "msg": msg}


def _delta(
    ticker: str, sid: int, seq: int, price: str, delta: str, side: str = "yes"
) -> dict[str, Any]:
    msg = {"market_ticker": ticker, "price_dollars": price, "delta_fp": delta, "side": side}
    return {"type": "orderbook_delta", "sid": sid, "seq": seq, "msg": msg}


def _ticker(ticker: str) -> dict[str, Any]:
    msg = {
        "market_ticker": ticker,
        "price_dollars": "0.5000",
        "yes_bid_dollars": "0.4900",
        "yes_ask_dollars": "0.5100",
        "volume_fp": "1.00",
        "open_interest_fp": "2.00",
    }
    return {"type": "ticker", "sid": 90, "msg": msg}


def _trade(ticker: str) -> dict[str, Any]:
    msg = {
        "market_ticker": ticker,
        "yes_price_dollars": "0.4400",
        "count_fp": "1.00",
        "taker_outcome_side": "yes",
    }
    return {"type": "trade", "sid": 91, "msg": msg}


def _seq_limits(w: Writer) -> None:
    """Sequences running up to and past INT64_MAX, and from below INT64_MIN across it."""
    w(T0, _snap("HI", 1, I64_MAX - 2, [["0.3000", "1.00"]]))
    for k, seq in enumerate(range(I64_MAX - 1, I64_MAX + 4)):
        w(T0 + 1 + k, _delta("HI", 1, seq, f"0.40{k:02d}", "2.00"))
    w(T0 + 10, _snap("LO", 2, I64_MIN - 3, [["0.3000", "1.00"]]))
    for k, seq in enumerate(range(I64_MIN - 2, I64_MIN + 4)):
        w(T0 + 11 + k, _delta("LO", 2, seq, f"0.40{k:02d}", "2.00", "no"))
    w(T0 + 20, _snap("EDGE", 3, I64_MAX, [["0.3000", "1.00"]]))  # the next delta is past it
    w(T0 + 21, _delta("EDGE", 3, I64_MAX + 1, "0.3000", "1.00"))
    w(T0 + 22, _delta("EDGE", 3, I64_MIN, "0.3000", "1.00"))
    w(T0 + 23, _delta("EDGE", 3, I64_MIN + 1, "0.3000", "1.00"))


def _huge_sids(w: Writer) -> None:
    """Subscription ids at, past and far beyond the int64 limits."""
    for k, sid in enumerate((I64_MAX, I64_MAX + 1, 2**64 - 1, 10**30, I64_MIN, I64_MIN - 1)):
        ticker = f"S-{k}"
        w(T0, _snap(ticker, sid, 1, [["0.3000", "1.00"]]))
        for j in range(6):
            w(T0 + 1 + j, _delta(ticker, sid, 2 + j, f"0.{31 + j:02d}00", "1.00"))


def _many_levels(w: Writer) -> None:
    """One market's ladders grow to thousands of levels, are emptied level by level and refilled
    (another market's deltas interleaved)."""
    w(T0, _snap("DEEP", 1, 1, [["0.5000", "1.00"]], [["0.5000", "1.00"]]))
    w(T0, _snap("SIDE", 2, 1, [["0.2000", "1.00"]]))
    seq = {"DEEP": 1, "SIDE": 1}
    t = T0 + 1
    for rnd in range(2):
        for sign in ("", "-"):
            order = range(1, 2401) if rnd == 0 else range(2400, 0, -1)
            for k in order:
                side = "yes" if k % 2 else "no"
                seq["DEEP"] += 1
                w(t, _delta("DEEP", 1, seq["DEEP"], f"0.{k * 4:04d}", f"{sign}3.00", side))
                if k % 97 == 0:
                    seq["SIDE"] += 1
                    w(t, _delta("SIDE", 2, seq["SIDE"], f"0.{k % 90 + 5:02d}00", "1.00"))
                    t += 1
    seq["DEEP"] += 1
    w(t, _delta("DEEP", 1, seq["DEEP"], "0.5000", "-1.00"))  # the snapshot's levels go too
    seq["DEEP"] += 1
    w(t, _delta("DEEP", 1, seq["DEEP"], "0.5000", "-1.00", "no"))


def _odd_snapshots(w: Writer) -> None:
    """Snapshots repeating a price (the last wins) and listing zero sizes, then deltas on them."""
    yes = [["0.3000", "1.00"], ["0.3000", "2.00"], ["0.2000", "0"], ["0.4000", "0.00"]]
    yes += [["0.1000", "3.00"], ["0.4000", "5.00"], ["0.6000", "0.00"]]
    w(T0, _snap("A", 1, 1, yes, [["0.5000", "0"], ["0.5000", "1.00"], ["0.5000", "0.00"]]))
    changes = [("0.3000", "-2.00"), ("0.4000", "-5.00"), ("0.1000", "0.00"), ("0.9000", "0.00")]
    changes += [("0.1000", "-3.00"), ("0.1000", "1.00"), ("0.6000", "-1.00"), ("0.6000", "1.00")]
    for k, (price, d) in enumerate(changes):
        w(T0 + 1 + k, _delta("A", 1, 2 + k, price, d))
    w(T0 + 20, _snap("A", 1, 10, [], []))  # an empty book
    w(T0 + 21, _delta("A", 1, 11, "0.3000", "1.00", "no"))
    w(T0 + 21, _delta("A", 1, 12, "0.3000", "-1.00", "no"))


def _no_snapshot_first(w: Writer) -> None:
    """Deltas before any snapshot, markets first seen by a ticker or a trade mid-batch and
    followed by deltas, a gap, then fresh snapshots."""
    w(T0, _delta("A", 1, 1, "0.3000", "1.00"))
    w(T0 + 1, _delta("A", 1, 2, "0.3000", "1.00"))
    w(T0 + 2, _ticker("B"))
    w(T0 + 2, _trade("C"))
    w(T0 + 3, _delta("B", 2, 1, "0.3000", "1.00"))
    w(T0 + 3, _delta("C", 3, 1, "0.3000", "1.00"))
    w(T0 + 3, _delta("B", 2, 2, "0.3000", "1.00"))
    w(T0 + 4, _snap("B", 2, 3, [["0.3000", "1.00"]]))
    w(T0 + 4, _delta("B", 2, 4, "0.3000", "1.00"))
    w(T0 + 4, _ticker("D"))
    w(T0 + 4, _delta("B", 2, 6, "0.3000", "1.00"))  # a gap
    w(T0 + 4, _delta("B", 2, 7, "0.3000", "1.00"))
    w(T0 + 5, _trade("E"))
    w(T0 + 5, _snap("B", 2, 10, [["0.3500", "1.00"]]))
    w(T0 + 5, _delta("B", 2, 11, "0.3000", "1.00"))
    w(T0 + 6, _snap("D", 4, 1, [["0.3500", "1.00"]]))
    w(T0 + 6, _delta("D", 4, 2, "0.3000", "1.00"))
    w(T0 + 6, _trade("D"))
    w(T0 + 6, _delta("D", 4, 3, "0.3600", "1.00"))
    w(T0 + 7, _delta("E", 5, 1, "0.3000", "1.00"))
    w(T0 + 7, _snap("E", 5, 2, [["0.3500", "1.00"]]))
    w(T0 + 7, _delta("E", 5, 3, "0.3500", "-2.00"))  # impossible: E turns stale
    w(T0 + 7, _delta("E", 5, 4, "0.3500", "1.00"))
    w(T0 + 8, _snap("E", 5, 5, [["0.3500", "1.00"]]))
    w(T0 + 8, _delta("E", 5, 6, "0.3500", "1.00"))


def _far_close_times(w: Writer) -> None:
    """Lifecycle close times whose milliseconds do not fit an int64, either way."""
    w(T0, _snap("A", 1, 1, [["0.3000", "1.00"]]))
    w(T0, _snap("B", 2, 1, [["0.3000", "1.00"]]))
    for k, (ticker, secs) in enumerate(
        [("A", 10**17), ("B", -(2**63) // 1000 - 1), ("A", 2**64 - 1), ("B", 1_760_000_000)]
    ):
        msg = {"market_ticker": ticker, "event_type": "close_date_updated", "close_ts": secs}
        w(T0 + 1 + k, {"type": "market_lifecycle_v2", "msg": msg})
        w(T0 + 1 + k, _delta(ticker, 1 if ticker == "A" else 2, 2 + k, "0.3000", "1.00"))


def _forgotten_pairs(w: Writer, forget: dict[str, Any]) -> None:
    """Subscription 5 carries A and B, both seen in bulk; ``forget`` (a reconnect mark, an
    unsubscription) drops what the decoder knows of it; a snapshot of A takes sid 5 up again and
    B's next delta arrives on it in sequence; then a gap on sid 5 must distrust B too."""
    w(T0, _snap("A", 5, 1, [["0.3000", "1.00"]]))
    w(T0, _snap("B", 5, 2, [["0.3000", "1.00"]]))
    w(T0 + 1, _delta("A", 5, 3, "0.3100", "1.00"))
    w(T0 + 1, _delta("B", 5, 4, "0.3100", "1.00"))
    w(T0 + 2, forget)
    w(T0 + 3, _snap("A", 5, 1, [["0.3000", "1.00"]]))
    w(T0 + 4, _delta("B", 5, 2, "0.3200", "1.00"))
    w(T0 + 4, _delta("A", 5, 3, "0.3200", "1.00"))
    w(T0 + 5, _delta("A", 5, 9, "0.3300", "1.00"))  # a gap


def _reconnect_forgets_pairs(w: Writer) -> None:
    _forgotten_pairs(w, {"mark": {"kind": "ws_reconnect"}})


def _unsubscribe_forgets_pairs(w: Writer) -> None:
    _forgotten_pairs(w, {"type": "unsubscribed", "sid": 5, "id": 3})


SCENARIOS: dict[str, Callable[[Writer], None]] = {
    "seq_limits": _seq_limits,
    "huge_sids": _huge_sids,
    "many_levels": _many_levels,
    "odd_snapshots": _odd_snapshots,
    "no_snapshot_first": _no_snapshot_first,
    "far_close_times": _far_close_times,
    "reconnect_forgets_pairs": _reconnect_forgets_pairs,
    "unsubscribe_forgets_pairs": _unsubscribe_forgets_pairs,
}


def _record(path: Path, build: Callable[[Writer], None]) -> None:
    with RecordingWriter(path, "test", T0) as w:
        build(_writer(w))
    compile_recording(path)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_read_path_builds_the_same_book(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.jsonl"
    _record(path, SCENARIOS[name])
    got = {how: read_through(path, how, start_ms=T0, tick_ms=3) for how in READ_PATHS}
    general = got["general"]
    assert general["counters"].deltas > 0
    for how in READ_PATHS:
        assert got[how] == general, how


@pytest.mark.parametrize("name", ["reconnect_forgets_pairs", "unsubscribe_forgets_pairs"])
def test_a_gap_after_the_decoder_forgot_a_subscription_distrusts_every_market_on_it(
    tmp_path: Path, name: str
) -> None:
    """The store's bulk scan records each (subscription, market) pair once per row group: after
    a general row dropped the decoder's markets of a subscription it must record them again
    (it did not: B stayed trusted after the gap on the store path only)."""
    path = tmp_path / f"{name}.jsonl"
    _record(path, SCENARIOS[name])
    store = read_through(path, "store", start_ms=T0, tick_ms=3)
    stale = 5
    assert store["markets"]["A"][stale] is True
    assert store["markets"]["B"][stale] is True
    assert store == read_through(path, "general", start_ms=T0, tick_ms=3)


def _read_with_jump(path: Path, how: str, max_jump_ms: int) -> dict[str, Any]:
    return read_through(path, how, start_ms=T0, tick_ms=3, max_time_jump_ms=max_jump_ms)


@pytest.mark.parametrize("max_jump_ms", [2**63 - 1, 10**19, 10**22])
def test_a_time_jump_limit_past_int64_reads_the_same_on_every_path(
    tmp_path: Path, max_jump_ms: int, bulk_rows: list[int]
) -> None:
    """``record.max_time_jump_secs`` has no upper bound: the store's compiled scan takes the
    limit as an int64 (it raised OverflowError past it) and adds it to the high-water mark (which
    must not wrap); every path reads the same, the store's typed rows still in bulk."""
    path = tmp_path / "jump.jsonl"
    _record(path, _no_snapshot_first)
    general = _read_with_jump(path, "general", max_jump_ms)
    assert general["counters"].deltas > 0
    assert _read_with_jump(path, "store", max_jump_ms) == general
    assert bulk_rows[0] > 0
    assert _read_with_jump(path, "fused", max_jump_ms) == general


def test_close_times_past_int64_are_kept_exactly_and_viewed_as_floats(tmp_path: Path) -> None:
    """A lifecycle's close time is any JSON integer: the book keeps it exactly (it used to raise
    OverflowError writing it into an int64 column) and the view reads it as a float."""
    path = tmp_path / "close.jsonl"
    _record(path, _far_close_times)
    got = read_through(path, "general", start_ms=T0, tick_ms=3)
    close_ms = 8
    assert got["markets"]["A"][close_ms] == (2**64 - 1) * 1000
    assert got["markets"]["B"][close_ms] == 1_760_000_000_000
    book = MarketBook(10)
    for ticker, ms in (("A", 10**20), ("B", -(2**70)), ("C", I64_MIN), ("D", None)):
        book.apply(BookSnapshot(ticker, ((300_000, 100),), (), T0))
        if ms is not None:
            book.apply(CloseTimeChanged(ticker, ms, T0))
    arrays = book.arrays()
    arrays.sync(book)
    for ticker, ms in (("A", 10**20), ("B", -(2**70)), ("C", I64_MIN), ("D", None)):
        m = book.markets[ticker]
        assert m.close_ms == ms
        view = arrays.raw[arrays.slot[m], 4]
        assert math.isnan(view) if ms is None else view == float(ms)


def _apply_rows_once(apply_rows: Any, cols: MarketColumns, delta: int) -> np.ndarray:
    def ints(*v: int) -> np.ndarray:
        return np.array(v, dtype=np.int64)

    tally = np.zeros(5, dtype=np.int64)
    rows = (ints(DELTA), ints(0), ints(0), ints(1), ints(500_000), ints(delta))
    cols.apply(apply_rows, rows, 0, 1, tally, lambda x: 0)
    return tally


@pytest.mark.parametrize("start", [SIZE_MAX - 10, SIZE_MAX, SIZE_MAX - 10**13 + 1])
def test_a_size_past_int64_is_impossible_on_every_path(start: int) -> None:
    """A level's size that the next delta would take past int64 (a hostile day needs a million
    deltas to get there): the per-event book, the compiled bulk loop and the plain one all find
    the delta impossible and turn the market stale, leaving the ladder as it was. (The compiled
    loop used to store a wrapped, negative size and keep the book; the per-event path raised
    OverflowError; the plain loop wrapped with a warning.)"""
    kernels = bulk_kernels()
    assert kernels is not None
    for how in ("event", "compiled", "plain"):
        book = MarketBook(10)
        book.apply(BookSnapshot("A", ((500_000, start),), (), T0))
        m = book.markets["A"]
        book.dirty.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            if how == "event":
                book.apply(BookDelta("A", Side.YES, 500_000, 10**13, T0))
                assert book.counters.impossible_deltas == 1, how
            else:
                apply = kernels.apply_rows if how == "compiled" else ladders.apply_rows
                tally = _apply_rows_once(apply, book.columns, 10**13)
                assert tally[ladders.N_IMPOSSIBLE] == 1, how
        assert m.stale, how
        assert m in book.dirty, how
        assert m.yes_bids == {500_000: start}, how
        assert m.best_yes_bid == 500_000, how
