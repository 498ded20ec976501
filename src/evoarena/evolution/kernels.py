"""Compiled loops over a population's (bot × market) pairs, for :func:`evaluate_pairs`.

numba compiles these on first use and caches the machine code on disk (beside this module, or
in the user's cache directory; ``NUMBA_CACHE_DIR`` chooses another), so a later process only
loads them: about 0.1 s of numba start-up at its first tick, once. They make exactly the
comparisons of the dense rules in :mod:`evoarena.evolution.strategies`, with the same IEEE
operations (no fast-math) where they compute a value (the z-score, from the history store's
exact sums, as :meth:`~evoarena.engine.view.MarketView.zscore_at` does), so every decision is
the dense rules' bit for bit. Imported only through
:func:`~evoarena.evolution.strategies.pair_kernels`.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from evoarena.evolution.strategies import (
    F_MAX_H,
    F_MIN_H,
    F_MIN_OI,
    F_MIN_VOL,
    F_NO_HI,
    F_NO_LO,
    F_PRICE_HIGH,
    F_PRICE_LOW,
    F_YES_HI,
    F_YES_LO,
    I_LOOKBACK,
    I_SOURCE,
    I_YES_ON_TIE,
    SRC_MOMENTUM,
    SRC_SWAPPED,
    SRC_ZSCORE,
)

_WIDE_SLOT = 63
"""Category slots below this are bits of a mask in :func:`filter_pairs`; the rest share it."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@njit(cache=True, nogil=True)
def filter_pairs(
    skip: BoolArray,
    floats: FloatArray,
    ints: IntArray,
    tables: BoolArray,
    category_idx: IntArray,
    hours: FloatArray,
    volume: FloatArray,
    interest: FloatArray,
    yes_ask: FloatArray,
    no_ask: FloatArray,
    out_bots: IntArray,
    out_markets: IntArray,
    momentum_lookbacks: IntArray,
    momentum_markets: IntArray,
) -> tuple[int, int, int]:
    """Write every (bot, market) pair passing the market filter, bot-major then market order,
    to ``out_bots``/``out_markets``, and, for the momentum bots' pairs in the same order, the
    bot's lookback and the market to ``momentum_lookbacks`` and ``momentum_markets``. Returns
    (pairs, momentum pairs, z-score pairs). Pairs beyond the room of the four arrays (all of one
    length) are counted, not written: with more pairs than room, call again with more.

    The bots are the columns of ``floats`` and ``ints`` (the rows of ``tables``), those
    flagged in ``skip`` left out; ``out_bots`` holds the column. A market's category slot in
    ``tables`` is ``category_idx + 1``.

    The filter: hours to expiry within the bot's window, volume and open interest not below its
    minimums (NaN, unreported, passes), one side's ask within its price bounds, the category
    allowed. Per bot, one tight pass over the markets marks those passing (non-short-circuit
    ``&``/``|`` over booleans, so the compiler vectorizes it; the category as a bit of the
    bot's mask of allowed slots, exact below slot 63), a second lists the marked markets
    without a branch per market, a third keeps those whose category the bot allows (the
    table's word, for every slot) — branches on the few marked markets only.
    """
    n = hours.shape[0]
    room = out_bots.shape[0]
    n_slots = tables.shape[1]
    one = np.uint64(1)
    slot_bits = np.empty(n, dtype=np.uint64)
    for m in range(n):
        slot_bits[m] = one << np.uint64(min(category_idx[m] + 1, _WIDE_SLOT))
    passing = np.empty(n, dtype=np.bool_)
    marked = np.empty(n, dtype=np.int64)
    k = 0
    km = 0
    kz = 0
    for b in range(skip.shape[0]):
        if skip[b]:
            continue
        allowed = tables[b]
        mask = one << np.uint64(_WIDE_SLOT)  # slots from 63 on: the table decides, below
        for slot in range(min(n_slots, _WIDE_SLOT)):
            if allowed[slot]:
                mask |= one << np.uint64(slot)
        min_h = floats[F_MIN_H, b]
        max_h = floats[F_MAX_H, b]
        min_v = floats[F_MIN_VOL, b]
        min_oi = floats[F_MIN_OI, b]
        lo = floats[F_PRICE_LOW, b]
        hi = floats[F_PRICE_HIGH, b]
        for m in range(n):
            h = hours[m]
            ya = yes_ask[m]
            na = no_ask[m]
            passing[m] = (
                (h >= min_h)
                & (h <= max_h)
                & (not volume[m] < min_v)
                & (not interest[m] < min_oi)
                & (((ya >= lo) & (ya <= hi)) | ((na >= lo) & (na <= hi)))
                & ((slot_bits[m] & mask) != 0)
            )
        c = 0
        for m in range(n):
            marked[c] = m
            c += passing[m]
        source = ints[I_SOURCE, b]
        lookback = ints[I_LOOKBACK, b]
        k0 = k
        for i in range(c):
            m = marked[i]
            if allowed[category_idx[m] + 1]:
                if k < room:  # then km < room too (km <= k)
                    out_bots[k] = b
                    out_markets[k] = m
                    if source == SRC_MOMENTUM:
                        momentum_lookbacks[km] = lookback
                        momentum_markets[km] = m
                if source == SRC_MOMENTUM:
                    km += 1
                k += 1
        if source == SRC_ZSCORE:
            kz += k - k0
    return k, km, kz


