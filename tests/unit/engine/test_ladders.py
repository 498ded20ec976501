"""The book's ladder columns change exactly as bid ladders kept in dicts would.

The oracle is the dict ladder :class:`MarketState` kept before the columns: a size change at a
price, a level emptied at 0, a negative size refused (the market turns stale and takes no more
deltas), and "dirty" whenever the change was at or above the best bid or removed it. The
per-event path (:meth:`MarketColumns.delta`), the bulk loop (:func:`apply_rows`) as plain Python
and compiled, must all agree with it, through ladders longer than the columns first have room
for; :func:`load_rows` compiled and its numpy twin must read the same rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evoarena.engine import ladders
from evoarena.engine.book import engine_kernels
from evoarena.engine.ladders import (
    CHANGED_TOP,
    DELTA,
    IMPOSSIBLE,
    NONE,
    TICKER,
    TRADE,
    UNCHANGED_TOP,
    MarketColumns,
)
from evoarena.feeds.bulk import bulk_kernels

pytestmark = pytest.mark.timeout(60)

ROWS = 3
PRICES = [10_000 * k for k in range(1, 41)]  # 40 levels: more than the 16 a ladder starts with


class _Oracle:
    """Dict ladders per (row, side), with the old MarketState's rules."""

    def __init__(self, rows: int = ROWS) -> None:
        self.ladders: dict[tuple[int, int], dict[int, int]] = {
            (r, s): {} for r in range(rows) for s in (0, 1)
        }
        self.stale = [False] * rows
        self.dirty = [False] * rows

    def delta(self, row: int, side: int, price: int, delta: int) -> int:
        ladder = self.ladders[row, side]
        best = max(ladder) if ladder else None
        new = ladder.get(price, 0) + delta
        if new > 0:
            ladder[price] = new
            return CHANGED_TOP if best is None or price >= best else UNCHANGED_TOP
        if new == 0:
            ladder.pop(price, None)
            return CHANGED_TOP if best == price else UNCHANGED_TOP
        return IMPOSSIBLE

    def row(self, kind: int, row: int, side: int, price: int, size: int) -> None:
        if kind != DELTA:
            self.dirty[row] |= kind == TICKER
            return
        if self.stale[row]:
            return
        r = self.delta(row, side, price, size)
        if r == IMPOSSIBLE:
            self.stale[row] = True
        self.dirty[row] |= r in (CHANGED_TOP, IMPOSSIBLE)


def _ladders(cols: MarketColumns) -> dict[tuple[int, int], dict[int, int]]:
    out = {}
    for r in range(ROWS):
        for s in (0, 1):
            prices, sizes = cols.ladder(r, s)
            assert prices == sorted(prices)
            assert all(size > 0 for size in sizes)
            out[r, s] = dict(zip(prices, sizes, strict=True))
    return out


def _columns() -> MarketColumns:
    cols = MarketColumns(capacity=1, levels=2)  # grows both ways
    for _ in range(ROWS):
        row = cols.new_row()
        cols.has_book[row] = True
    return cols


deltas = st.lists(
    st.tuples(
        st.integers(0, ROWS - 1),
        st.integers(0, 1),
        st.sampled_from(PRICES),
        st.integers(-300, 900),
    ),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(deltas)
def test_one_delta_at_a_time_matches_dict_ladders(changes: list[tuple[int, int, int, int]]) -> None:
    cols = _columns()
    oracle = _Oracle()
    for row, side, price, delta in changes:
        assert cols.delta(row, side, price, delta) == oracle.delta(row, side, price, delta)
    assert _ladders(cols) == oracle.ladders


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from([DELTA, DELTA, DELTA, TICKER, TRADE]),
        st.integers(0, ROWS),  # ROWS: a market not in the book
        st.integers(0, 1),
        st.sampled_from(PRICES),
        st.integers(-300, 900),
    ),
    max_size=300,
)


def _bulk(apply: Any, rows: list[tuple[int, int, int, int, int]]) -> tuple[Any, ...]:
    """Every row through ``apply`` (growing, adding markets where it stops, as the store does),
    two rows per call; returns the columns, the market rows, the counts and, after each call,
    the rows flagged dirty (then unflagged)."""
    cols = MarketColumns(capacity=1, levels=2)
    cols.new_row()
    cols.has_book[0] = True  # the other markets join when a ticker or trade names them
    mrow = np.full(ROWS + 1, -1, dtype=np.int64)
    mrow[0] = 0
    kind, tick, side, price, size = (
        np.array([r[k] for r in rows], dtype=np.int64) for k in range(5)
    )
    tally = np.zeros(5, dtype=np.int64)
    dirty = []
    for start in range(0, len(rows), 2):
        a, z = start, min(start + 2, len(rows))
        while True:
            a = apply(
                kind, mrow, tick, side, price, size, a, z, cols.price, cols.size, cols.count,
                cols.has_book, cols.stale, cols.dirty, cols.last_price, cols.open_interest, tally,
            )  # fmt: skip
            if a == z:
                break
            if kind[a] == DELTA:
                cols.grow_levels()
            else:
                mrow[tick[a]] = row = cols.new_row()
                cols.has_book[row] = True
        dirty.append(np.flatnonzero(cols.dirty).tolist())
        cols.dirty[:] = False
    return cols, mrow, tally, dirty


