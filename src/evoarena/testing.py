"""Test tooling shipped with the package (never used by the service itself).

:func:`main_killed_at_rename` runs the CLI with ``os.replace`` instrumented, for crash tests
over real subprocesses (``tests/integration/test_crash_resume.py``,
``benchmarks/crash_matrix.py``): ``KILL_AT=N`` with ``KILL_PHASE=before|after`` SIGKILLs the
process just before or just after its N-th rename (every state write ends in one), and
``COUNT_FILE``, when set, receives the number of renames at a normal exit. Run it as
``python -c KILL_AT_RENAME ARGS...``.

:class:`TickingSink` drives the fused and store read loops (and the general path) with a tick
every ``tick_ms``, recording which markets each tick saw dirty; :func:`read_through` reads a
recording into a fresh book one way and :func:`book_summary` says what the ways must agree on:
the read paths compared tick by tick (``tests/unit/feeds/test_store_ladders.py``,
``tests/unit/feeds/test_hotscan.py``, ``benchmarks/fuzz_paths.py``).
"""

from __future__ import annotations

import atexit
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evoarena.engine.book import MarketBook
    from evoarena.feeds.replay import ReplayStep

KILL_AT_RENAME = (
    "import sys; from evoarena.testing import kill_at_rename; kill_at_rename(); "
    "from evoarena.cli import main; sys.exit(main(sys.argv[1:]))"
)
"""The ``python -c`` program: the CLI on ``sys.argv[1:]`` with :func:`kill_at_rename`."""


def kill_at_rename() -> None:
    """Instrument ``os.replace`` as the environment says (see the module docstring)."""
    target = int(os.environ.get("KILL_AT", "0"))
    phase = os.environ.get("KILL_PHASE", "before")
    count = 0
    real_replace = os.replace

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal count
        count += 1
        if count == target and phase == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst, *args, **kwargs)
        if count == target and phase == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace
    count_file = os.environ.get("COUNT_FILE")
    if count_file:
        atexit.register(lambda: Path(count_file).write_text(str(count)))


class TickingSink:
    """A sink for the fused and store loops, and the general path's driver: ticks every
    ``tick_ms`` from ``start_ms``; each tick records ``(time, dirty tickers sorted)`` in
    :attr:`ticks` and clears the book's dirty set, as a replay's view does. Every general step's
    events go into the book."""

    def __init__(self, book: MarketBook, *, start_ms: int, tick_ms: int) -> None:
        self.book = book
        self.gate = start_ms
        self.tick_ms = tick_ms
        self.ticks: list[tuple[int, list[str]]] = []
        self.items = self.events = self.applied = self.last_line = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.applied_t: int | None = None

    def at_gate(self, t_ms: int) -> bool:
        """Run every tick due by ``t_ms``; never stops the loop."""
        while self.gate <= t_ms:
            self.ticks.append((self.gate, sorted(m.ticker for m in self.book.dirty)))
            self.book.dirty.clear()
            self.gate += self.tick_ms
        return False

    def general(self, step: ReplayStep) -> bool:
        """Tick if due, then apply the step's events."""
        if step.t_ms >= self.gate:
            self.at_gate(step.t_ms)
        for ev in step.events:
            self.book.apply(ev)
        self.items += 1
        self.events += len(step.events)
        return False

    def chunk_done(self, t_ms: int) -> None:
        """Nothing to do between chunks."""


READ_PATHS = ("general", "fused", "orjson", "store")
"""How :func:`read_through` reads: the general path, the fused loop (its numba scanner on, and
off: ``orjson``), the compiled store."""


def book_summary(book: MarketBook) -> dict[str, Any]:
    """What the read paths must agree on about a book: every market's ladders (in order), best
    bids, flags, lifecycle, title, prices and activity, and the book's counters."""
    return {
        "markets": {
            t: (
                list(m.yes_bids.items()),
                list(m.no_bids.items()),
                m.best_yes_bid,
                m.best_no_bid,
                m.has_book,
                m.stale,
                m.status,
                m.open_ms,
                m.close_ms,
                m.title,
                m.event_ticker,
                m.result,
                m.settlement_value,
                m.open_interest,
                m.volume_24h,
                m.last_price,
            )
            for t, m in book.markets.items()
        },
        "counters": book.counters,
    }


def read_through(
    path: Path,
    how: str,
    *,
    start_ms: int,
    tick_ms: int,
    skip_bad: bool = False,
    max_time_jump_ms: int | None = None,
) -> dict[str, Any]:
    """Read ``path`` into a fresh book one of the :data:`READ_PATHS` ways, ticking every
    ``tick_ms`` (a :class:`TickingSink`); returns the :func:`book_summary`, the decoder's
    counters, the bad lines, every tick's dirty markets, the items and events the sink saw and
    the markets left dirty. The store must have been compiled for ``"store"``.
    ``max_time_jump_ms``: the reader's limit on a jump forward in time (its default if None)."""
    # Imported here: the crash tests' subprocesses import this module before the CLI.
    from evoarena.engine.book import MarketBook
    from evoarena.feeds.fused import FusedIngest
    from evoarena.feeds.replay import ReplaySource
    from evoarena.feeds.store import StoreIngest, store_path

    if how not in READ_PATHS:
        msg = f"unknown read path {how!r}; expected one of {', '.join(READ_PATHS)}"
        raise ValueError(msg)
    book = MarketBook(10)
    sink = TickingSink(book, start_ms=start_ms, tick_ms=tick_ms)
    source = (
        ReplaySource(path, skip_bad=skip_bad)
        if max_time_jump_ms is None
        else ReplaySource(path, skip_bad=skip_bad, max_time_jump_ms=max_time_jump_ms)
    )
    with source:
        if how == "general":
            for step in source:
                sink.general(step)
        elif how == "store":
            with StoreIngest(source, book, store_path(path)) as store:
                store.run(sink)
        else:
            with FusedIngest(source, book) as fused:
                fused.use_scanner = how == "fused"
                fused.run(sink)
        return {
            **book_summary(book),
            "decoder": source.decoder.counters.as_dict(),
            "bad_lines": source.reader.bad_lines,
            "ticks": sink.ticks,
            "sink": (sink.items, sink.events),
            "dirty": sorted(m.ticker for m in book.dirty),
        }
