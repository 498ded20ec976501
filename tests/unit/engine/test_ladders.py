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
    cols = MarketColumns(capacity=1)  # grows both ways (rows, and ladders past 8 levels)
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
    cols = MarketColumns(capacity=1)
    cols.new_row()
    cols.has_book[0] = True  # the other markets join when a ticker or trade names them
    mrow = np.full(ROWS + 1, -1, dtype=np.int64)
    mrow[0] = 0
    kind, tick, side, price, size = (
        np.array([r[k] for r in rows], dtype=np.int64) for k in range(5)
    )
    tally = np.zeros(5, dtype=np.int64)
    dirty = []

    def add_market(x: int) -> int:
        row = cols.new_row()
        cols.has_book[row] = True
        return row

    for start in range(0, len(rows), 2):
        columns = (kind, mrow, tick, side, price, size)
        cols.apply(apply, columns, start, min(start + 2, len(rows)), tally, add_market)
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
    cols = MarketColumns(capacity=4)
    for _ in range(12):
        row = cols.new_row()
        for side in (0, 1):
            k = int(rng.integers(0, 12))
            prices = rng.choice(1_000_000, size=k, replace=False) + 1
            cols.set_ladder(row, side, {int(p): int(rng.integers(1, 10**9)) for p in prices})
    n = cols.n
    for field in (cols.volume_24h, cols.open_interest):
        field[:n] = np.where(rng.random(n) < 0.3, NONE, rng.integers(0, 2**50, size=n))
    cols.close_ms[:n] = np.where(rng.random(n) < 0.3, np.nan, rng.integers(0, 2**50, size=n))
    for flag in (cols.has_book, cols.stale, cols.active):
        flag[:n] = rng.random(n) < 0.5
    rows = rng.permutation(n)[: rng.integers(0, n + 1)].astype(np.int64)
    out = []
    for load in (kernels.load_rows, ladders.load_rows_numpy, ladders.load_rows):
        raw = np.zeros((n, 7))
        fresh = np.zeros(n, dtype=np.bool_)
        tradable = np.zeros(n, dtype=np.bool_)
        load(
            rows, cols.price, cols.size, cols.start, cols.count, cols.close_ms, cols.volume_24h,
            cols.open_interest, cols.has_book, cols.stale, cols.active, raw, fresh, tradable, rows,
        )  # fmt: skip
        out.append((raw.tobytes(), fresh.tolist(), tradable.tolist()))
    assert out[0] == out[1] == out[2]
    raw = np.frombuffer(out[0][0]).reshape(n, 7)
    for r in rows.tolist():
        prices, _ = cols.ladder(r, 1)
        want = float(prices[-1]) if prices else np.nan
        assert (np.isnan(want) and np.isnan(raw[r, 0])) or raw[r, 0] == want


def test_one_deep_ladder_costs_its_own_levels_not_every_markets() -> None:
    """A hostile market with thousands of levels grows its own slab, not every market's; the
    pool stays within a small multiple of the levels held, and every ladder that moved to a
    larger slab keeps its levels."""
    cols = MarketColumns()
    rng = np.random.default_rng(5)
    oracle: dict[tuple[int, int], dict[int, int]] = {}
    for _ in range(200):
        row = cols.new_row()
        for side in (0, 1):
            levels = {int(p): 100 for p in rng.choice(10**6, size=5, replace=False) + 1}
            cols.set_ladder(row, side, levels)
            oracle[row, side] = levels
    for k in range(1, 6001):  # one market, 6,000 levels
        assert cols.delta(7, 1, k, 3) in (CHANGED_TOP, UNCHANGED_TOP)
        oracle[7, 1][k] = oracle[7, 1].get(k, 0) + 3
    for row in range(0, 200, 3):  # many ladders move to larger slabs
        for k in range(40):
            cols.delta(row, 0, 2_000_000 + k, 1)
            oracle[row, 0][2_000_000 + k] = 1
    held = sum(len(v) for v in oracle.values())
    assert len(cols.price) <= 8 * held
    for (row, side), levels in oracle.items():
        prices, sizes = cols.ladder(row, side)
        assert dict(zip(prices, sizes, strict=True)) == levels
