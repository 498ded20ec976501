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
from typing import Any

import structlog

from evoarena.engine.book import MarketBook
from evoarena.errors import UserError
from evoarena.evolution import persistence
from evoarena.evolution.generation import Phase
from evoarena.evolution.genome import Genome
from evoarena.evolution.runner import EvolutionRunner, GenerationSummary
from evoarena.feeds.events import BookSnapshot
from evoarena.feeds.kalshi.decoder import KalshiDecoder
from evoarena.feeds.replay import ReplaySource
from evoarena.settings import Settings, decision_settings
from evoarena.supervisor import MARK_FIRE, MARK_START

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


def run_replay(
    paths: Path | Sequence[Path],
    settings: Settings,
    *,
    skip_bad: bool = False,
    max_generations: int | None = None,
    on_progress: Callable[[ReplayProgress], None] | None = None,
    progress_every_items: int = 50_000,
    seed_genomes: Sequence[Genome] | None = None,
    evolve: bool = True,
) -> ReplayReport:
    """Replay a recording (or its rotated segments, in order) through the runner.

    Returns what happened; the state files are written to ``settings.state.dir``.
    ``seed_genomes`` and ``evolve`` are passed to the
    :class:`~evoarena.evolution.runner.EvolutionRunner` (seeded start, fixed population).
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
    if seed_genomes is not None or not evolve:
        replay.runner = EvolutionRunner(
            settings,
            replay.book,
            max_generations=max_generations,
            seed_genomes=seed_genomes,
            evolve=evolve,
        )
    decoder = KalshiDecoder()
    bad_lines = 0
    bad_examples: list[str] = []
    done_bytes = 0
    for path in files:
        with ReplaySource(path, skip_bad=skip_bad, decoder=decoder) as source:
            replay.begin_file(path, source.header)
            replay.feed(source, done_bytes)
            bad_lines += source.reader.bad_count
            bad_examples.extend(source.reader.bad_lines)
            done_bytes += path.stat().st_size
        if replay.runner.done:
            break
    return replay.finish(files[0], bad_lines, bad_examples)


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
        runner, apply = self.runner, self.book.apply
        for step in source:
            t = step.t_ms
            self._seen(t)
            if not self.started and self.snapshot_ms is not None and t > self.snapshot_ms:
                runner.start(self.snapshot_ms)
                self.started = True
            if self.started:
                runner.fire_due(t - 1)
                if runner.done:
                    return
            events = step.events
            for ev in events:
                apply(ev)
            self.progress.events += len(events)
            if self.snapshot_ms is None and any(type(ev) is BookSnapshot for ev in events):
                self.snapshot_ms = t
            if self.progress.items % self.every == 0:
                self._report(t, source, done_bytes)

    def _feed_marked(self, source: ReplaySource, done_bytes: int) -> None:
        runner, apply = self.runner, self.book.apply
        for step in source:
            t = step.t_ms
            self._seen(t)
            events = step.events
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
                        return
            if self.progress.items % self.every == 0:
                self._report(t, source, done_bytes)

    def _seen(self, t: int) -> None:
        if self.first_ms is None:
            self.first_ms = t
        self.last_ms = t
        self.progress.items += 1

    def _report(self, t: int, source: ReplaySource, done_bytes: int) -> None:
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
