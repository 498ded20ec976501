"""Compiled loops of the per-tick book and view work (see ``engine.book.engine_kernels``).

Each kernel replaces a chain of small numpy calls over a few hundred values (each call costs
about a microsecond, more than its arithmetic) with one compiled loop, making exactly the numpy
code's integer updates and, where it computes a float, the same IEEE operations in the same
order (no fast-math): every result is the numpy code's bit for bit. numba caches the machine
code on disk (``cache=True``), so a later process only loads it. Imported only through
:func:`~evoarena.engine.book.engine_kernels`, which falls back to the numpy code when this module
cannot be imported or compiled.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from evoarena.engine import ladders

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@njit(cache=True, nogil=True)
def record_asks(
    raw: FloatArray,
    fresh: BoolArray,
    hist_row: IntArray,
    data: IntArray,
    pos: IntArray,
    length: IntArray,
    sums: IntArray,
    squares: IntArray,
    price_one: int,
) -> IntArray:
    """Append ``price_one − best NO bid`` (``raw[:, 1]``, cast to int64 first) of every fresh
    market with a NO bid to its store row ``hist_row[i]``, as
    :meth:`~evoarena.engine.book.PriceHistoryStore.append_rows` does (values, write position,
    length and the exact sums; nothing where the store keeps no values); returns, ascending,
    the markets skipped because they have no row yet (``hist_row == 0``)."""
    cap = data.shape[1] // 2
    need = np.empty(len(fresh), dtype=np.int64)
    n_need = 0
    for i in range(len(fresh)):
        if not fresh[i]:
            continue
        bid = raw[i, 1]
        if math.isnan(bid):
            continue
        row = hist_row[i]
        if row == 0:
            need[n_need] = i
            n_need += 1
            continue
        if cap == 0:
            continue
        value = price_one - np.int64(bid)
        p = pos[row]
        if length[row] < cap:
            length[row] += 1
        else:  # the oldest value, at the write position, leaves
            old = data[row, p]
            sums[row] -= old
            squares[row] -= old * old
        sums[row] += value
        squares[row] += value * value
        data[row, p] = value
        data[row, p + cap] = value
        pos[row] = 0 if p + 1 == cap else p + 1
    return need[:n_need]


@njit(cache=True, nogil=True)
def view_rows(
    order: IntArray,
    tradable: BoolArray,
    raw: FloatArray,
    hist_row: IntArray,
    cat_pos: IntArray,
    length: IntArray,
    now_ms: float,
    max_close_ms: float,
    has_max_close: bool,
    units: FloatArray,
) -> tuple[IntArray, FloatArray, FloatArray, IntArray, IntArray, IntArray]:
    """The rows of a market view, in ``order``, and what it reads of them (see
    :meth:`~evoarena.engine.view.MarketView.build`): rows that are tradable, not closed at
    ``now_ms`` (an unknown, NaN, close time stays) and, with ``has_max_close``, known to close
    by ``max_close_ms``.

    Returns ``(rows, raw[rows], features, hist_row[rows], cat_pos[rows], lengths)``;
    ``features`` holds the YES ask, NO ask, hours to expiry, 24 h volume and open interest by
    the operations of ``MarketView._fill`` (``units``: their five divisors), ``lengths`` the
    store ``length`` of each picked history row.
    """
    rows = np.empty(len(order), dtype=np.int64)
    k = 0
    for j in range(len(order)):
        r = order[j]
        if not tradable[r]:
            continue
        close = raw[r, 4]
        if close <= now_ms:
            continue
        if has_max_close and not close <= max_close_ms:
            continue
        rows[k] = r
        k += 1
    rows = rows[:k]
    picked = np.empty((k, raw.shape[1]))
    features = np.empty((5, k))
    hist_rows = np.empty(k, dtype=np.int64)
    cats = np.empty(k, dtype=np.int64)
    lengths = np.empty(k, dtype=np.int64)
    price_one, hour, count_one = units[0], units[2], units[3]
    for i in range(k):
        r = rows[i]
        picked[i] = raw[r]
        features[0, i] = (price_one - raw[r, 1]) / price_one
        features[1, i] = (price_one - raw[r, 0]) / price_one
        features[2, i] = (raw[r, 4] - now_ms) / hour
        features[3, i] = raw[r, 5] / count_one
        features[4, i] = raw[r, 6] / count_one
        hist_rows[i] = hist_row[r]
        cats[i] = cat_pos[r]
        lengths[i] = length[hist_row[r]]
    return rows, picked, features, hist_rows, cats, lengths


@njit(cache=True, nogil=True)
def _momentum_one(last: float, base: float) -> float:
    if base > 0:
        return (last - base) / base
    return math.nan


@njit(cache=True, nogil=True)
def momenta_in_store(
    data: IntArray,
    pos: IntArray,
    rows: IntArray,
    lengths: IntArray,
    lookbacks: IntArray,
    markets: IntArray,
) -> FloatArray:
    """``(h[-1] − h[-1 − lookbacks[i]]) / h[-1 − lookbacks[i]]`` of each ``markets[i]``'s history
    in the store (``data``/``pos`` of a store; ``rows``/``lengths`` per view market); NaN
    without ``lookbacks[i] + 1`` values or a positive base."""
    cap = data.shape[1] // 2
    out = np.empty(len(markets))
    for i in range(len(markets)):
        m = markets[i]
        lb = lookbacks[i]
        if not lengths[m] > lb:
            out[i] = math.nan
            continue
        row = rows[m]
        newest = pos[row] + cap - 1
        out[i] = _momentum_one(float(data[row, newest]), float(data[row, newest - lb]))
    return out


@njit(cache=True, nogil=True)
def momenta_in_flat(
    flat: IntArray, ends: IntArray, lengths: IntArray, lookbacks: IntArray, markets: IntArray
) -> FloatArray:
    """:func:`momenta_in_store` over histories concatenated in ``flat`` (each ends at ``ends``)."""
    out = np.empty(len(markets))
    for i in range(len(markets)):
        m = markets[i]
        lb = lookbacks[i]
        if not lengths[m] > lb:
            out[i] = math.nan
            continue
        newest = ends[m] - 1
        out[i] = _momentum_one(float(flat[newest]), float(flat[newest - lb]))
    return out


load_rows = njit(cache=True, nogil=True)(ladders.load_rows)
""":func:`evoarena.engine.ladders.load_rows`, compiled."""


def warm_up() -> None:
    """Compile every kernel (or load it from the disk cache) on a tiny input, with the argument
    types the book and the view pass, so a failure shows here, once, not in the middle of a
    tick."""
    ints = np.zeros(2, dtype=np.int64)
    raw = np.full((2, 7), math.nan)
    store = np.zeros((2, 4), dtype=np.int64)
    flags = np.zeros(2, dtype=np.bool_)
    record_asks(raw, flags, ints, store, ints.copy(), ints.copy(), ints.copy(), ints.copy(), 1)
    view_rows(ints, flags, raw, ints, ints, ints, 0.0, 0.0, False, np.ones(5))
    momenta_in_store(store, ints, ints, ints, ints + 1, ints)
    momenta_in_flat(ints, ints, ints, ints + 1, ints)
    c = ladders.MarketColumns(capacity=2)
    rows = np.arange(1, dtype=np.int64)
    load_rows(
        rows, c.price, c.size, c.start, c.count, c.close_ms, c.volume_24h, c.open_interest,
        c.has_book, c.stale, c.active, raw, flags, flags.copy(), rows,
    )  # fmt: skip
