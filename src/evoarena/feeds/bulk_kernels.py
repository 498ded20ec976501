"""The replay ingest's bulk loops, compiled by numba: :func:`evoarena.feeds.bulk.scan_rows` and
:func:`evoarena.engine.ladders.apply_rows` (loaded through :func:`evoarena.feeds.bulk.bulk_kernels`,
which falls back to the plain functions). Apart from the tick's kernels, so that reading a
recording without ticking (``evoarena inspect``) loads only these two."""

from __future__ import annotations

import numpy as np
from numba import njit

from evoarena.engine import ladders
from evoarena.feeds import bulk

scan_rows = njit(cache=True, nogil=True)(bulk.scan_rows)
""":func:`evoarena.feeds.bulk.scan_rows`, compiled."""
apply_rows = njit(cache=True, nogil=True)(ladders.apply_rows)
""":func:`evoarena.engine.ladders.apply_rows`, compiled."""


def warm_up() -> None:
    """Compile both loops (or load them from the disk cache) with the argument types the fused
    and store loops pass."""
    ints = np.zeros(2, dtype=np.int64)
    st = np.full(bulk.STATE_LEN, bulk.NONE, dtype=np.int64)
    seen = np.zeros((1, 2), dtype=np.bool_)
    scan_rows(
        ints, ints, ints, ints, ints, ints, 0, 2, 0, 1, 1, ints.copy(), seen, ints.copy(), st, 0
    )
    c = ladders.MarketColumns(capacity=2)
    tally = np.zeros(5, dtype=np.int64)
    c.apply(apply_rows, (ints, ints - 1, ints, ints, ints, ints), 0, 2, tally, lambda x: 0)
