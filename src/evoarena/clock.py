"""Injected time.

Everything that needs "now" receives a :class:`Clock`. Live code uses :class:`SystemClock`;
replay and tests use :class:`VirtualClock`, which never sleeps for real. Core (``engine``,
``evolution``) code does not hold a clock at all: it is handed ``now_ms`` as an argument.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

import anyio


def ms_to_datetime(ms: int) -> datetime:
    """Convert milliseconds since the epoch to an aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(dt: datetime) -> int:
    """Convert an aware datetime to milliseconds since the epoch (naive datetimes are refused)."""
    if dt.tzinfo is None:
        msg = "naive datetime refused; evoarena only uses timezone-aware datetimes"
        raise ValueError(msg)
    return int(dt.timestamp() * 1000)


def iso_ms(ms: int) -> str:
    """ISO-8601 UTC text for a millisecond timestamp (what state files carry)."""
    return ms_to_datetime(ms).isoformat()


class Clock(Protocol):
    """**Protocol:** a source of time."""

    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for rates and timeouts)."""
        ...

    async def sleep(self, secs: float) -> None:
        """Wait ``secs`` seconds of this clock's time."""
        ...


class SystemClock:
    """The real clock."""

    def now_ms(self) -> int:
        """Wall-clock milliseconds since the epoch."""
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    async def sleep(self, secs: float) -> None:
        """Sleep for real."""
        await anyio.sleep(max(0.0, secs))


class VirtualClock:
    """A clock that only moves when told to (replay) or when slept on (tests).

    ``sleep`` advances the virtual time by the requested amount and yields once, so retry loops
    and backoff run instantly and deterministically.
    """

    def __init__(self, start_ms: int = 0) -> None:
        self._now_ms = start_ms
        self.slept_secs: list[float] = []

    def now_ms(self) -> int:
        """Current virtual time."""
        return self._now_ms

    def monotonic(self) -> float:
        """Virtual time in seconds."""
        return self._now_ms / 1000

    def set_ms(self, ms: int) -> None:
        """Move time forward to ``ms`` (never backwards)."""
        self._now_ms = max(self._now_ms, ms)

    def advance(self, secs: float) -> None:
        """Move time forward by ``secs``."""
        self._now_ms += round(secs * 1000)

    async def sleep(self, secs: float) -> None:
        """Advance virtual time by ``secs`` and let other tasks run."""
        self.slept_secs.append(secs)
        self.advance(max(0.0, secs))
        await anyio.lowlevel.checkpoint()


class ScaledClock:
    """Wall time run ``speed`` times faster, from the moment of creation.

    For end-to-end runs against a fake exchange on loopback (a 30 s tick every 0.1 s of wall
    time at ``speed=300``). Never point it at Kalshi: request signatures carry this clock's time.
    """

    def __init__(self, speed: float, start_ms: int | None = None) -> None:
        if speed <= 0:
            msg = f"clock speed must be positive, got {speed}"
            raise ValueError(msg)
        self.speed = speed
        self._origin_ms = time.time_ns() // 1_000_000 if start_ms is None else start_ms
        self._origin_mono = time.monotonic()

    def now_ms(self) -> int:
        """The scaled time."""
        return self._origin_ms + int((time.monotonic() - self._origin_mono) * self.speed * 1000)

    def monotonic(self) -> float:
        """Scaled seconds since creation."""
        return (time.monotonic() - self._origin_mono) * self.speed

    async def sleep(self, secs: float) -> None:
        """Sleep ``secs`` of scaled time (``secs / speed`` of wall time)."""
        await anyio.sleep(max(0.0, secs) / self.speed)
