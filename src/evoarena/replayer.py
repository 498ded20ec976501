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

**Exact resume.** Every generation file and checkpoint records ``recording_position``: which
recording (a fingerprint of its first bytes), file index, line, how many items had been applied,
the virtual time and the running generation's tick window. Run again with the same command into
the same state directory, a replay fast-forwards to the newest saved point of that recording —
the checkpoint of the generation after the latest saved one, else that generation's start —
applying items to the book without trading while "ghost ticks" at the original tick times
rebuild the price history; it restores the pending results and continues from there. Killed at
any instant, the rerun ends with the state files of an uninterrupted run. A state directory
whose saved state comes from another recording (or from the live service) is bred on from, as
before: the next generation starts at the recording's first snapshot. A marked recording's
state files must equal the live run's, so its positions are kept in ``replay_position.json``
instead (:mod:`evoarena.replay_position`); the fast-forward is the same.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
import structlog

from evoarena.engine.book import MarketBook
from evoarena.errors import StateError, UserError
from evoarena.evolution import persistence
from evoarena.evolution.generation import Phase
from evoarena.evolution.genome import Genome
from evoarena.evolution.runner import (
    BreedHook,
    EvolutionRunner,
    GenerationSummary,
    load_usable_checkpoint,
)
from evoarena.feeds.events import BookSnapshot
from evoarena.feeds.fused import NEVER, FusedIngest
from evoarena.feeds.kalshi.decoder import KalshiDecoder
from evoarena.feeds.replay import ReplaySource, ReplayStep
from evoarena.feeds.store import StoreIngest, fresh_store
from evoarena.marks import MARK_FIRE, MARK_START
from evoarena.replay_position import PositionLog
from evoarena.settings import Settings, decision_settings
from evoarena.statedir import state_dir_lock

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
    seed_genomes: Sequence[Genome] | None = None,
    evolve: bool = True,
    fused: bool = True,
    checkpoint_every_ticks: int | None = None,
    use_cache: bool = True,
    on_breed: BreedHook | None = None,
) -> ReplayReport:
    """Replay a recording (or its rotated segments, in order) through the runner.

    Returns what happened; the state files are written to ``settings.state.dir``.
    ``seed_genomes`` and ``evolve`` are passed to the
    :class:`~evoarena.evolution.runner.EvolutionRunner` (seeded start, fixed population).

    ``fused`` reads through :mod:`evoarena.feeds.fused` (same results, faster; a resuming replay
    fast-forwards on the general path); ``False`` takes the general per-line path. With
    ``use_cache`` (and ``fused``), a file with a fresh compiled store (:mod:`evoarena.feeds.store`,
    ``evoarena compile``) is read from it instead (same results; :attr:`ReplayReport.stores`
    lists the stores used). ``checkpoint_every_ticks``: ``None`` checkpoints as the live service
    does (``[trading] checkpoint_every_ticks``); ``0`` only when the replay stops before the
    generation's end (``evoarena replay``'s default: the latest checkpoint and the recorded
    generation start are all an exact resume needs); ``n`` every ``n`` ticks as well.
    ``on_breed`` is the runner's :attr:`~evoarena.evolution.runner.EvolutionRunner.on_breed`.
    """
    if checkpoint_every_ticks is not None and checkpoint_every_ticks < 0:
        msg = f"checkpoint_every_ticks must be None or >= 0, got {checkpoint_every_ticks}"
        raise ValueError(msg)
    files = [paths] if isinstance(paths, Path) else list(paths)
    if not files:
        msg = "run_replay needs at least one recording"
        raise ValueError(msg)
    state_dir = Path(settings.state.dir)
    recording_id = recording_fingerprint(files[0])
    with state_dir_lock(state_dir):
        return _run_locked(
            files,
            settings,
            recording_id,
            skip_bad=skip_bad,
            max_generations=max_generations,
            on_progress=on_progress,
            progress_every_items=progress_every_items,
            seed_genomes=seed_genomes,
            evolve=evolve,
            fused=fused,
            checkpoint_every_ticks=checkpoint_every_ticks,
            use_cache=use_cache,
            on_breed=on_breed,
        )


