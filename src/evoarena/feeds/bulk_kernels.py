""":func:`evoarena.feeds.bulk.scan_rows`, compiled by numba (loaded through
:func:`evoarena.feeds.bulk.bulk_kernels`, which falls back to the plain function)."""

from __future__ import annotations

import numpy as np
from numba import njit

from evoarena.feeds import bulk

scan_rows = njit(cache=True, nogil=True)(bulk.scan_rows)
""":func:`evoarena.feeds.bulk.scan_rows`, compiled."""


def warm_up() -> None:
    """Compile :func:`scan_rows` (or load it from the disk cache) with the argument types the
    store passes."""
    ints = np.zeros(2, dtype=np.int64)
    st = np.full(bulk.STATE_LEN, bulk.NONE, dtype=np.int64)
    seen = np.zeros((1, 2), dtype=np.bool_)
    scan_rows(ints, ints, ints, ints, ints, ints, 0, 2, 0, 1, 1, ints.copy(), seen, ints.copy(), st)
