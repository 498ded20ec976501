"""Bounds on hostile input, checked where lines and frames enter (recording reader, decoder).

Every recording line and every frame ends as a parsed item, a counted malformed frame or a
``file:line: reason`` bad line — never a traceback, a hang or unbounded memory:

* a recording line longer than :data:`MAX_LINE_BYTES` is a bad line (read in bounded chunks);
* ``t_ms`` must lie between 1970 and the year 9999 (:data:`MAX_T_MS`), and may not jump forward
  more than ``record.max_time_jump_secs`` past the previous line's (a far-future time would make a
  replay run generation after generation over nothing);
* fixed-point counts and dollar amounts beyond :data:`MAX_COUNT` / :data:`MAX_MICROS` are refused
  (per frame: the market's book is distrusted, other markets are untouched), so no later tick can
  overflow;
* anything a parser raises by accident — including ``RecursionError`` from formatting a value
  nested a thousand deep — is a counted malformed frame (:func:`safe_repr` keeps messages short).
"""

from __future__ import annotations

import reprlib

MAX_LINE_BYTES = 64 << 20
"""A recording line (one frame or REST response) above 64 MiB is refused."""
MAX_T_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the last instant ISO-8601 and ``datetime`` can show."""
MAX_COUNT = 10**13
"""Centi-contracts: 100 billion contracts, far beyond any Kalshi market."""
MAX_MICROS = 10**15
"""Micro-dollars: one billion dollars."""
DEFAULT_MAX_TIME_JUMP_MS = 7 * 86_400_000

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlong = 40


def safe_repr(value: object) -> str:
    """A short ``repr`` that never recurses deeply nor grows with the value."""
    try:
        return _REPR.repr(value)
    except (RecursionError, ValueError):
        return f"<{type(value).__name__}>"


def check_time(t_ms: int, previous_ms: int | None, max_jump_ms: int) -> str | None:
    """Why ``t_ms`` is refused (``None``: it is fine)."""
    if not 0 <= t_ms <= MAX_T_MS:
        return f"'t_ms' {safe_repr(t_ms)} is outside 1970..9999"
    if previous_ms is not None and t_ms - previous_ms > max_jump_ms:
        return (
            f"'t_ms' jumps {(t_ms - previous_ms) / 1000:,.0f} s past the previous line "
            f"(more than record.max_time_jump_secs = {max_jump_ms // 1000:,})"
        )
    return None