def _run_locked(
    files: list[Path],
    settings: Settings,
    recording_id: str,
    *,
    skip_bad: bool,
    max_generations: int | None,
    on_progress: Callable[[ReplayProgress], None] | None,
    progress_every_items: int,
    seed_genomes: Sequence[Genome] | None,
    evolve: bool,
    fused: bool,
    checkpoint_every_ticks: int | None,
    use_cache: bool,
    on_breed: BreedHook | None,
) -> ReplayReport:
    state_dir = Path(settings.state.dir)
    replay = _Replay(
        settings,
        max_generations,
        on_progress,
        progress_every_items,
        seed_genomes=seed_genomes,
        evolve=evolve,
    )
    replay.recording_id = recording_id
    replay.runner.checkpoint_every_ticks = checkpoint_every_ticks
    replay.runner.on_breed = on_breed
    stores: list[Path] = []
    saved = persistence.list_generations(state_dir)
    replay.runner.check_seeded(saved[-1] if saved else None)
    bad_lines = 0
    bad_examples: list[str] = []
    if not replay.already_done():
        decoder = KalshiDecoder()
        done_bytes = 0
        for index, path in enumerate(files):
            replay.file_index = index
            with ReplaySource(
                path,
                skip_bad=skip_bad,
                decoder=decoder,
                max_time_jump_ms=settings.record.max_time_jump_secs * 1000,
            ) as source:
                replay.begin_file(path, source.header)
                fast = fused and replay.plan is None  # a fast-forward takes the general path
                store = fresh_store(path) if fast and use_cache else None
                if store is not None:
                    log.info("replay_uses_compiled_store", recording=str(path), store=str(store))
                    stores.append(store)
                    with StoreIngest(source, replay.book, store) as warm:
                        replay.feed_fused(warm, done_bytes)
                elif fast:
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


FINGERPRINT_BYTES = 1 << 16


