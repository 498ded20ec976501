"""Drive the evolution runner over a recording, under a virtual clock.

Two ways a recording says when to act:

* **scheduled** (synthetic days, recordings without marks): the runner's own schedule decides.
  Before an item received at ``t`` is applied, every action due strictly before ``t`` fires, so a
  tick at ``T`` sees exactly the frames received up to ``T``. The first generation starts at the
  receive time of the first order-book snapshot (after every item of that instant is applied).
* **marked** (recordings made by ``evoarena run --record``): the live service wrote a ``mark``
  line each time it started or acted (``start`` / ``fire`` with the time it acted for), at the
  exact point in the stream where it acted. Replay acts at those points with those times, so it
  reproduces the live run's trading decisions.

The same seed, settings and recording give byte-identical state files.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from evoarena.engine.book import MarketBook
from evoarena.errors import UserError
from evoarena.evolution import persistence
from evoarena.evolution.generation import Phase
from evoarena.evolution.runner import EvolutionRunner, GenerationSummary
from evoarena.feeds.events import BookSnapshot
from evoarena.feeds.fused import NEVER, FusedIngest
from evoarena.feeds.kalshi.decoder import KalshiDecoder
from evoarena.feeds.replay import ReplaySource, ReplayStep
from evoarena.feeds.store import StoreIngest, fresh_store
from evoarena.marks import MARK_FIRE, MARK_START
from evoarena.settings import Settings, decision_settings

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class ReplayProgress:
    """What a progress display needs, updated as the replay goes."""

    items: int = 0
    events: int = 0
    virtual_ms: int = 0
    generation: int = 0
    wall_secs: float = 0.0
    bytes_read: int = 0


@dataclass(slots=True)
class ReplayReport:
    """The outcome of a replay."""

    path: Path
    marked: bool
    items: int
    events: int
    bad_lines: int
    bad_examples: list[str]
    first_ms: int | None
    last_ms: int | None
    wall_secs: float
    generations: list[GenerationSummary]
    incomplete_generation: int | None
    incomplete_tick: int | None
    resumed_from: int | None
    ticks: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    stores: list[Path] = field(default_factory=list)
    """Compiled stores read instead of their recordings (``evoarena compile``)."""


def run_replay(
    paths: Path | Sequence[Path],
    settings: Settings,
    *,
    skip_bad: bool = False,
    max_generations: int | None = None,
    on_progress: Callable[[ReplayProgress], None] | None = None,
    progress_every_items: int = 50_000,
    fused: bool = True,
    checkpoint_every_ticks: int | None = None,
    use_cache: bool = True,
) -> ReplayReport:
    """Replay a recording (or its rotated segments, in order) through the runner.

    Returns what happened; the state files are written to ``settings.state.dir``. ``fused``
    reads through :mod:`evoarena.feeds.fused` (same results, faster); ``False`` takes the
    general per-line path. With ``use_cache`` (and ``fused``), a file with a fresh compiled store
    (:mod:`evoarena.feeds.store`, ``evoarena compile``) is read from it instead (same results;
    :attr:`ReplayReport.stores` lists the stores used).
    ``checkpoint_every_ticks``: ``None`` checkpoints as the live service
    does (``[trading] checkpoint_every_ticks``); ``0`` only when the replay stops before the
    generation's end (``evoarena replay``'s default: only the last checkpoint can matter); ``n``
    every ``n`` ticks as well.
    """
    files = [paths] if isinstance(paths, Path) else list(paths)
    if not files:
        msg = "run_replay needs at least one recording"
        raise ValueError(msg)
    existing = persistence.list_generations(Path(settings.state.dir))
    if existing:
        log.warning(
            "replay_resumes_existing_state",
            state_dir=str(settings.state.dir),
            latest_generation=existing[-1],
            note="this replay breeds on from the saved generations; use an empty --state-dir "
            "to start from generation 0",
        )
    replay = _Replay(settings, max_generations, on_progress, progress_every_items)
    if checkpoint_every_ticks is not None and checkpoint_every_ticks < 0:
        msg = f"checkpoint_every_ticks must be None or >= 0, got {checkpoint_every_ticks}"
        raise ValueError(msg)
    replay.runner.checkpoint_every_ticks = checkpoint_every_ticks
    decoder = KalshiDecoder()
    bad_lines = 0
    bad_examples: list[str] = []
    done_bytes = 0
    stores: list[Path] = []
    for path in files:
        with ReplaySource(path, skip_bad=skip_bad, decoder=decoder) as source:
            replay.begin_file(path, source.header)
            store = fresh_store(path) if fused and use_cache else None
            if store is not None:
                log.info("replay_uses_compiled_store", recording=str(path), store=str(store))
                stores.append(store)
                with StoreIngest(source, replay.book, store) as warm:
                    replay.feed_fused(warm, done_bytes)
            elif fused:
                with FusedIngest(source, replay.book) as ingest:
                    replay.feed_fused(ingest, done_bytes)
            else:
                replay.feed(source, done_bytes)
            bad_lines += source.reader.bad_count
            bad_examples.extend(source.reader.bad_lines)
            done_bytes += path.stat().st_size
        if replay.runner.done:
            break
    report = replay.finish(files[0], bad_lines, bad_examples)
    report.stores = stores
    return report


class _Replay:
    """The state of one replay across the files of a recording."""

    def __init__(
        self,
        settings: Settings,
        max_generations: int | None,
        on_progress: Callable[[ReplayProgress], None] | None,
        progress_every_items: int,
    ) -> None:
        self.settings = settings
        self.started_wall = time.perf_counter()
        self.book = MarketBook(settings.trading.price_history_ticks)
        self.runner = EvolutionRunner(settings, self.book, max_generations=max_generations)
        self.progress = ReplayProgress()
        self.on_progress = on_progress
        self.every = progress_every_items
        self.marked: bool | None = None
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.started = False
        self.snapshot_ms: int | None = None  # scheduled mode: start once past this instant

    def begin_file(self, path: Path, header: dict[str, Any]) -> None:
        marked = bool(header.get("marks", False))
        if self.marked is None:
            self.marked = marked
            if marked:
                _warn_on_settings_drift(path, header, self.settings)
        elif marked != self.marked:
            msg = f"{path}: mixes a marked and an unmarked recording; replay them separately"
            raise UserError(msg)

    def feed(self, source: ReplaySource, done_bytes: int) -> None:
        if self.marked:
            self._feed_marked(source, done_bytes)
        else:
            self._feed_scheduled(source, done_bytes)

    def _feed_scheduled(self, source: ReplaySource, done_bytes: int) -> None:
        for step in source:
            if self._step_scheduled(step, source, done_bytes):
                return

    def _step_scheduled(self, step: ReplayStep, source: _Progress, done_bytes: int) -> bool:
        """One item in scheduled mode; True once the runner is done (the item is not applied)."""
        t = step.t_ms
        self._seen(t)
        if self._schedule(t):
            return True
        events = step.events
        apply = self.book.apply
        for ev in events:
            apply(ev)
        self.progress.events += len(events)
        if self.snapshot_ms is None and any(type(ev) is BookSnapshot for ev in events):
            self.snapshot_ms = t
        if self.progress.items % self.every == 0:
            self._report(t, source, done_bytes)
        return False

    def _schedule(self, t: int) -> bool:
        """Scheduled mode, before an item received at ``t``: start, fire what is due before
        ``t``; True once the runner is done."""
        runner = self.runner
        if not self.started and self.snapshot_ms is not None and t > self.snapshot_ms:
            runner.start(self.snapshot_ms)
            self.started = True
        if self.started:
            runner.fire_due(t - 1)
            if runner.done:
                return True
        return False

    def _feed_marked(self, source: ReplaySource, done_bytes: int) -> None:
        for step in source:
            if self._step_marked(step, source, done_bytes):
                return

    def _step_marked(self, step: ReplayStep, source: _Progress, done_bytes: int) -> bool:
        """One item in marked mode; True once the runner is done."""
        runner = self.runner
        t = step.t_ms
        self._seen(t)
        events = step.events
        apply = self.book.apply
        for ev in events:
            apply(ev)
        self.progress.events += len(events)
        mark = step.mark
        if mark is not None:
            kind = mark.get("kind")
            act_ms = int(mark.get("now_ms", t))
            if kind == MARK_START and not self.started:
                runner.start(act_ms, resume_checkpoint=bool(mark.get("resumed_checkpoint")))
                self.started = True
                _warn_on_start_drift(mark, runner)
            elif kind == MARK_FIRE and self.started:
                runner.fire_due(act_ms)
                if runner.done:
                    return True
        if self.progress.items % self.every == 0:
            self._report(t, source, done_bytes)
        return False

    def feed_fused(self, ingest: FusedIngest | StoreIngest, done_bytes: int) -> None:
        """Like :meth:`feed`, through the fused loop (same results)."""
        _FusedAdapter(self, ingest, done_bytes).run()

    def _seen(self, t: int) -> None:
        if self.first_ms is None:
            self.first_ms = t
        self.last_ms = t
        self.progress.items += 1

    def _report(self, t: int, source: _Progress, done_bytes: int) -> None:
        if self.on_progress is None:
            return
        p = self.progress
        p.virtual_ms = t
        p.generation = self.runner.generation
        p.wall_secs = time.perf_counter() - self.started_wall
        p.bytes_read = done_bytes + source.bytes_read()
        self.on_progress(p)

    def finish(self, path: Path, bad_lines: int, bad_examples: list[str]) -> ReplayReport:
        runner = self.runner
        if not self.marked and not self.started and self.snapshot_ms is not None:
            runner.start(self.snapshot_ms)
            self.started = True
        if not self.marked and self.started and self.last_ms is not None and not runner.done:
            runner.fire_due(self.last_ms)
        incomplete_gen = incomplete_tick = None
        if runner.run is not None and runner.run.phase is not Phase.DONE and not runner.done:
            incomplete_gen = runner.run.generation
            incomplete_tick = runner.run.tick_count
            runner.stop(self.last_ms if self.last_ms is not None else 0)
        ticks = sum(g.ticks for g in runner.completed) + (incomplete_tick or 0)
        return ReplayReport(
            path=path,
            marked=bool(self.marked),
            items=self.progress.items,
            events=self.progress.events,
            bad_lines=bad_lines,
            bad_examples=bad_examples,
            first_ms=self.first_ms,
            last_ms=self.last_ms,
            wall_secs=time.perf_counter() - self.started_wall,
            generations=list(runner.completed),
            incomplete_generation=incomplete_gen,
            incomplete_tick=incomplete_tick,
            resumed_from=runner.resumed_from,
            ticks=ticks,
            counters={
                "stale_books_end": len(self.book.stale_tickers()),
                "markets": len(self.book.markets),
            },
        )


class _Progress(Protocol):
    def bytes_read(self) -> int: ...


class _FusedAdapter:
    """Presents a :class:`_Replay` to the fused loop as a :class:`~evoarena.feeds.fused.FusedSink`.

    The gate is the earliest receive time at which the schedule has work (start, or a due
    action): below it, :meth:`_Replay._schedule` would do nothing.
    """

    def __init__(self, replay: _Replay, ingest: FusedIngest | StoreIngest, done_bytes: int) -> None:
        self.replay = replay
        self.ingest = ingest
        self.done_bytes = done_bytes
        self.marked = bool(replay.marked)
        self.gate = NEVER
        self._update_gate()
        self.next_report = (replay.progress.items // replay.every + 1) * replay.every

    # the counters live on the replay
    @property
    def items(self) -> int:
        return self.replay.progress.items

    @items.setter
    def items(self, n: int) -> None:
        self.replay.progress.items = n

    @property
    def events(self) -> int:
        return self.replay.progress.events

    @events.setter
    def events(self, n: int) -> None:
        self.replay.progress.events = n

    @property
    def first_ms(self) -> int | None:
        return self.replay.first_ms

    @first_ms.setter
    def first_ms(self, t: int | None) -> None:
        self.replay.first_ms = t

    @property
    def last_ms(self) -> int | None:
        return self.replay.last_ms

    @last_ms.setter
    def last_ms(self, t: int | None) -> None:
        self.replay.last_ms = t

    def run(self) -> None:
        self.ingest.run(self)

    def _update_gate(self) -> None:
        r = self.replay
        if self.marked:
            self.gate = NEVER
        elif not r.started:
            self.gate = NEVER if r.snapshot_ms is None else r.snapshot_ms + 1
        else:
            due = r.runner.next_due_ms()
            self.gate = NEVER if due is None else due + 1

    def at_gate(self, t_ms: int) -> bool:
        stop = False if self.marked else self.replay._schedule(t_ms)
        self._update_gate()
        return stop

    def general(self, step: ReplayStep) -> bool:
        r = self.replay
        if self.marked:
            stop = r._step_marked(step, self.ingest, self.done_bytes)
        else:
            stop = r._step_scheduled(step, self.ingest, self.done_bytes)
        self._update_gate()
        if r.progress.items >= self.next_report:
            self.next_report = (r.progress.items // r.every + 1) * r.every
        return stop

    def chunk_done(self, t_ms: int) -> None:
        r = self.replay
        if r.progress.items >= self.next_report:
            self.next_report = (r.progress.items // r.every + 1) * r.every
            r._report(t_ms, self.ingest, self.done_bytes)


def _warn_on_start_drift(mark: dict[str, Any], runner: EvolutionRunner) -> None:
    """The live run resumed saved state: replay reproduces it only from that same state."""
    live = (mark.get("generation", 0), mark.get("resumed_checkpoint", False))
    here = (runner.generation, runner.resumed_checkpoint)
    if live != here:
        log.warning(
            "replay_start_differs",
            live_generation=live[0],
            live_resumed_checkpoint=live[1],
            replay_generation=here[0],
            note="the live service started from saved state this replay does not have; "
            "replay into a copy of the live state directory as it was at that start to "
            "reproduce its decisions",
        )


def _warn_on_settings_drift(path: Path, header: dict[str, Any], settings: Settings) -> None:
    """A marked recording reproduces the live run only with the live run's settings."""
    recorded = header.get("settings")
    if not isinstance(recorded, dict):
        return
    current = decision_settings(settings)
    drift = [
        f"{section}.{key}: recorded {value!r}, now {current[section].get(key)!r}"
        for section, values in recorded.items()
        if isinstance(values, dict) and section in current
        for key, value in values.items()
        if current[section].get(key) != value
    ]
    if drift:
        log.warning(
            "replay_settings_differ",
            file=str(path),
            note="the replay will not reproduce the live run's decisions",
            differences=drift,
        )