@njit(cache=True, nogil=True)
def signal_pairs(
    floats: FloatArray,
    ints: IntArray,
    yes_ask: FloatArray,
    no_ask: FloatArray,
    ask_micros: FloatArray,
    hist_len: IntArray,
    sums: IntArray,
    squares: IntArray,
    min_points: int,
    momenta: FloatArray,
    bots: IntArray,
    markets: IntArray,
    n_pairs: int,
    out_signals: npt.NDArray[np.int8],
    out_yes: FloatArray,
    out_no: FloatArray,
    counts: IntArray,
) -> int:
    """Evaluate the signal of the first ``n_pairs`` pairs and keep those where it fires:
    compacted in place in ``bots``/``markets``, their signals (+1 YES, −1 NO) in
    ``out_signals``, their markets' YES and NO asks in ``out_yes``/``out_no``, each bot's
    number in ``counts`` (by column). Returns how many were kept.

    ``momenta`` holds the momentum bots' pairs' momenta, in pair order; a mean-reversion pair
    reads its market's z-score, computed here as :meth:`MarketView.zscore_at` does from the
    history's length, exact sums and the YES ask in µ$ (``ask_micros``; only read for such
    pairs).
    """
    k = 0
    q = 0
    for p in range(n_pairs):
        b = bots[p]
        m = markets[p]
        ya = yes_ask[m]
        na = no_ask[m]
        source = ints[I_SOURCE, b]
        if source == SRC_SWAPPED:
            x_yes = na
            x_no = ya
        elif source == SRC_MOMENTUM:
            x_yes = momenta[q]
            q += 1
            x_no = x_yes
        elif source == SRC_ZSCORE:
            n = hist_len[m]
            radicand = n * squares[m] - sums[m] * sums[m]
            if n >= min_points and radicand > 0:
                x_yes = (n * ask_micros[m] - sums[m]) / math.sqrt(float(radicand))
            else:
                x_yes = math.nan
            x_no = x_yes
        else:
            x_yes = ya
            x_no = na
        yes_ok = x_yes >= floats[F_YES_LO, b] and x_yes <= floats[F_YES_HI, b]
        no_ok = x_no >= floats[F_NO_LO, b] and x_no <= floats[F_NO_HI, b]
        # pick_sides: YES where only YES qualifies or both do and YES wins the tie.
        if yes_ok and ((not no_ok) or ya <= na or ints[I_YES_ON_TIE, b] != 0):
            out_signals[k] = 1
        elif no_ok:
            out_signals[k] = -1
        else:
            continue
        bots[k] = b
        markets[k] = m
        out_yes[k] = ya
        out_no[k] = na
        counts[b] += 1
        k += 1
    return k


def warm_up() -> None:
    """Compile both kernels (or load them from the disk cache) on a tiny input, so a failure to
    compile shows here, once, and not in the middle of a tick."""
    floats = np.zeros((10, 1))
    ints = np.zeros((3, 1), dtype=np.int64)
    values = np.zeros(1)
    counts = np.zeros(1, dtype=np.int64)
    pairs = np.zeros(2, dtype=np.int64)
    k, _, _ = filter_pairs(
        np.zeros(1, dtype=np.bool_), floats, ints, np.ones((1, 1), dtype=np.bool_), counts - 1,
        values, values, values, values, values, pairs, pairs.copy(), pairs.copy(), pairs.copy(),
    )  # fmt: skip
    signal_pairs(
        floats, ints, values, values, values, counts, counts, counts, 10, values, pairs,
        pairs.copy(), k, np.zeros(1, dtype=np.int8), values.copy(), values.copy(), counts,
    )  # fmt: skip