def recording_fingerprint(path: Path) -> str:
    """Identifies a recording by its first 64 KiB of lines (decompressed): header, first lines."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            head = fh.read(FINGERPRINT_BYTES)
    except (OSError, EOFError) as e:
        msg = f"{path}: cannot read: {e}"
        raise UserError(msg) from e
    return hashlib.sha256(head).hexdigest()[:16]


@dataclass(slots=True)
class ResumePlan:
    """Where a rerun picks up: a saved position of this recording and what to resume there."""

    position: dict[str, Any]
    checkpoint: dict[str, Any] | None
    start_ms: int
    windows: list[tuple[int, int, int]]
    """(generation start, first tick, ticks run) of every generation of this recording, for the
    ghost ticks that rebuild the price history during the fast-forward."""


def _checked(pos: object, recording_id: str) -> dict[str, Any] | None:
    if not isinstance(pos, dict) or pos.get("recording") != recording_id:
        return None
    needed = ("items", "t_ms", "fire_ms", "generation_start_ms", "first_tick", "ticks")
    if not all(type(pos.get(k)) is int for k in needed):
        return None
    return pos


def _window(pos: dict[str, Any]) -> tuple[int, int, int]:
    return (int(pos["generation_start_ms"]), int(pos["first_tick"]), int(pos["ticks"]))


def plan_resume(
    state_dir: Path,
    recording_id: str,
    settings: Settings,
    positions: PositionLog | None = None,
) -> ResumePlan | None:
    """The newest saved point of this recording in ``state_dir``, or ``None`` (start as usual).

    The positions are read from the state files' ``recording_position`` fields, or with
    ``positions`` (a marked recording) from ``replay_position.json``.
    """

    def position_of(doc: dict[str, Any] | None, path: Path) -> dict[str, Any] | None:
        if doc is None:
            return None
        if positions is None:
            return _checked(doc.get("recording_position"), recording_id)
        return _checked(positions.position_of(path), recording_id)

    latest = persistence.load_latest_state(state_dir=state_dir)
    generation = 0 if latest is None else latest[0] + 1
    windows: list[tuple[int, int, int]] = []
    gen_pos = None
    if latest is not None:
        for n in persistence.list_generations(state_dir):
            if n > latest[0]:
                break
            try:
                doc = persistence.load_generation(n, state_dir=state_dir)
            except StateError as e:
                log.warning("generation_file_corrupt_skipped", error=str(e))
                continue
            pos = position_of(doc, state_dir / persistence.generation_file_name(n))
            if pos is not None:
                windows.append(_window(pos))
                if n == latest[0]:
                    gen_pos = pos
    cp = load_usable_checkpoint(generation, state_dir, settings)
    cp_pos = position_of(cp, _checkpoint_path(state_dir, generation, cp))
    if cp_pos is not None and (gen_pos is None or cp_pos["items"] >= gen_pos["items"]):
        start_ms = int(gen_pos["t_ms"]) if gen_pos is not None else 0
        return ResumePlan(cp_pos, cp, start_ms, [*windows, _window(cp_pos)])
    if gen_pos is None:
        return None
    return ResumePlan(gen_pos, None, int(gen_pos["t_ms"]), windows)


def _checkpoint_path(state_dir: Path, generation: int, cp: dict[str, Any] | None) -> Path:
    """Which file ``cp`` was read from: the current checkpoint, else the previous one."""
    main = state_dir / persistence.checkpoint_file_name(generation)
    try:
        if cp is not None and orjson.loads(main.read_bytes()) == cp:
            return main
    except (OSError, orjson.JSONDecodeError):
        pass
    return persistence.previous_checkpoint_path(main)


class _GhostTicks:
    """The price-history side of ticks already run: ``record_tick`` at the original tick times."""

    def __init__(self, book: MarketBook, tick_ms: int, windows: list[tuple[int, int, int]]):
        self.book = book
        self.times = sorted(
            start + k * tick_ms for start, first, ticks in windows for k in range(first, ticks)
        )
        self.next = 0

    def fire_due(self, now_ms: int) -> None:
        times, book = self.times, self.book
        while self.next < len(times) and times[self.next] <= now_ms:
            book.drain_determined()
            book.record_tick()
            self.next += 1


class _Replay:
    """The state of one replay across the files of a recording."""

    def __init__(
        self,
        settings: Settings,
        max_generations: int | None,
        on_progress: Callable[[ReplayProgress], None] | None,
        progress_every_items: int,
        *,
        seed_genomes: Sequence[Genome] | None = None,
        evolve: bool = True,
    ) -> None:
        self.settings = settings
        self.started_wall = time.perf_counter()
        self.book = MarketBook(settings.trading.price_history_ticks)
        self.runner = EvolutionRunner(
            settings,
            self.book,
            max_generations=max_generations,
            count_saved_generations=True,
            position=self._position,
            seed_genomes=seed_genomes,
            evolve=evolve,
        )
        self.recording_id = ""
        self.plan: ResumePlan | None = None
        self.ghost: _GhostTicks | None = None
        self.file_index = 0
        self.applied = 0  # items whose events are applied (the resume position counts these)
        self.last_line = 0
        self.applied_t: int | None = None
        self.fire_ms = 0  # the time of the runner call in progress (a resume finishes it)
        self.progress = ReplayProgress()
        self.on_progress = on_progress
        self.every = progress_every_items
        self.marked: bool | None = None
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.started = False
        self.snapshot_ms: int | None = None  # scheduled mode: start once past this instant

    def already_done(self) -> bool:
        """True when the state directory already holds ``--generations`` generations."""
        runner = self.runner
        if runner.max_generations is None:
            return False
        saved = runner.housekeeping()
        done = saved is not None and saved[0] + 1 >= runner.max_generations
        if done:
            log.warning(
                "replay_nothing_to_do",
                saved_generations=None if saved is None else saved[0] + 1,
                generations=runner.max_generations,
            )
        return done

    def _position(self) -> dict[str, Any]:
        return {
            "recording": self.recording_id,
            "file": self.file_index,
            "line": self.last_line,
            "items": self.applied,
            "item_t_ms": self.applied_t,
            "fire_ms": self.fire_ms,
        }

    def _fast_forwarding(self) -> bool:
        """During the fast-forward: fire ghost ticks; at the saved point, hand over (see module)."""
        plan = self.plan
        if plan is None:
            return False
        if self.ghost is None:
            self.ghost = _GhostTicks(
                self.book, self.settings.trading.tick_interval_secs * 1000, plan.windows
            )
        if self.applied < int(plan.position["items"]):
            return True
        self._hand_over(plan)
        return False

    def _hand_over(self, plan: ResumePlan) -> None:
        pos = plan.position
        here = (self.file_index, self.last_line, self.applied, self.applied_t)
        saved = (pos.get("file"), pos.get("line"), pos.get("items"), pos.get("item_t_ms"))
        if here != saved:
            msg = (
                f"{self.runner.state_dir}: the saved state was taken at item {saved[2]} "
                f"(file {saved[0]}, line {saved[1]}, t_ms {saved[3]}) of a recording that begins "
                f"like this one, but this one differs there (file {here[0]}, line {here[1]}, "
                f"t_ms {here[3]}); replay into an empty --state-dir"
            )
            raise UserError(msg)
        fire_ms = int(pos["fire_ms"])
        assert self.ghost is not None  # noqa: S101 — set by _fast_forwarding
        self.ghost.fire_due(fire_ms)
        self.book.restore_pending_determined(
            [str(t) for t in pos.get("pending_results", []) if isinstance(t, str)]
        )
        self.runner.resume_exact(plan.checkpoint, plan.start_ms)
        self.plan = None
        self.started = True
        log.info("replay_resumed", items=self.applied, t_ms=fire_ms)
        self.fire_ms = fire_ms
        self.runner.fire_due(fire_ms)

    def begin_file(self, path: Path, header: dict[str, Any]) -> None:
        marked = bool(header.get("marks", False))
        if self.marked is None:
            self.marked = marked
            state_dir = self.runner.state_dir
            positions = None
            if marked:
                _warn_on_settings_drift(path, header, self.settings)
                # A marked recording reproduces the live run's state files byte for byte, and
                # those carry no recording position: it is kept beside them.
                positions = PositionLog(state_dir)
                self.runner.position_sink = positions.record
            self.plan = plan_resume(state_dir, self.recording_id, self.settings, positions)
            if self.plan is None and persistence.list_generations(state_dir):
                log.warning(
                    "replay_breeds_on_existing_state",
                    state_dir=str(state_dir),
                    note="the saved generations come from another recording (or the live "
                    "service): this replay breeds on from them; use an empty --state-dir to "
                    "start from generation 0",
                )
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
        ff = self.plan is not None and self._fast_forwarding()
        self._seen(t)
        if self._schedule(t, ff):
            return True
        events = step.events
        apply = self.book.apply
        for ev in events:
            apply(ev)
        self._applied(step.line_no, t)
        self.progress.events += len(events)
        if self.snapshot_ms is None and any(type(ev) is BookSnapshot for ev in events):
            self.snapshot_ms = t
        if self.progress.items % self.every == 0:
            self._report(t, source, done_bytes)
        return False

    def _schedule(self, t: int, ff: bool = False) -> bool:
        """Scheduled mode, before an item received at ``t``: start, fire what is due before
        ``t`` (ghost ticks while fast-forwarding); True once the runner is done."""
        runner = self.runner
        if not self.started and self.snapshot_ms is not None and t > self.snapshot_ms:
            if not ff:
                runner.start(self.snapshot_ms)
            self.started = True
        if ff:
            assert self.ghost is not None  # noqa: S101 — set by _fast_forwarding
            self.ghost.fire_due(t - 1)
        elif self.started:
            self.fire_ms = t - 1
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
        ff = self.plan is not None and self._fast_forwarding()
        self._seen(t)
        events = step.events
        apply = self.book.apply
        for ev in events:
            apply(ev)
        self.progress.events += len(events)
        mark = step.mark
        if mark is not None:
            kind = mark.get("kind")
            act_ms = _mark_ms(mark, t)
            if kind == MARK_START and not self.started:
                if not ff:
                    runner.start(act_ms, resume_checkpoint=bool(mark.get("resumed_checkpoint")))
                    _warn_on_start_drift(mark, runner)
                self.started = True
            elif kind == MARK_FIRE and self.started:
                self.fire_ms = act_ms
                if ff:
                    assert self.ghost is not None  # noqa: S101 — set by _fast_forwarding
                    self.ghost.fire_due(act_ms)
                else:
                    runner.fire_due(act_ms)
                    if runner.done:
                        self._applied(step.line_no, t)
                        return True
        self._applied(step.line_no, t)
        if self.progress.items % self.every == 0:
            self._report(t, source, done_bytes)
        return False

    def feed_fused(self, ingest: FusedIngest | StoreIngest, done_bytes: int) -> None:
        """Like :meth:`feed`, through a fused loop (same results; not while fast-forwarding)."""
        _FusedAdapter(self, ingest, done_bytes).run()

    def _applied(self, line_no: int, t: int) -> None:
        self.applied += 1
        self.last_line = line_no
        self.applied_t = t

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
        if self.plan is not None and self.applied and self._fast_forwarding() and self.plan:
            self._hand_over(self.plan)  # the recording ended before the saved point: an error
        if not self.marked and not self.started and self.snapshot_ms is not None:
            runner.start(self.snapshot_ms)
            self.started = True
        if not self.marked and self.started and self.last_ms is not None and not runner.done:
            self.fire_ms = self.last_ms
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

    @property
    def applied(self) -> int:
        return self.replay.applied

    @applied.setter
    def applied(self, n: int) -> None:
        self.replay.applied = n

    @property
    def last_line(self) -> int:
        return self.replay.last_line

    @last_line.setter
    def last_line(self, n: int) -> None:
        self.replay.last_line = n

    @property
    def applied_t(self) -> int | None:
        return self.replay.applied_t

    @applied_t.setter
    def applied_t(self, t: int | None) -> None:
        self.replay.applied_t = t

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


def _mark_ms(mark: dict[str, Any], t: int) -> int:
    value = mark.get("now_ms", t)
    return value if type(value) is int else t


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
