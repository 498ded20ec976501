"""Test tooling shipped with the package (never used by the service itself).

:func:`main_killed_at_rename` runs the CLI with ``os.replace`` instrumented, for crash tests
over real subprocesses (``tests/integration/test_crash_resume.py``,
``benchmarks/crash_matrix.py``): ``KILL_AT=N`` with ``KILL_PHASE=before|after`` SIGKILLs the
process just before or just after its N-th rename (every state write ends in one), and
``COUNT_FILE``, when set, receives the number of renames at a normal exit. Run it as
``python -c KILL_AT_RENAME ARGS...``.

:class:`TickingSink` drives the fused and store read loops (and the general path) with a tick
every ``tick_ms``, recording which markets each tick saw dirty: the three read paths compared
tick by tick (``tests/unit/feeds/test_store_ladders.py``, ``benchmarks/fuzz_paths.py``).
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
