"""Test tooling shipped with the package (never used by the service itself).

:func:`main_killed_at_rename` runs the CLI with ``os.replace`` instrumented, for crash tests
over real subprocesses (``tests/integration/test_crash_resume.py``,
``benchmarks/crash_matrix.py``): ``KILL_AT=N`` with ``KILL_PHASE=before|after`` SIGKILLs the
process just before or just after its N-th rename (every state write ends in one), and
``COUNT_FILE``, when set, receives the number of renames at a normal exit. Run it as
``python -c KILL_AT_RENAME ARGS...``.
"""

from __future__ import annotations

import atexit
import os
import signal
from pathlib import Path
from typing import Any

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
