"""The live service's async shell: one task group around one market book.

Tasks (all in one anyio task group):

* **feed** — :class:`MarketFeed` (Kalshi in production, a fake in tests). It delivers each
  frame's domain events to :meth:`Supervisor.apply` synchronously, right after recording the
  frame, so at every await point the book and the recording agree.
* **scheduler** — sleeps until the runner's next due instant, writes a ``fire`` mark into the
  recording, then lets the (synchronous, deterministic) :class:`EvolutionRunner` tick, checkpoint,
  poll settlement and breed. Replaying the recording fires at the same marks, so it reproduces
  the live run's decisions.
* **settlement poller** — asks the feed about held markets whose close time has passed.
* **heartbeat** — a periodic log line with the service's vital signs.
* **recorder** — flushes the recording at least every ``record.flush_every_secs`` and rotates it
  by size and age.
* **signals** — SIGINT/SIGTERM stop the service: trading stops, the checkpoint is written, exit 0.
  Further SIGINT/SIGTERM during the shutdown are logged and ignored until the final save is done.

A tick that raises is logged and skipped by the runner. A failure that escapes a task stops the
service with a final checkpoint and a non-zero exit code (2 for a credentials problem, which a
restart will not fix; 1 otherwise, so systemd restarts it and the runner resumes from the state
directory).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.abc
import structlog
from anyio.streams.memory import MemoryObjectSendStream

from evoarena.clock import Clock
from evoarena.engine.book import MarketBook, engine_kernels
from evoarena.errors import AuthError, FeedError, StateError, StateWriteError
from evoarena.evolution.genome import Genome
from evoarena.evolution.runner import EvolutionRunner
from evoarena.evolution.strategies import pair_kernels
from evoarena.feeds.events import MarketEvent
from evoarena.feeds.recording import sibling_path
from evoarena.marks import MARK_FIRE, MARK_START, MARK_STOP
from evoarena.observe.live import LiveMonitor
from evoarena.settings import Settings
from evoarena.statedir import SignalInbox

log = structlog.get_logger(__name__)


EventSink = Callable[[list[MarketEvent]], None]


class MarketFeed(Protocol):
    """**Protocol:** a live source of market events."""

    async def run(self, sink: EventSink, *, task_status: anyio.abc.TaskStatus[None] = ...) -> None:
        """Deliver events to ``sink``; call ``task_status.started()`` once books are seeded."""
        ...

    async def poll_settlement(self, tickers: list[str]) -> None:
        """Fetch the outcome of these closed markets (results go through the sink)."""
        ...

    def stats(self) -> Mapping[str, int | float]:
        """Counters for the heartbeat."""
        ...


class Recorder(Protocol):
    """**Protocol:** what the supervisor needs of a recording writer."""

    path: Path
    base_path: Path
    bytes_written: int

    def write_mark(self, t_ms: int, kind: str, **fields: Any) -> None:
        """Record an instant at which the service acted."""
        ...

    def flush(self) -> None:
        """Push buffered lines to the file."""
        ...

    def rotate(self, path: Path, created_ms: int) -> None:
        """Close the current file and continue in ``path``."""
        ...

    def close(self) -> None:
        """Flush and close."""
        ...

    def disable(self) -> None:
        """Stop recording after a write failure."""
        ...


def segment_path(base: Path, index: int) -> Path:
    """The ``index``-th rotated segment of a recording: ``day.jsonl.gz`` → ``day.0001.jsonl.gz``."""
    return base if index == 0 else sibling_path(base, f".{index:04d}")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the service ended."""

    exit_code: int
    reason: str
    message: str = ""


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


