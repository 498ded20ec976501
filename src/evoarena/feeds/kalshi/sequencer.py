"""Per-subscription ``seq`` checking: pure bookkeeping, no I/O.

Kalshi numbers the data frames of each subscription (``sid``) with consecutive integers. The
first ``seq`` seen on a sid is accepted as the start; ``last + 1`` applies; anything at or below
``last`` is a stale duplicate to ignore; anything beyond ``last + 1`` is a gap — frames were lost —
after which the count continues from the seq that revealed the gap.

A leap of more than :data:`SUSPICIOUS_LEAP` followed by frames that continue at the old numbers
(one corrupted ``seq``) must not blind the sid: the first such frame is a gap *back* (the books
are resynced once more) and the count continues from it.
"""

from __future__ import annotations

from enum import Enum

SUSPICIOUS_LEAP = 10_000


class Verdict(Enum):
    """What to do with a frame, given its ``seq``."""

    APPLY = "apply"
    STALE = "stale"
    GAP = "gap"


class Sequencer:
    """Tracks the last ``seq`` of every sid."""

    __slots__ = ("_before_leap", "last_gap", "positions")

    def __init__(self) -> None:
        self.positions: dict[int, int] = {}
        """Last accepted seq by sid. A hot loop may apply the in-order case itself
        (``positions.get(sid) == seq - 1`` → ``positions[sid] = seq``); all else goes to
        ``check``."""
        self.last_gap: tuple[int, int, int] | None = None
        """(sid, expected seq, received seq) of the most recent gap."""
        self._before_leap: dict[int, int] = {}

    def check(self, sid: int, seq: int) -> Verdict:
        """Classify ``seq`` on ``sid`` and advance the sid's position unless it is stale."""
        last = self.positions.get(sid)
        if last is None or seq == last + 1:
            self.positions[sid] = seq
            return Verdict.APPLY
        if seq <= last:
            before = self._before_leap.get(sid)
            if before is None or seq <= before:
                return Verdict.STALE
            del self._before_leap[sid]  # the leap was one bad number: follow the old count
            self.positions[sid] = seq
            self.last_gap = (sid, last + 1, seq)
            return Verdict.GAP
        if seq - last > SUSPICIOUS_LEAP:
            self._before_leap[sid] = last
        else:
            self._before_leap.pop(sid, None)
        self.positions[sid] = seq
        self.last_gap = (sid, last + 1, seq)
        return Verdict.GAP

    def last(self, sid: int) -> int | None:
        """The last accepted seq on ``sid`` (``None`` if none yet)."""
        return self.positions.get(sid)

    def forget(self, sid: int) -> None:
        """Drop ``sid`` (unsubscribed, or re-subscribed): its next seq starts afresh."""
        self.positions.pop(sid, None)
        self._before_leap.pop(sid, None)

    def clear(self) -> None:
        """Forget every sid (a new connection numbers its subscriptions anew)."""
        self.positions.clear()
        self._before_leap.clear()