def _bulk_oracle(rows: list[tuple[int, int, int, int, int]]) -> tuple[Any, ...]:
    oracle = _Oracle(ROWS + 1)
    known = {0}
    order = [0]  # market names in the order they joined
    tally = [0] * 5
    last: dict[int, int] = {}
    oi: dict[int, int] = {}
    dirty = []
    for i, (kind, name, side, price, size) in enumerate(rows):
        if kind == DELTA:
            tally[ladders.N_DELTA] += 1
            if name not in known or oracle.stale[order.index(name)]:
                tally[ladders.N_WITHOUT] += 1
            else:
                row = order.index(name)
                was = oracle.stale[row]
                oracle.row(kind, row, side, price, size)
                tally[ladders.N_IMPOSSIBLE] += oracle.stale[row] and not was
        else:
            if name not in known:
                known.add(name)
                order.append(name)
            row = order.index(name)
            oracle.row(kind, row, side, price, size)
            last[row] = price
            if kind == TICKER:
                oi[row] = size
                tally[ladders.N_TICKER] += 1
            else:
                tally[ladders.N_TRADE] += 1
        if i % 2 == 1 or i == len(rows) - 1:
            dirty.append([r for r, d in enumerate(oracle.dirty) if d])
            oracle.dirty = [False] * len(oracle.dirty)
    return oracle, order, tally, last, oi, dirty


@settings(max_examples=150, deadline=None)
@given(rows_strategy)
def test_bulk_rows_plain_and_compiled_match_dict_ladders(
    rows: list[tuple[int, int, int, int, int]],
) -> None:
    kernels = bulk_kernels()
    assert kernels is not None
    oracle, order, tally, last, oi, dirty = _bulk_oracle(rows)
    for apply in (ladders.apply_rows, kernels.apply_rows):
        cols, mrow, got_tally, got_dirty = _bulk(apply, rows)
        assert cols.n == len(order)
        assert [int(mrow[name]) for name in order] == list(range(len(order)))
        assert got_tally.tolist() == tally
        assert got_dirty == dirty
        for row in range(cols.n):
            for side in (0, 1):
                prices, sizes = cols.ladder(row, side)
                assert dict(zip(prices, sizes, strict=True)) == oracle.ladders[row, side]
            assert bool(cols.stale[row]) == oracle.stale[row]
            assert int(cols.last_price[row]) == last.get(row, NONE)
            assert int(cols.open_interest[row]) == oi.get(row, NONE)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_load_rows_compiled_and_numpy_agree(seed: int) -> None:
    kernels = engine_kernels()
    assert kernels is not None
    rng = np.random.default_rng(seed)
    cols = MarketColumns(capacity=4, levels=4)
    for _ in range(12):
        cols.new_row()
    n = cols.n
    cols.count[:n] = rng.integers(0, 5, size=(n, 2))
    cols.price[:n] = np.sort(rng.integers(1, 1_000_000, size=(n, 2, cols.levels)), axis=2)
    cols.size[:n] = rng.integers(1, 10**9, size=(n, 2, cols.levels))
    for field in (cols.close_ms, cols.volume_24h, cols.open_interest):
        field[:n] = np.where(rng.random(n) < 0.3, NONE, rng.integers(0, 2**50, size=n))
    for flag in (cols.has_book, cols.stale, cols.active):
        flag[:n] = rng.random(n) < 0.5
    rows = rng.permutation(n)[: rng.integers(0, n + 1)].astype(np.int64)
    out = []
    for load in (kernels.load_rows, ladders.load_rows_numpy, ladders.load_rows):
        raw = np.zeros((n, 7))
        fresh = np.zeros(n, dtype=np.bool_)
        tradable = np.zeros(n, dtype=np.bool_)
        load(
            rows, cols.price, cols.size, cols.count, cols.close_ms, cols.volume_24h,
            cols.open_interest, cols.has_book, cols.stale, cols.active, raw, fresh, tradable, rows,
        )  # fmt: skip
        out.append((raw.tobytes(), fresh.tolist(), tradable.tolist()))
    assert out[0] == out[1] == out[2]
    raw = np.frombuffer(out[0][0]).reshape(n, 7)
    for r in rows.tolist():
        k = int(cols.count[r, 1])
        want = np.nan if k == 0 else float(cols.price[r, 1, k - 1])
        assert (np.isnan(want) and np.isnan(raw[r, 0])) or raw[r, 0] == want
