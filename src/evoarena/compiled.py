"""Loading numba-compiled kernel modules, with the numpy code as the fallback.

A kernel module (``evoarena.engine.kernels``, ``evoarena.evolution.kernels``) imports numba and
defines ``warm_up()``, which compiles its kernels (or loads them from numba's disk cache) on
tiny inputs. :func:`load_kernels` imports it and warms it up; where either fails — numba
missing, unable to compile or to cache — it logs one warning and returns ``None``, and the
caller keeps to its numpy code, with the same results, slower.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import structlog

log = structlog.get_logger(__name__)


def load_kernels(module: str, event: str) -> ModuleType | None:
    """``module`` imported and warmed up, or ``None`` after logging ``event`` with the error."""
    try:
        kernels = importlib.import_module(module)
        kernels.warm_up()
    except Exception as e:  # whatever fails (import, compile, cache), the numpy code stands in
        log.warning(event, error=f"{type(e).__name__}: {e}")
        return None
    return kernels
