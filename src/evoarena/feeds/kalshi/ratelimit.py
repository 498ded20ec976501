"""Client-side rate limiting and retry backoff, both sleeping through the injected clock.

* :class:`TokenBucket` keeps our REST reads under Kalshi's per-account read budget, so 429s are
  the exception rather than the way we learn the limit.
* :class:`JitteredBackoff` is the tenacity wait strategy used for REST retries and WebSocket
  reconnects: exponential growth from ``initial`` capped at ``maximum``, with "equal jitter" (the
  delay is drawn uniformly from the upper half of the exponential step), and a server-supplied
  ``Retry-After`` honoured when an error carries one.
"""

from __future__ import annotations

import random

import anyio
from tenacity import RetryCallState
from tenacity.wait import wait_base

from evoarena.clock import Clock
from evoarena.errors import RetryableFeedError


class TransientError(RetryableFeedError):
    """A retryable failure; ``retry_after_secs`` is the server's requested pause, if it gave one."""

    def __init__(self, reason: str, retry_after_secs: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_secs = retry_after_secs


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Delay before retry number ``attempt`` (1-based): in ``[step/2, step]``.

    ``step = min(maximum, initial * 2 ** (attempt - 1))``.
    """
    step = min(maximum, initial * 2.0 ** min(max(0, attempt - 1), 60))
    return step / 2 + rng.uniform(0, step / 2)


class JitteredBackoff(wait_base):
    """tenacity wait: :func:`backoff_delay`, or the error's ``Retry-After`` (capped at maximum)."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        self.rng = rng if rng is not None else random.Random()

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(exc, TransientError) and exc.retry_after_secs is not None:
            return float(min(max(0.0, exc.retry_after_secs), self.maximum))
        return backoff_delay(retry_state.attempt_number, self.initial, self.maximum, self.rng)


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, holding at most ``burst``; starts full.

    :meth:`acquire` waits (through ``clock.sleep``) until a token is available. Waiters are
    served one at a time, in arrival order.
    """

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        if rate <= 0 or burst < 1:
            msg = "rate must be > 0 and burst >= 1"
            raise ValueError(msg)
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.monotonic()
        self._lock: anyio.Lock | None = None
        self.waited_secs = 0.0
        """Total time spent waiting for tokens (for stats)."""

    def _refill(self) -> None:
        now = self._clock.monotonic()
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)

    async def acquire(self) -> None:
        """Take one token, waiting for the refill if the bucket is empty."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            self._refill()
            if self._tokens < 1.0:
                wait = (1.0 - self._tokens) / self.rate
                self.waited_secs += wait
                await self._clock.sleep(wait)
                self._refill()
            # After the computed wait the token is ours even if the clock's resolution left the
            # refill a hair short; a small negative balance carries into the next wait.
            self._tokens -= 1.0
