"""Client-side token bucket and jittered backoff, all on an injected virtual clock."""

from __future__ import annotations

import random

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from evoarena.clock import VirtualClock
from evoarena.feeds.kalshi.ratelimit import (
    JitteredBackoff,
    TokenBucket,
    TransientError,
    backoff_delay,
)

EPS = 1e-6


async def _acquire_times(
    bucket: TokenBucket, clock: VirtualClock, gaps: list[float]
) -> list[float]:
    """Acquire once after each gap (idle time); return the instant each token was granted."""
    times = []
    for gap in gaps:
        clock.advance(gap)
        await bucket.acquire()
        times.append(clock.monotonic())
    return times


def _within_budget(times: list[float], rate: float, burst: int) -> bool:
    """No window [t_i, t_j] holds more grants than burst + rate × its length."""
    return all(
        j - i + 1 <= burst + rate * (times[j] - times[i]) + EPS
        for i in range(len(times))
        for j in range(i, len(times))
    )


@pytest.mark.anyio
async def test_bucket_allows_burst_then_paces() -> None:
    """A full bucket grants ``burst`` tokens at once, then one per 1/rate seconds."""
    clock = VirtualClock(0)
    bucket = TokenBucket(rate=10.0, burst=5, clock=clock)
    times = await _acquire_times(bucket, clock, [0.0] * 8)
    assert times[:5] == [0.0] * 5
    assert times[5:] == pytest.approx([0.1, 0.2, 0.3], abs=0.002)
    assert bucket.waited_secs == pytest.approx(0.3, abs=0.002)


@pytest.mark.anyio
async def test_bucket_refills_only_up_to_burst() -> None:
    """After a long idle spell the bucket holds ``burst`` tokens, not more."""
    clock = VirtualClock(0)
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    await _acquire_times(bucket, clock, [0.0] * 3)
    clock.advance(3600)
    start = clock.monotonic()
    times = await _acquire_times(bucket, clock, [0.0] * 4)
    assert [t - start for t in times] == pytest.approx([0, 0, 0, 0.5], abs=0.002)


@settings(max_examples=40, deadline=None)
@given(
    rate=st.sampled_from([0.5, 2.0, 10.0, 20.0]),
    burst=st.integers(min_value=1, max_value=10),
    gaps=st.lists(st.floats(min_value=0, max_value=2, allow_nan=False), min_size=1, max_size=40),
)
def test_bucket_never_exceeds_budget(rate: float, burst: int, gaps: list[float]) -> None:
    """Whatever the request pattern, grants stay within burst + rate × elapsed."""

    async def scenario() -> list[float]:
        clock = VirtualClock(1_000)
        return await _acquire_times(TokenBucket(rate, burst, clock), clock, gaps)

    times = anyio.run(scenario)
    assert _within_budget(times, rate, burst)


def test_bucket_rejects_nonsense() -> None:
    """A bucket needs a positive rate and room for one token."""
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0, 1, VirtualClock())
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(1, 0, VirtualClock())


@pytest.mark.parametrize(
    ("attempt", "step"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (7, 30.0), (50, 30.0)],
)
def test_backoff_delay_grows_exponentially_with_jitter(attempt: int, step: float) -> None:
    """Retry n waits between step/2 and step, step = min(max, initial × 2^(n−1))."""
    rng = random.Random(attempt)
    delays = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(200)]
    assert all(step / 2 <= d <= step for d in delays)
    assert max(delays) - min(delays) > step / 10  # it really is jittered


def test_backoff_with_zero_initial_delay_is_zero() -> None:
    """Tests set the initial delay to 0: every wait is then 0."""
    rng = random.Random(0)
    assert {backoff_delay(n, 0.0, 30.0, rng) for n in range(1, 20)} == {0.0}


async def _retry_through(
    clock: VirtualClock, failures: list[TransientError], wait: JitteredBackoff
) -> int:
    calls = 0

    async def flaky() -> int:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        return calls

    retrying = AsyncRetrying(
        stop=stop_after_attempt(10),
        wait=wait,
        retry=retry_if_exception_type(TransientError),
        sleep=clock.sleep,
        reraise=True,
    )
    return await retrying(flaky)


@pytest.mark.anyio
async def test_retry_after_is_honoured_and_capped() -> None:
    """A server's Retry-After replaces the backoff, but never beyond the maximum."""
    clock = VirtualClock(0)
    wait = JitteredBackoff(0.5, 10.0, random.Random(1))
    failures = [TransientError("429", retry_after_secs=3.0), TransientError("429", 600.0)]
    calls = await _retry_through(clock, failures, wait)
    assert calls == 3
    assert clock.slept_secs == [3.0, 10.0]


@pytest.mark.anyio
async def test_backoff_sleeps_through_the_clock() -> None:
    """Without Retry-After the waits follow the jittered exponential schedule, on the clock."""
    clock = VirtualClock(0)
    wait = JitteredBackoff(1.0, 60.0, random.Random(7))
    calls = await _retry_through(clock, [TransientError("503") for _ in range(4)], wait)
    assert calls == 5
    for n, slept in enumerate(clock.slept_secs, start=1):
        step = min(60.0, 2.0 ** (n - 1))
        assert step / 2 <= slept <= step
    assert clock.monotonic() == pytest.approx(sum(clock.slept_secs), abs=0.01)
