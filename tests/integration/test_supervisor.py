"""The supervisor's task group with a scripted in-process feed and a fast clock."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import anyio
import anyio.abc
import pytest
import structlog.testing

from evoarena.clock import ScaledClock
from evoarena.errors import AuthError, FatalFeedError
from evoarena.evolution import persistence
from evoarena.feeds.events import (
    PRICE_ONE,
    BookDelta,
    BookSnapshot,
    EventInfo,
    MarketDetermined,
    MarketEvent,
    MarketInfo,
    MarketStatus,
    Side,
)
from evoarena.feeds.recording import RecordingReader, RecordingWriter
from evoarena.settings import Settings, load_settings
from evoarena.supervisor import EventSink, Supervisor

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

SPEED = 20_000.0  # 30 s ticks every 1.5 ms of wall time
CENT = 10_000
N_MARKETS = 24


def _settings(tmp_path: Path) -> Settings:
    return load_settings(
        None,
        {
            "evolution": {
                "population_size": 30,
                "elite_count": 1,
                "tournament_size": 3,
                "immigrant_count": 1,
                "min_settled_trades": 1,
                "seed": 3,
            },
            "trading": {
                "generation_duration_secs": 3600,
                "tick_interval_secs": 30,
                "settlement_wait_secs": 32_400,
                "settlement_poll_secs": 60,
                "checkpoint_every_ticks": 5,
                "settlement_check_every_ticks": 4,
            },
            "state": {"dir": str(tmp_path / "state")},
            "kalshi": {"heartbeat_log_secs": 1800},
            "record": {"flush_every_secs": 1.0},
        },
    )


class ScriptedFeed:
    """Liquid markets that move every 10 s and close every 20 minutes from 30 minutes in."""

    def __init__(
        self,
        clock: ScaledClock,
        *,
        fail_with: BaseException | None = None,
        ready: bool = True,
        recorder: RecordingWriter | None = None,
    ) -> None:
        self.clock = clock
        self.fail_with = fail_with
        self.ready = ready
        self.recorder = recorder
        self.polls: list[list[str]] = []
        self.close_ms: dict[str, int] = {}
        self.frames = 0
        self._sink: EventSink | None = None

    def _deliver(self, events: list[MarketEvent]) -> None:
        assert self._sink is not None
        if self.recorder is not None:
            self.recorder.write_ws(self.clock.now_ms(), {"type": "scripted", "n": len(events)})
        self.frames += 1
        self._sink(events)

    async def run(
        self,
        sink: EventSink,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        self._sink = sink
        now = self.clock.now_ms()
        for i in range(N_MARKETS):
            ticker = f"MKT-{i}"
            self.close_ms[ticker] = now + 1_800_000 + i * 1_200_000
            category = ("Politics", "Economics")[i % 2]
            self._deliver([EventInfo(f"EV-{i}", None, category, None, None, now)])
            self._deliver(
                [
                    MarketInfo(
                        ticker,
                        f"EV-{i}",
                        MarketStatus.ACTIVE,
                        now - 60_000,
                        self.close_ms[ticker],
                        ticker,
                        None,
                        None,
                        800_000,
                        400_000,
                        None,
                        None,
                        now,
                    )
                ]
            )
            mid = 15 + 3 * i
            yes = tuple((p * CENT, 30_000) for p in range(mid - 6, mid - 1))
            no = tuple((p * CENT, 30_000) for p in range(100 - mid - 6, 100 - mid - 1))
            self._deliver([BookSnapshot(ticker, yes, no, now)])
        if not self.ready:
            await anyio.sleep_forever()
        task_status.started()
        step = 0
        while True:
            await self.clock.sleep(10)
            step += 1
            if self.fail_with is not None and step == 20:
                raise self.fail_with
            i = step % N_MARKETS
            mid = 15 + 3 * i
            side = Side.YES if step % 2 else Side.NO
            price = (mid - 2 if side is Side.YES else 100 - mid - 2) * CENT
            delta = 500 if step % 3 else -500
            self._deliver([BookDelta(f"MKT-{i}", side, price, delta, self.clock.now_ms())])

    async def poll_settlement(self, tickers: list[str]) -> None:
        self.polls.append(tickers)
        now = self.clock.now_ms()
        for t in tickers:
            if self.close_ms[t] <= now:
                result = Side.YES if int(t.split("-")[1]) % 2 else Side.NO
                value = PRICE_ONE if result is Side.YES else 0
                self._deliver([MarketDetermined(t, result, value, now)])
        await anyio.lowlevel.checkpoint()

    def stats(self) -> Mapping[str, int | float]:
        return {"frames_total": self.frames}


async def test_one_generation_end_to_end(tmp_path: Path) -> None:
    """Ready → ticks → settlement polls → generation saved → exit 0 after max_generations."""
    s = _settings(tmp_path)
    clock = ScaledClock(SPEED)
    rec = RecordingWriter(tmp_path / "rec.jsonl", "scripted", clock.now_ms(), marks=True)
    feed = ScriptedFeed(clock, recorder=rec)
    sup = Supervisor(s, feed, clock, recorder=rec, max_generations=1, handle_signals=False)
    outcome = await sup.run()
    assert outcome.exit_code == 0
    assert outcome.reason.startswith("completed 1 generation")
    state = Path(s.state.dir)
    assert persistence.list_generations(state) == [0]
    gen0 = persistence.load_generation(0, state_dir=state)
    assert gen0 is not None
    assert len(gen0["genomes"]) == 30
    assert gen0["stats"]["total_trades"] > 0
    assert feed.polls, "held markets past their close were polled for settlement"
    assert gen0["stats"]["settled_trades"] > 0
    with RecordingReader(tmp_path / "rec.jsonl") as reader:
        marks = [i.payload for i in reader if i.kind == "mark"]
    kinds = [m["kind"] for m in marks]
    assert kinds[0] == "start"
    assert kinds[-1] == "stop"
    fires = [m["now_ms"] for m in marks if m["kind"] == "fire"]
    assert len(fires) >= 120  # 120 ticks, then polls
    assert fires == sorted(fires)


async def test_credentials_refused_exits_2_after_saving(tmp_path: Path) -> None:
    """An AuthError mid-run stops with exit code 2 and a checkpoint on disk."""
    s = _settings(tmp_path)
    clock = ScaledClock(SPEED)
    feed = ScriptedFeed(clock, fail_with=AuthError("401: check KALSHI_API_KEY_ID"))
    outcome = await Supervisor(s, feed, clock, handle_signals=False).run()
    assert outcome.exit_code == 2
    assert "KALSHI_API_KEY_ID" in outcome.message
    assert persistence.load_checkpoint(0, state_dir=Path(s.state.dir)) is not None


async def test_feed_failure_exits_1_and_restart_resumes(tmp_path: Path) -> None:
    """A fatal feed error exits 1 with a final checkpoint; a restart resumes that generation."""
    s = _settings(tmp_path)
    clock = ScaledClock(SPEED)
    feed = ScriptedFeed(clock, fail_with=FatalFeedError("kalshi went away"))
    first = Supervisor(s, feed, clock, handle_signals=False)
    outcome = await first.run()
    assert outcome.exit_code == 1
    assert outcome.message == "kalshi went away"
    assert first.runner.run is not None
    ticks_done = first.runner.run.tick_count
    assert ticks_done > 0

    clock2 = ScaledClock(SPEED, start_ms=clock.now_ms())
    second = Supervisor(s, ScriptedFeed(clock2), clock2, max_generations=1, handle_signals=False)
    outcome2 = await second.run()
    assert outcome2.exit_code == 0
    assert second.runner.resumed_checkpoint
    assert persistence.list_generations(Path(s.state.dir)) == [0]


async def test_a_crash_in_a_task_exits_1(tmp_path: Path) -> None:
    """An unexpected exception escaping the feed is reported, not raised."""
    s = _settings(tmp_path)
    clock = ScaledClock(SPEED)
    feed = ScriptedFeed(clock, fail_with=RuntimeError("boom"))
    outcome = await Supervisor(s, feed, clock, handle_signals=False).run()
    assert outcome.exit_code == 1
    assert outcome.message == "RuntimeError: boom"


async def test_no_book_within_the_startup_wait_is_a_clear_error(tmp_path: Path) -> None:
    """A feed that never becomes ready fails after the bounded wait with a clear message."""
    s = _settings(tmp_path)
    clock = ScaledClock(SPEED)
    feed = ScriptedFeed(clock, ready=False)
    sup = Supervisor(s, feed, clock, startup_timeout_secs=0.05, handle_signals=False)
    outcome = await sup.run()
    assert outcome.exit_code == 1
    assert "no market data after 0.05 s" in outcome.message
    assert not sup.started


async def test_recording_rotates_by_size_into_numbered_segments(tmp_path: Path) -> None:
    """Past rotate_max_bytes the recorder continues in day.0001.jsonl, day.0002.jsonl, ..."""
    base = _settings(tmp_path)
    s = base.model_copy(
        update={"record": base.record.model_copy(update={"rotate_max_bytes": 4000})}
    )
    clock = ScaledClock(SPEED)
    rec = RecordingWriter(tmp_path / "day.jsonl", "scripted", clock.now_ms(), marks=True)
    feed = ScriptedFeed(clock, recorder=rec)
    outcome = await Supervisor(
        s, feed, clock, recorder=rec, max_generations=1, handle_signals=False
    ).run()
    assert outcome.exit_code == 0
    kinds = _segment_marks(tmp_path)
    assert kinds[0] == "start"
    assert kinds[-1] == "stop"
    assert kinds.count("start") == 1


def _segment_marks(tmp_path: Path) -> list[str]:
    """Check the rotated segments' headers; return every mark kind in stream order."""
    segments = sorted(tmp_path.glob("day.0*.jsonl"))
    assert segments[0].name == "day.0001.jsonl"
    assert len(segments) >= 2
    kinds: list[str] = []
    for n, path in enumerate([tmp_path / "day.jsonl", *segments]):
        with RecordingReader(path) as reader:
            assert reader.header.get("segment", 0) == n
            kinds += [i.payload["kind"] for i in reader if i.kind == "mark"]
    return kinds


class FailingDisk(RecordingWriter):
    """A recording whose disk fills up at the first flush."""

    def flush(self) -> None:
        raise OSError(28, "No space left on device")


async def test_a_failing_recording_stops_recording_not_trading(tmp_path: Path) -> None:
    """A disk error while recording is logged; the generation still completes, exit 0."""
    s = _settings(tmp_path)
    clock = ScaledClock(SPEED)
    rec = FailingDisk(tmp_path / "rec.jsonl", "scripted", clock.now_ms(), marks=True)
    feed = ScriptedFeed(clock, recorder=rec)
    sup = Supervisor(s, feed, clock, recorder=rec, max_generations=1, handle_signals=False)
    with structlog.testing.capture_logs() as logs:
        outcome = await sup.run()
    assert outcome.exit_code == 0
    assert rec.disabled
    failed = [e for e in logs if e["event"] == "recording_failed"]
    assert len(failed) == 1
    assert "No space left" in failed[0]["error"]
    assert persistence.list_generations(Path(s.state.dir)) == [0]
