"""Kinds of the ``mark`` lines the live service records (see :mod:`evoarena.feeds.recording`).

Their own module so a replay can read them without importing the live stack.
"""

MARK_START = "start"
"""The service started (or resumed) and began a generation, at ``now_ms``."""
MARK_FIRE = "fire"
"""The service fired its schedule (ticks, settlement polls) for ``now_ms``."""
MARK_STOP = "stop"
"""The service stopped."""
