"""The compiled store's bookkeeping of typed rows, in bulk.

:func:`scan_rows` walks a batch's typed rows as the per-row loop of
:class:`~evoarena.feeds.store.StoreIngest` would — the receive-time guard, the delta sequence,
the schedule's gate, the sink's counters, the decoder's sequence positions and markets per
subscription — and stops at the first row that needs that loop (a general row, a time the guard
refuses, a delta out of sequence, a row at the gate). None of that depends on the book, so the
rows it passed are then applied to the book in one :func:`~evoarena.engine.ladders.apply_rows`.

Plain Python in numba's subset: :mod:`evoarena.feeds.bulk_kernels` compiles it; where numba is
unavailable it runs as it is, with the same results, slowly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType

import numpy as np
import numpy.typing as npt

from evoarena.compiled import load_kernels
from evoarena.engine import ladders
from evoarena.engine.ladders import DELTA, OTHER
from evoarena.engine.ladders import NONE as NONE

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

ERROR = 4
"""The compiled store's kind of a final unreadable row (after OTHER, DELTA, TICKER, TRADE)."""

# scan_rows' state (its ``st`` argument): the sink's counters, the reader's high-water mark,
# the new pairs recorded and why it stopped.
ITEMS, EVENTS, APPLIED, FIRST, LAST, LAST_LINE, APPLIED_T, HIGH_WATER, PAIRS, WHY = range(10)
STATE_LEN = 10

# Why scan_rows stopped.
DONE, GENERAL, BAD_TIME, SEQUENCE, GATE = range(5)

INT64_MIN = -(1 << 63)


def scan_rows(
    t: IntArray,
    kind: IntArray,
    sidx: IntArray,
    seq: IntArray,
    tick: IntArray,
    line: IntArray,
    a: int,
    z: int,
    gate: int,
    max_jump: int,
    max_t: int,
    pos: IntArray,
    seen: BoolArray,
    pairs: IntArray,
    st: IntArray,
    counted: int,
) -> int:
    """Take rows ``[a, z)`` in order until one needs the per-row loop; returns its index (``z``
    when none did) and why in ``st[WHY]`` (:data:`DONE`, :data:`GENERAL`, :data:`BAD_TIME`,
    :data:`SEQUENCE`, :data:`GATE`), with nothing of that row done. ``counted``: row ``a`` was
    already counted as an item (a row at the gate, the schedule run, taken now).

    For every row taken: the high-water mark ``st[HIGH_WATER]`` rises to its time, the sink's
    counters count it (an item, an event applied, its line and time), and a delta moves its
    subscription's position ``pos[sidx[i]]`` (:data:`NONE`: unknown) to its ``seq`` and records
    the pair (subscription, market) in ``pairs`` (``st[PAIRS]`` of them, ``sidx × names + tick``)
    the first time ``seen`` has it. :data:`NONE` in ``st[FIRST]``, ``st[APPLIED_T]`` and
    ``st[HIGH_WATER]`` means ``None``.

    In doubt — a delta whose sequence or predecessor is at the int64 limits — it stops with
    :data:`SEQUENCE`: the per-row loop decides exactly.
    """
    hw = st[HIGH_WATER]
    n_names = seen.shape[1]
    n_pairs = st[PAIRS]
    items = st[ITEMS]
    first = st[FIRST]
    last = st[LAST]
    last_line = st[LAST_LINE]
    applied_t = st[APPLIED_T]
    taken = 0
    why = DONE
    i = a
    while i < z:
        k = kind[i]
        if k == OTHER or k == ERROR:  # noqa: SIM109 - two integer compares in the compiled loop
            why = GENERAL
            break
        ti = t[i]
        limit = max_t if hw == NONE else min(max_t, hw + max_jump)
        if ti > limit or ti < 0:
            why = BAD_TIME
            break
        j = 0
        if k == DELTA:
            j = sidx[i]
            s = seq[i]
            p = pos[j]
            if p == NONE or s == INT64_MIN or p != s - 1:
                why = SEQUENCE
                break
        if ti >= gate:
            why = GATE
            break
        if hw == NONE or ti > hw:
            hw = ti
        if i != a or not counted:
            items += 1
        taken += 1
        last = ti
        if first == NONE:
            first = ti
        last_line = line[i]
        applied_t = ti
        if k == DELTA:
            pos[j] = seq[i]
            x = tick[i]
            if not seen[j, x]:
                seen[j, x] = True
                pairs[n_pairs] = j * n_names + x
                n_pairs += 1
        i += 1
    st[HIGH_WATER] = hw
    st[PAIRS] = n_pairs
    st[ITEMS] = items
    st[EVENTS] += taken
    st[APPLIED] += taken
    st[FIRST] = first
    st[LAST] = last
    st[LAST_LINE] = last_line
    st[APPLIED_T] = applied_t
    st[WHY] = why
    return i


@functools.cache
def bulk_kernels() -> ModuleType | None:
    """:mod:`evoarena.feeds.bulk_kernels`, imported and compiled (or loaded from numba's disk
    cache) on first use; ``None``, with a warning logged once, where numba is unavailable — the
    plain :func:`scan_rows` and :func:`~evoarena.engine.ladders.apply_rows` then run instead,
    with the same results."""
    return load_kernels("evoarena.feeds.bulk_kernels", "bulk_kernels_unavailable")


def apply_rows_loop() -> Callable[..., int]:
    """:func:`~evoarena.engine.ladders.apply_rows`, compiled where numba is available."""
    kernels = bulk_kernels()
    return ladders.apply_rows if kernels is None else kernels.apply_rows


def scan_rows_loop() -> Callable[..., int]:
    """:func:`scan_rows`, compiled where numba is available."""
    kernels = bulk_kernels()
    return scan_rows if kernels is None else kernels.scan_rows
