"""Every market's bid ladders and hot fields as columns, and the loops that update them.

A :class:`MarketColumns` holds, for each market row (the order the book first heard of the
markets), both bid ladders as sorted arrays — ladder ``(row, side)`` is
``price[start[row, side]:][:count[row, side]]`` ascending, ``size`` beside it, so the best bid
is the last level — and the fields the replay's hot rows write (open interest, last price) or a
view reads (book flags, close time, 24 h volume), with :data:`NONE` for a missing value (NaN
in the close time, a float: see :attr:`MarketColumns.close_ms`).
:class:`~evoarena.engine.book.MarketState` is a view of one row.

Each ladder owns a slab of ``room[row, side]`` slots in one shared pool; a ladder that needs more
moves to a slab at least twice as large at the pool's end. The slabs a ladder left behind hold
fewer slots than its current one, so the pool stays under twice the live room: memory follows
the most levels each ladder has held, whatever one hostile market does to its own.

The bulk loops here (:func:`apply_rows`, :func:`load_rows`) are plain Python in numba's subset,
flat (they call nothing): :mod:`evoarena.engine.kernels` compiles these same functions, and where
numba is unavailable they run as they are, with the same results, slowly. :func:`apply_delta`,
one change at a time, is numpy for the per-event path.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

NO, YES = 0, 1
"""Side index in the ladder arrays (the compiled store's side codes)."""

NONE = -(1 << 63)
"""A missing integer field (``None``)."""

SIZE_MAX = (1 << 63) - 1
"""The largest size a level holds: a change that would take one past it is impossible (the
market turns stale until its next snapshot), on every path alike."""

OTHER, DELTA, TICKER, TRADE = 0, 1, 2, 3
"""Row kinds :func:`apply_rows` reads (the compiled store's codes)."""

# apply_delta's results.
UNCHANGED_TOP, CHANGED_TOP, IMPOSSIBLE, FULL = 0, 1, -1, -2

# apply_rows' counters (its ``counts`` argument).
N_DELTA, N_WITHOUT, N_IMPOSSIBLE, N_TICKER, N_TRADE = range(5)

_LEVELS = 8
"""Levels each ladder has room for at first (a ladder's slab doubles when it needs more)."""


class MarketColumns:
    """The columns of every market of one book (see the module docstring).

    Arrays are replaced, not resized in place, when they grow (:meth:`new_row`,
    :meth:`grow_ladder`): read them through this object, never keep one across a change.
    """

    __slots__ = (
        "active",
        "close_ms",
        "count",
        "dirty",
        "has_book",
        "last_price",
        "n",
        "open_interest",
        "price",
        "room",
        "size",
        "stale",
        "start",
        "used",
        "volume_24h",
    )

    def __init__(self, capacity: int = 64) -> None:
        cap = max(1, capacity)
        self.n = 0
        self.price: IntArray = np.zeros(2 * cap * _LEVELS, dtype=np.int64)
        """The pool of every ladder's prices (see :attr:`start`)."""
        self.size: IntArray = np.zeros(2 * cap * _LEVELS, dtype=np.int64)
        """The pool of every ladder's sizes, beside :attr:`price`."""
        self.used = 0
        """Pool slots handed out (live slabs and abandoned ones)."""
        self.start: IntArray = np.zeros((cap, 2), dtype=np.int64)
        """Where each ladder's slab begins in the pools."""
        self.room: IntArray = np.zeros((cap, 2), dtype=np.int64)
        """How many levels each ladder's slab holds."""
        self.count: IntArray = np.zeros((cap, 2), dtype=np.int64)
        """How many levels each ladder has."""
        self.has_book: BoolArray = np.zeros(cap, dtype=np.bool_)
        self.stale: BoolArray = np.zeros(cap, dtype=np.bool_)
        self.active: BoolArray = np.zeros(cap, dtype=np.bool_)
        """The market's status is :attr:`MarketStatus.ACTIVE` (kept by ``MarketState.status``)."""
        self.dirty: BoolArray = np.zeros(cap, dtype=np.bool_)
        """Something a view reads changed since the book's arrays last read the row."""
        self.close_ms: FloatArray = np.full(cap, np.nan)
        """When trading closes, as the float a view reads (NaN: unknown; the exact integer, which
        need not fit an int64, is :attr:`MarketState.close_ms`)."""
        self.volume_24h: IntArray = np.full(cap, NONE, dtype=np.int64)
        self.open_interest: IntArray = np.full(cap, NONE, dtype=np.int64)
        self.last_price: IntArray = np.full(cap, NONE, dtype=np.int64)

    def new_row(self) -> int:
        """A fresh row: empty ladders, no book, every field missing."""
        if self.n == len(self.count):
            self._grow_rows()
        row = self.n
        self.n += 1
        for side in (NO, YES):
            self.start[row, side] = self._take(_LEVELS)
            self.room[row, side] = _LEVELS
        return row

    def _grow_rows(self) -> None:
        cap = len(self.count)
        for name in ("start", "room", "count", "has_book", "stale", "active", "dirty"):
            old = getattr(self, name)
            setattr(self, name, np.concatenate((old, np.zeros_like(old))))
        self.close_ms = np.concatenate((self.close_ms, np.full(cap, np.nan)))
        for name in ("volume_24h", "open_interest", "last_price"):
            old = getattr(self, name)
            setattr(self, name, np.concatenate((old, np.full(cap, NONE, dtype=np.int64))))

    def _take(self, k: int) -> int:
        """``k`` fresh pool slots; where they begin (the pools double when full)."""
        at = self.used
        if at + k > len(self.price):
            grow = max(k, len(self.price))
            self.price = np.concatenate((self.price, np.zeros(grow, dtype=np.int64)))
            self.size = np.concatenate((self.size, np.zeros(grow, dtype=np.int64)))
        self.used = at + k
        return at

    def grow_ladder(self, row: int, side: int, at_least: int = 0) -> None:
        """Give ladder ``(row, side)`` a slab of at least twice its room (and ``at_least``)."""
        room = max(2 * int(self.room[row, side]), at_least)
        n = int(self.count[row, side])
        old = int(self.start[row, side])
        at = self._take(room)
        self.price[at : at + n] = self.price[old : old + n]
        self.size[at : at + n] = self.size[old : old + n]
        self.start[row, side] = at
        self.room[row, side] = room

    def ladder(self, row: int, side: int) -> tuple[list[int], list[int]]:
        """``(prices, sizes)`` of one ladder, ascending by price."""
        at = int(self.start[row, side])
        end = at + int(self.count[row, side])
        return self.price[at:end].tolist(), self.size[at:end].tolist()

    def set_ladder(self, row: int, side: int, levels: dict[int, int]) -> None:
        """Replace one ladder by ``levels`` (price → size, every size positive)."""
        n = len(levels)
        if n > self.room[row, side]:
            self.count[row, side] = 0  # nothing to carry over
            self.grow_ladder(row, side, n)
        prices = sorted(levels)
        at = int(self.start[row, side])
        self.price[at : at + n] = prices
        self.size[at : at + n] = [levels[p] for p in prices]
        self.count[row, side] = n

    def delta(self, row: int, side: int, price: int, delta: int) -> int:
        """:func:`apply_delta` on this book's arrays (growing a ladder that is full)."""
        while True:
            r = apply_delta(
                self.price, self.size, self.start, self.room, self.count, row, side, price, delta
            )
            if r != FULL:
                return r
            self.grow_ladder(row, side)

    def apply(
        self,
        apply_rows: Callable[..., int],
        rows: tuple[IntArray, IntArray, IntArray, IntArray, IntArray, IntArray],
        a: int,
        z: int,
        tally: IntArray,
        add_market: Callable[[int], int],
    ) -> None:
        """Rows ``[a, z)`` of ``rows`` (kind, mrow, tick, side, price, size: see
        :func:`apply_rows`) through ``apply_rows`` (:func:`apply_rows`, compiled or not), growing
        a full ladder and adding a market (``mrow[tick] = add_market(tick)``) where it stops."""
        kind, mrow, tick, side, price, size = rows
        while True:
            a = apply_rows(
                kind, mrow, tick, side, price, size, a, z, self.price, self.size, self.start,
                self.room, self.count, self.has_book, self.stale, self.dirty, self.last_price,
                self.open_interest, tally,
            )  # fmt: skip
            if a == z:
                return
            x = int(tick[a])
            if kind[a] == DELTA:  # a new level that does not fit
                self.grow_ladder(int(mrow[x]), int(side[a]))
            else:  # a ticker or trade of a market not in the book yet
                mrow[x] = add_market(x)


def apply_delta(
    prices: IntArray,
    sizes: IntArray,
    starts: IntArray,
    rooms: IntArray,
    counts: IntArray,
    row: int,
    side: int,
    price: int,
    delta: int,
) -> int:
    """Add ``delta`` to the size at ``price`` of ladder ``(row, side)`` (the per-event path;
    :func:`apply_rows` makes the same change inline, in bulk).

    A level whose size reaches 0 goes; a size that would go negative or past :data:`SIZE_MAX`
    changes nothing. Returns :data:`CHANGED_TOP` when what a view reads (the best level or its
    size) may have changed — a level at or above the best was set, or the best level went —
    :data:`UNCHANGED_TOP` for a change below it, :data:`IMPOSSIBLE` for a negative (or too
    large) size, :data:`FULL` (nothing changed) when a new level does not fit.
    """
    n = counts.item(row, side)
    at = starts.item(row, side)
    end = at + rooms.item(row, side)
    ps = prices[at:end]
    ss = sizes[at:end]
    lo = int(ps[:n].searchsorted(price)) if n else 0  # the first level at or above ``price``
    found = lo < n and ps.item(lo) == price
    top = lo == n or (found and lo == n - 1)  # at or above the best level
    new = (ss.item(lo) if found else 0) + delta
    if new > SIZE_MAX:
        return IMPOSSIBLE  # a size the ladder cannot hold: as apply_rows judges it
    if new > 0:
        if found:
            ss[lo] = new
        else:
            if n == len(ps):
                return FULL
            ps[lo + 1 : n + 1] = ps[lo:n]  # (numpy copies overlapping slices correctly)
            ss[lo + 1 : n + 1] = ss[lo:n]
            ps[lo] = price
            ss[lo] = new
            counts[row, side] = n + 1
        return CHANGED_TOP if top else UNCHANGED_TOP
    if new == 0:
        if not found:
            return UNCHANGED_TOP
        ps[lo : n - 1] = ps[lo + 1 : n]
        ss[lo : n - 1] = ss[lo + 1 : n]
        counts[row, side] = n - 1
        return CHANGED_TOP if lo == n - 1 else UNCHANGED_TOP
    return IMPOSSIBLE


def apply_rows(  # noqa: C901 - one flat compiled loop: numba inlines nothing it is not given
    kind: IntArray,
    mrow: IntArray,
    tick: IntArray,
    side: IntArray,
    price: IntArray,
    size: IntArray,
    a: int,
    z: int,
    prices: IntArray,
    sizes: IntArray,
    starts: IntArray,
    rooms: IntArray,
    counts: IntArray,
    has_book: BoolArray,
    stale: BoolArray,
    dirty: BoolArray,
    last_price: IntArray,
    open_interest: IntArray,
    tally: IntArray,
) -> int:
    """Apply rows ``[a, z)`` in order (kinds :data:`DELTA`, :data:`TICKER`, :data:`TRADE`).

    Row ``i``'s market is ``mrow[tick[i]]`` (-1: not in the book). A delta on a market not in
    the book, without a book or stale is counted, not applied; an impossible one marks the market
    stale. A ticker sets the last price and the open interest (in ``size``), a trade the last
    price. Adds to ``tally`` (indexed by ``N_DELTA`` ...). Returns where it stopped: ``z``, or the
    first row it could not apply — a ticker or trade of a market not in the book (the caller
    adds it and goes on from there) or a delta whose new level does not fit (the caller grows the
    ladders) — with nothing of that row done.

    The level update is :func:`apply_delta`'s, inlined (a compiled loop calls nothing).
    """
    for i in range(a, z):
        k = kind[i]
        r = mrow[tick[i]]
        if k == DELTA:
            if r < 0 or not has_book[r] or stale[r]:
                tally[N_DELTA] += 1
                tally[N_WITHOUT] += 1
                continue
            s = side[i]
            p = price[i]
            n = counts[r, s]
            b = starts[r, s]
            lo = 0
            hi = n
            while lo < hi:
                mid = (lo + hi) // 2
                if prices[b + mid] < p:
                    lo = mid + 1
                else:
                    hi = mid
            found = lo < n and prices[b + lo] == p
            top = lo == n or (found and lo == n - 1)  # at or above the best level
            cur = sizes[b + lo] if found else 0
            d = size[i]
            # A sum past int64 must not wrap (numba's adds assume it does not): impossible.
            new = -1 if d > 0 and cur > SIZE_MAX - d else cur + d
            if new > 0:
                if found:
                    sizes[b + lo] = new
                else:
                    if n == rooms[r, s]:
                        return i
                    for j in range(b + n, b + lo, -1):
                        prices[j] = prices[j - 1]
                        sizes[j] = sizes[j - 1]
                    prices[b + lo] = p
                    sizes[b + lo] = new
                    counts[r, s] = n + 1
                if top:
                    dirty[r] = True
            elif new == 0:
                if found:
                    for j in range(b + lo, b + n - 1):
                        prices[j] = prices[j + 1]
                        sizes[j] = sizes[j + 1]
                    counts[r, s] = n - 1
                    if lo == n - 1:
                        dirty[r] = True
            else:
                tally[N_IMPOSSIBLE] += 1
                stale[r] = True
                dirty[r] = True
            tally[N_DELTA] += 1
        else:
            if r < 0:
                return i
            last_price[r] = price[i]
            if k == TICKER:
                open_interest[r] = size[i]
                dirty[r] = True
                tally[N_TICKER] += 1
            else:
                tally[N_TRADE] += 1
    return z


def load_rows(
    rows: IntArray,
    prices: IntArray,
    sizes: IntArray,
    starts: IntArray,
    counts: IntArray,
    close_ms: FloatArray,
    volume_24h: IntArray,
    open_interest: IntArray,
    has_book: BoolArray,
    stale: BoolArray,
    active: BoolArray,
    raw: FloatArray,
    fresh: BoolArray,
    tradable: BoolArray,
    dest: IntArray,
) -> None:
    """Write what a view reads of each of ``rows`` into ``raw[dest[j]]`` (best YES bid, best
    NO bid, their sizes, close time, 24 h volume, open interest; NaN where missing),
    ``fresh[dest[j]]`` (a book, not stale) and ``tradable[dest[j]]`` (fresh and active)."""
    nan = np.nan
    for j in range(len(rows)):
        r = rows[j]
        d = dest[j]
        ny = counts[r, 1]
        nn = counts[r, 0]
        if ny > 0:
            raw[d, 0] = prices[starts[r, 1] + ny - 1]
            raw[d, 2] = sizes[starts[r, 1] + ny - 1]
        else:
            raw[d, 0] = nan
            raw[d, 2] = nan
        if nn > 0:
            raw[d, 1] = prices[starts[r, 0] + nn - 1]
            raw[d, 3] = sizes[starts[r, 0] + nn - 1]
        else:
            raw[d, 1] = nan
            raw[d, 3] = nan
        raw[d, 4] = close_ms[r]
        v = volume_24h[r]
        raw[d, 5] = nan if v == NONE else v
        v = open_interest[r]
        raw[d, 6] = nan if v == NONE else v
        f = has_book[r] and not stale[r]
        fresh[d] = f
        tradable[d] = f and active[r]


def load_rows_numpy(
    rows: IntArray,
    prices: IntArray,
    sizes: IntArray,
    starts: IntArray,
    counts: IntArray,
    close_ms: FloatArray,
    volume_24h: IntArray,
    open_interest: IntArray,
    has_book: BoolArray,
    stale: BoolArray,
    active: BoolArray,
    raw: FloatArray,
    fresh: BoolArray,
    tradable: BoolArray,
    dest: IntArray,
) -> None:
    """:func:`load_rows` in a few numpy calls (where numba is unavailable): the same values."""
    for col, side in ((0, YES), (1, NO)):
        n = counts[rows, side]
        top = starts[rows, side] + np.maximum(n - 1, 0)
        best = prices[top].astype(np.float64)
        size = sizes[top].astype(np.float64)
        best[n == 0] = np.nan
        size[n == 0] = np.nan
        raw[dest, col] = best
        raw[dest, col + 2] = size
    raw[dest, 4] = close_ms[rows]
    for col, values in ((5, volume_24h), (6, open_interest)):
        v = values[rows]
        out = v.astype(np.float64)
        out[v == NONE] = np.nan
        raw[dest, col] = out
    f = has_book[rows] & ~stale[rows]
    fresh[dest] = f
    tradable[dest] = f & active[rows]