class Supervisor:
    """Runs the evolution live until stopped (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        feed: MarketFeed,
        clock: Clock,
        *,
        recorder: Recorder | None = None,
        max_generations: int | None = None,
        startup_timeout_secs: float | None = None,
        handle_signals: bool = True,
        seed_genomes: Sequence[Genome] | None = None,
        evolve: bool = True,
        monitor: LiveMonitor | None = None,
    ) -> None:
        self.settings = settings
        self.feed = feed
        self.clock = clock
        self.recorder = recorder
        self.book = MarketBook(settings.trading.price_history_ticks)
        self.runner = EvolutionRunner(
            settings,
            self.book,
            max_generations=max_generations,
            seed_genomes=seed_genomes,
            evolve=evolve,
        )
        k = settings.kalshi
        self.startup_timeout_secs = (
            startup_timeout_secs
            if startup_timeout_secs is not None
            # discovery with retries, then the feed's own snapshot wait
            else k.ready_timeout_secs + k.request_timeout_secs * (k.max_retries + 1) + 60.0
        )
        self.handle_signals = handle_signals
        self.started = False
        self.stop_reason = ""
        self.events_applied = 0
        self.frames_applied = 0
        self.last_frame_ms: int | None = None
        self.monitor = monitor if monitor is not None else LiveMonitor(settings, clock)
        self._segment = 0
        self._segment_started_ms = 0
        self._poll_send: MemoryObjectSendStream[tuple[str, ...]] | None = None

    # -- the sink -------------------------------------------------------------------------------

    def apply(self, events: list[MarketEvent]) -> None:
        """Apply one frame's events to the book (the feed calls this synchronously)."""
        book_apply = self.book.apply
        for ev in events:
            book_apply(ev)
        self.events_applied += len(events)
        self.frames_applied += 1
        self.last_frame_ms = self.clock.now_ms()

    # -- main -----------------------------------------------------------------------------------

    async def run(self) -> Outcome:
        """Run until a signal, ``max_generations``, or a failure; always saves before returning."""
        outcome: Outcome | None = None
        inbox = SignalInbox("service shutdown").open() if self.handle_signals else None
        # Compile (or load) the tick's numba kernels before the feed starts, not at the first
        # tick with frames waiting (a first start after an install compiles for a few seconds).
        log.info(
            "tick_kernels",
            pairs=pair_kernels() is not None,
            book=engine_kernels() is not None,
        )
        try:
            async with anyio.create_task_group() as tg:
                if inbox is not None:
                    tg.start_soon(self._signals, inbox, tg.cancel_scope)
                if self.recorder is not None:
                    self._segment_started_ms = self.clock.now_ms()
                    tg.start_soon(self._recorder_task, self.recorder)
                await self._start_feed(tg)
                now = self.clock.now_ms()
                runner = self.runner
                runner.start(now, resume_checkpoint=True)
                self.started = True
                if self.recorder is not None:  # no await since start: the book is unchanged
                    self.recorder.write_mark(
                        now,
                        MARK_START,
                        now_ms=now,
                        generation=runner.generation,
                        resumed_from=runner.resumed_from,
                        resumed_checkpoint=runner.resumed_checkpoint,
                        tick=runner.run.tick_count if runner.run is not None else 0,
                    )
                send, receive = anyio.create_memory_object_stream[tuple[str, ...]](16)
                self._poll_send = send
                tg.start_soon(self._settlement_poller, receive)
                tg.start_soon(self._heartbeat)
                tg.start_soon(self.monitor.run, self)
                tg.start_soon(self._scheduler, tg.cancel_scope)
        except BaseException as exc:
            outcome = self._classify(exc)
        finally:
            if self._poll_send is not None:
                self._poll_send.close()
            self._final_save()  # synchronous: nothing can cancel it
            if inbox is not None:
                inbox.close()
        if outcome is None:
            outcome = Outcome(0, self.stop_reason or "stopped")
        log.info("service_stopped", exit_code=outcome.exit_code, reason=outcome.reason)
        await self.monitor.finish(self, outcome)
        return outcome

    async def _start_feed(self, tg: anyio.abc.TaskGroup) -> None:
        try:
            with anyio.fail_after(self.startup_timeout_secs):
                await tg.start(self._run_feed)
        except TimeoutError:
            msg = (
                f"no market data after {self.startup_timeout_secs:g} s: the feed found no "
                "order book to trade on (check [kalshi] rest_url/ws_url and your network)"
            )
            raise FeedError(msg) from None

    async def _run_feed(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        await self.feed.run(self.apply, task_status=task_status)
        msg = "the market feed stopped unexpectedly"
        raise FeedError(msg)

    def _classify(self, exc: BaseException) -> Outcome:
        leaves = _leaves(exc)
        for leaf in leaves:
            if isinstance(leaf, KeyboardInterrupt):
                self.stop_reason = "SIGINT"
                return Outcome(0, "SIGINT")
        for leaf in leaves:
            if isinstance(leaf, AuthError):
                log.error("service_failed", error=str(leaf), kind="credentials")
                return Outcome(2, "credentials refused", str(leaf))
        for leaf in leaves:
            if isinstance(leaf, StateError):
                log.error("service_failed", error=str(leaf), kind="state")
                return Outcome(2, "state directory unusable", str(leaf))
        for leaf in leaves:
            if isinstance(leaf, StateWriteError):
                log.error("service_failed", error=str(leaf), kind="disk")
                return Outcome(1, "state write failed (disk full?)", str(leaf))
        for leaf in leaves:
            if isinstance(leaf, FeedError):
                log.error("service_failed", error=str(leaf), kind="feed")
                return Outcome(1, "feed failed", str(leaf))
        for leaf in leaves:
            if not isinstance(leaf, anyio.get_cancelled_exc_class()):
                log.error("service_crashed", error=f"{type(leaf).__name__}: {leaf}", exc_info=leaf)
                return Outcome(1, "crashed", f"{type(leaf).__name__}: {leaf}")
        raise exc

    def _final_save(self) -> None:
        now = self.clock.now_ms()
        if self.started:
            try:
                self.runner.stop(now)
            except Exception as e:
                log.error("final_save_failed", error=f"{type(e).__name__}: {e}", exc_info=e)
        if self.recorder is not None:
            try:
                self.recorder.write_mark(now, MARK_STOP, now_ms=now)
                self.recorder.close()
            except OSError as e:
                self._recording_failed(self.recorder, e)

    # -- tasks ----------------------------------------------------------------------------------

    async def _signals(self, inbox: SignalInbox, scope: anyio.CancelScope) -> None:
        signum = await inbox.receive()
        inbox.stop()  # later signals are logged and ignored; the process exits after saving
        self.stop_reason = signal.Signals(signum).name
        log.info("stop_requested", signal=self.stop_reason)
        scope.cancel()

    async def _scheduler(self, scope: anyio.CancelScope) -> None:
        runner = self.runner
        while (due := runner.next_due_ms()) is not None:
            wait_ms = due - self.clock.now_ms()
            if wait_ms > 0:
                await self.clock.sleep(wait_ms / 1000)
                continue
            now = self.clock.now_ms()
            self._mark(MARK_FIRE, now)
            for request in runner.fire_due(now):
                if request.tickers and self._poll_send is not None:
                    try:
                        self._poll_send.send_nowait(request.tickers)
                    except anyio.WouldBlock:
                        log.warning("settlement_poll_backlog", skipped=len(request.tickers))
            self.monitor.after_fire(self)
            await anyio.lowlevel.checkpoint()
        self.stop_reason = f"completed {len(runner.completed)} generation(s)"
        scope.cancel()

    async def _settlement_poller(
        self, receive: anyio.abc.ObjectReceiveStream[tuple[str, ...]]
    ) -> None:
        async with receive:
            async for tickers in receive:
                await self.feed.poll_settlement(list(tickers))

    async def _heartbeat(self) -> None:
        every = self.settings.kalshi.heartbeat_log_secs
        while True:
            await self.clock.sleep(every)
            run = self.runner.run
            stats = dict(self.feed.stats())
            log.info(
                "heartbeat",
                generation=self.runner.generation,
                phase=run.phase.value if run is not None else "idle",
                tick=run.tick_count if run is not None else 0,
                markets=len(self.book.markets),
                open_positions=run.open_positions() if run is not None else 0,
                stale_books=len(self.book.stale_tickers()),
                events_applied=self.events_applied,
                **stats,
            )
            self.monitor.heartbeat(self, stats)

    async def _recorder_task(self, rec: Recorder) -> None:
        cfg = self.settings.record
        while True:
            await self.clock.sleep(cfg.flush_every_secs)
            try:
                self._flush_and_rotate(rec)
            except OSError as e:
                self._recording_failed(rec, e)
                return

    def _flush_and_rotate(self, rec: Recorder) -> None:
        cfg = self.settings.record
        rec.flush()
        now = self.clock.now_ms()
        too_big = rec.bytes_written >= cfg.rotate_max_bytes
        too_old = now - self._segment_started_ms >= cfg.rotate_every_secs * 1000
        if too_big or too_old:
            self._segment += 1
            new_path = segment_path(rec.base_path, self._segment)
            rec.rotate(new_path, now)
            self._segment_started_ms = now
            log.info("recording_rotated", file=str(new_path))

    def _recording_failed(self, rec: Recorder, e: OSError) -> None:
        """Trading matters more than the recording: stop recording, keep the service up."""
        log.error(
            "recording_failed",
            file=str(rec.path),
            error=f"{type(e).__name__}: {e}",
            note="recording stopped; trading continues",
        )
        rec.disable()

    def _mark(self, kind: str, now_ms: int) -> None:
        if self.recorder is not None:
            self.recorder.write_mark(now_ms, kind, now_ms=now_ms)
