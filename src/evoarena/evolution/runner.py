"""The evolution loop (the seeds' ``runner.py``), as a synchronous core the shell drives.

``EvolutionRunner`` owns the current :class:`~evoarena.evolution.generation.GenerationRun`, the
state directory and the hall of fame. The shell applies market events to the shared book and
calls :meth:`EvolutionRunner.fire_due` with the time; the runner ticks, checkpoints, waits for
settlement, evaluates, saves, updates the hall of fame and breeds the next generation, all at the
times those actions are due. Replay and the live service differ only in where time comes from.

Resume: on start the runner reads ``latest.json``. The next generation is bred from the saved
generation with the same seeded RNG an uninterrupted run would have used, so a restart between
generations changes nothing. If that next generation had already begun, its mid-generation
checkpoint is resumed (accounts, positions, bot RNGs) when the caller allows it (live).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from evoarena.clock import iso_ms
from evoarena.engine.book import MarketBook
from evoarena.errors import StateError
from evoarena.evolution import persistence
from evoarena.evolution.fitness import compute_fitness
from evoarena.evolution.generation import GenerationRun, Phase, Request
from evoarena.evolution.genome import Genome, new_genome_id
from evoarena.evolution.luck import (
    EDGE,
    NO_EDGE,
    combined_p,
    event_group,
    luck_rng,
    luck_test,
    p_to_z,
)
from evoarena.evolution.operators import evolve, rank_indices
from evoarena.evolution.stats import (
    BotResult,
    bot_result,
    compute_generation_stats,
    leaderboard_rows,
)
from evoarena.settings import Settings

log = structlog.get_logger(__name__)


BreedHook = Callable[[int, list[Genome]], list[Genome]]
"""``(generation, genomes bred for it) -> the genomes that trade it`` (see ``on_breed``)."""

PositionSink = Callable[[Path, bytes, dict[str, Any]], None]
"""Receives ``(state file, its exact bytes, recording position)`` before the file is written."""


@dataclass(frozen=True, slots=True)
class GenerationSummary:
    """One finished generation, for the CLI's final table."""

    generation: int
    start_ms: int
    end_ms: int
    ticks: int
    stats: dict[str, Any]


def genesis_rng(seed: int) -> random.Random:
    """The RNG that draws generation 0."""
    return random.Random(f"evoarena:{seed}:genesis")


def evolve_rng(seed: int, generation: int) -> random.Random:
    """The RNG that breeds ``generation + 1`` from ``generation``."""
    return random.Random(f"evoarena:{seed}:evolve:{generation}")


def initial_population(
    seed: int, size: int, seed_genomes: Sequence[Genome] | None = None
) -> list[Genome]:
    """Generation 0: ``seed_genomes`` (at most ``size``, unchanged), then random genomes.

    The random ones are drawn from :func:`genesis_rng` exactly as an unseeded start draws them
    (an id already taken by a seed genome is redrawn from the same RNG), so the result depends
    only on ``seed``, ``size`` and the seed genomes, and without seeds it is the unseeded start.
    """
    seeds = list(seed_genomes or ())
    if len(seeds) > size:
        log.warning("seed_genomes_truncated", given=len(seeds), population=size)
    out = seeds[:size]
    taken = {g.id for g in out}
    rng = genesis_rng(seed)
    while len(out) < size:
        g = Genome.random(rng, 0)
        while g.id in taken:
            g.id = new_genome_id(rng)
        out.append(g)
    return out


def load_usable_checkpoint(
    generation: int, state_dir: Path, settings: Settings
) -> dict[str, Any] | None:
    """The newest usable checkpoint of ``generation`` (current, else previous); a damaged one is
    set aside with a warning."""
    main = state_dir / persistence.checkpoint_file_name(generation)
    for previous in (False, True):
        path = persistence.previous_checkpoint_path(main) if previous else main
        try:
            cp = persistence.load_checkpoint(generation, state_dir=state_dir, previous=previous)
            if cp is not None:
                try:  # everything a resume reads, against a scratch book
                    GenerationRun.from_checkpoint(
                        settings,
                        MarketBook(settings.trading.price_history_ticks),
                        generation,
                        int(cp["tick_count"]),
                        cp,
                    )
                except Exception as e:  # any failure means: not resumable
                    msg = f"{path}: does not describe a generation: {type(e).__name__}: {e}"
                    raise StateError(msg) from e
        except StateError as e:
            log.warning(
                "checkpoint_damaged",
                error=str(e),
                action="set aside; the generation continues from the previous checkpoint "
                "or restarts from its beginning",
            )
            persistence.set_aside(path)
            continue
        if cp is not None:
            return cp
    return None


class EvolutionRunner:
    """Generation after generation over one shared book."""

    def __init__(
        self,
        settings: Settings,
        book: MarketBook,
        *,
        max_generations: int | None = None,
        seed_genomes: Sequence[Genome] | None = None,
        evolve: bool = True,
        count_saved_generations: bool = False,
        position: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        """``seed_genomes`` start generation 0 (see :func:`initial_population`); with
        ``evolve=False`` nothing is bred: the same genomes (``seed_genomes`` exactly, no
        padding) trade every generation, unchanged — the fixed population ``evaluate`` uses."""
        if not evolve and not seed_genomes:
            msg = "a fixed population (evolve=False) needs seed_genomes"
            raise ValueError(msg)
        self.settings = settings
        self.book = book
        self.state_dir = Path(settings.state.dir)
        self.max_generations = max_generations
        self.count_saved_generations = count_saved_generations
        self.position = position
        """Where the shell is in its input (replay: the recording position); recorded in every
        generation file and checkpoint as ``recording_position``."""
        self.position_sink: PositionSink | None = None
        """When set, the recording position goes there (with the state file's path and exact
        bytes, before they are written) instead of into the file: a marked replay's files must
        equal the live run's (see :mod:`evoarena.replay_position`)."""
        self.first_tick = 0
        """The current generation's first tick run by this state directory's history (non-zero
        only when a live restart skipped missed ticks)."""
        self.generation = 0
        self.run: GenerationRun | None = None
        self.completed: list[GenerationSummary] = []
        self.resumed_from: int | None = None
        self.resumed_checkpoint = False
        self.checkpoint_every_ticks: int | None = None
        """``None``: checkpoint when the generation asks (``checkpoint_every_ticks`` setting, live);
        ``0``: only on :meth:`stop`; ``n``: every ``n`` ticks (replay, where only the last
        checkpoint can ever matter)."""
        self._checkpointed_tick = -1
        self.carried_elites: CarriedElites | None = None
        """The previous generation's elites (by gene hash), which trade this window unchanged."""
        self.oos_z_sum = 0.0
        self.oos_windows = 0
        """Walk-forward luck test so far: Σ Φ⁻¹(1 − p) of the elites' out-of-sample windows."""
        self.seed_genomes = list(seed_genomes) if seed_genomes else None
        self.evolve = evolve
        self.on_breed: BreedHook | None = None
        """When set, the genomes bred for generation ``n`` (``n`` ≥ 1) pass through it before
        they trade, once generation ``n − 1`` is saved (island migration replaces some there,
        and may block waiting for them). A resumed run calls it again for the generation it
        breeds, so what it returns must be reproducible (islands record their migrants in a
        file before using them)."""

    @property
    def done(self) -> bool:
        """True once ``max_generations`` generations have completed: in this process, or with
        ``count_saved_generations`` (replay) in the state directory as a whole."""
        if self.max_generations is None:
            return False
        if self.count_saved_generations:
            return self.generation >= self.max_generations
        return len(self.completed) >= self.max_generations

    # -- start --------------------------------------------------------------------------------

    def start(self, now_ms: int, *, resume_checkpoint: bool = False) -> None:
        """Resume from the state directory, or start fresh, with a generation beginning now."""
        genomes = self._open_state()
        if self.done:
            return
        if resume_checkpoint and self._resume_checkpoint(now_ms):
            return
        self._begin(genomes, now_ms)

    def housekeeping(self) -> tuple[int, list[Genome]] | None:
        """Repair what a kill may have left; returns the latest saved generation (or ``None``).

        Removes stray temp files and the checkpoints of generations before the latest saved one
        (the latest's go when the next generation begins), and makes the hall of fame agree with
        the generation files (see :mod:`~evoarena.evolution.persistence`).
        """
        persistence.ensure_state_dir(self.state_dir)
        latest = persistence.load_latest_state(state_dir=self.state_dir)
        for n in persistence.list_generations(self.state_dir):
            if latest is None or n > latest[0]:  # damaged (skipped above): it will be redone
                persistence.set_aside(self.state_dir / persistence.generation_file_name(n))
        persistence.clean_state_dir(
            self.state_dir, completed_through=None if latest is None else latest[0] - 1
        )
        persistence.reconcile_hall_of_fame(
            self.state_dir,
            latest_generation=None if latest is None else latest[0],
            max_entries=self.settings.evolution.hall_of_fame_size,
        )
        return latest

    def _open_state(self) -> list[Genome]:
        """:meth:`housekeeping`, then the genomes of the generation to run next."""
        seed = self.settings.evolution.seed
        latest = self.housekeeping()
        if latest is None:
            size = self.settings.evolution.population_size
            if not self.evolve and self.seed_genomes is not None:
                genomes = list(self.seed_genomes)
            else:
                genomes = initial_population(seed, size, self.seed_genomes)
            self.generation = 0
            log.info(
                "starting_fresh",
                population=len(genomes),
                seed=seed,
                seeded=len(self.seed_genomes or ()),
                evolve=self.evolve,
            )
            return genomes
        gen, saved = latest
        self.check_seeded(gen)
        self.generation = gen + 1
        self.resumed_from = gen
        log.info("resumed", from_generation=gen, generation=self.generation)
        return self._breed_from_saved(gen, saved)

    def _begin(self, genomes: list[Genome], now_ms: int) -> None:
        self._prune_finished()
        self.run = GenerationRun(self.settings, self.book, genomes, self.generation, now_ms)
        self.first_tick = 0
        log.info(
            "generation_started",
            generation=self.generation,
            bots=len(genomes),
            markets=len(self.book.markets),
            categories=self.run.categories,
        )

    def resume_exact(self, checkpoint: dict[str, Any] | None, start_ms: int) -> None:
        """Replay's resume: continue exactly where the saved state was taken.

        With ``checkpoint`` (of the generation after the latest saved one) that generation
        continues from it, tick for tick (no ticks are skipped: the shell has fast-forwarded to
        the checkpoint's recording position). Without, the generation starts at ``start_ms`` (the
        time the previous one finished). A checkpoint that does not describe a generation is set
        aside and the generation restarts from its beginning.
        """
        genomes = self._open_state()
        if self.done:
            return
        if checkpoint is not None:
            try:
                run = GenerationRun.from_checkpoint(
                    self.settings,
                    self.book,
                    self.generation,
                    int(checkpoint["tick_count"]),
                    checkpoint,
                )
            except (KeyError, TypeError, ValueError) as e:
                log.warning("checkpoint_unusable", generation=self.generation, error=str(e))
            else:
                self._prune_finished()
                self.run = run
                pos = checkpoint.get("recording_position") or {}
                self.first_tick = int(pos.get("first_tick", 0))
                self.resumed_checkpoint = True
                log.info("resumed_mid_generation", generation=self.generation, tick=run.tick_count)
                return
        self._begin(genomes, start_ms)

    def check_seeded(self, latest: int | None) -> None:
        """A state directory resumed with seed genomes must have been started from them.

        Rerunning the same command after a kill resumes; seeding a directory that holds another
        run's generations (``latest`` the newest saved) is refused with :class:`StateError`
        (seeds only start generation 0). Nothing to check without seeds or generations.
        """
        if self.seed_genomes is None or latest is None:
            return
        state = persistence.load_generation(0, state_dir=self.state_dir)
        seeds = [g.gene_hash for g in self.seed_genomes or ()]
        size = self.settings.evolution.population_size if self.evolve else len(seeds)
        seeds = seeds[:size]
        started = (
            [Genome.from_dict(g).gene_hash for g in state["genomes"][: len(seeds)]]
            if state is not None
            else None
        )
        if started != seeds:
            msg = (
                f"{self.state_dir}: already holds generations (latest {latest}) that did not "
                "start from these seed genomes; seed genomes only start a fresh run: use an "
                "empty state directory"
            )
            raise StateError(msg)

    def _breed_from_saved(self, gen: int, genomes: list[Genome]) -> list[Genome]:
        state = persistence.load_generation(gen, state_dir=self.state_dir)
        if state is None:
            msg = f"{self.state_dir}/gen_{gen:04d}.json: missing, but latest.json points at it"
            raise StateError(msg)
        fitness = [float(f) for f in state["fitness_scores"]]
        saved_stats = state.get("stats", {})
        self.oos_z_sum = float(saved_stats.get("luck_oos_z_sum", 0.0) or 0.0)
        self.oos_windows = int(saved_stats.get("luck_oos_windows", 0) or 0)
        self.carried_elites = CarriedElites(
            gen, elite_hashes(genomes, fitness, self.settings.evolution.elite_count)
        )
        if not self.evolve:
            return genomes
        bred = evolve(
            genomes,
            fitness,
            evolve_rng(self.settings.evolution.seed, gen),
            self.settings.evolution,
            gen + 1,
        )
        return bred if self.on_breed is None else self.on_breed(gen + 1, bred)

    def _resume_checkpoint(self, now_ms: int) -> bool:
        if self.generation in persistence.list_generations(self.state_dir):
            return False  # that generation completed (its checkpoint is history, not a resume)
        cp = load_usable_checkpoint(self.generation, self.state_dir, self.settings)
        if cp is None:
            return False
        data = cp.get("checkpoint", cp)
        try:
            run = GenerationRun.from_checkpoint(
                self.settings, self.book, self.generation, int(cp["tick_count"]), data
            )
        except (KeyError, ValueError) as e:
            log.warning("checkpoint_unusable", generation=self.generation, error=str(e))
            return False
        if now_ms >= run.deadline_ms:
            log.warning(
                "checkpoint_expired",
                generation=self.generation,
                note="the generation's trading and settlement time is over; restarting it",
            )
            return False
        missed = 0
        if run.phase is Phase.TRADING:
            # Ticks missed while the service was down are skipped, not replayed in a burst.
            missed = max(0, (now_ms - run.start_ms) // run.tick_ms - run.tick_count)
            run.tick_count = min(run.total_ticks, run.tick_count + missed)
        self._prune_finished()
        self.run = run
        pos = cp.get("recording_position") or {}
        self.first_tick = run.tick_count if missed else int(pos.get("first_tick", 0))
        self.resumed_checkpoint = True
        log.info(
            "resumed_mid_generation",
            generation=self.generation,
            tick=run.tick_count,
            open_positions=run.open_positions(),
        )
        return True

    # -- driving ------------------------------------------------------------------------------

    def next_due_ms(self) -> int | None:
        """When something is next due (``None`` when the run is over)."""
        if self.run is None or self.done:
            return None
        return self.run.next_due_ms()

    def fire_due(self, now_ms: int) -> list[Request]:
        """Run everything due at or before ``now_ms``; returns settlement-check requests."""
        out: list[Request] = []
        while self.run is not None and not self.done:
            due = self.run.next_due_ms()
            if due is None or due > now_ms:
                break
            run = self.run
            for req in run.fire_due(due):
                if req.kind == "checkpoint":
                    if self.checkpoint_every_ticks is None:
                        self.save_checkpoint(due)
                else:
                    out.append(req)
            every = self.checkpoint_every_ticks
            if every and run.tick_count % every == 0 and run.tick_count != self._checkpointed_tick:
                self._checkpointed_tick = run.tick_count
                self.save_checkpoint(due)
            if self.run.phase is Phase.DONE:
                finished = self.run.finished_ms if self.run.finished_ms is not None else due
                self._complete(finished)
        return out

    def tick_now(self, now_ms: int) -> list[Request]:
        """Fire everything due, then (live marks) nothing more; same as :meth:`fire_due`."""
        return self.fire_due(now_ms)

    # -- generation end -----------------------------------------------------------------------

    def _complete(self, now_ms: int) -> None:
        run = self.run
        if run is None:
            return
        ev = self.settings.evolution
        results: list[BotResult] = []
        per_bot: list[dict[str, Any]] = []
        for bot in run.bots:
            account = run.exchange.accounts[bot.bot_id]
            fitness = compute_fitness(
                account,
                ev.fitness,
                min_settled_trades=ev.min_settled_trades,
                inactive_penalty=ev.inactive_penalty_roi_pct,
            )
            results.append(BotResult(bot.genome.id, bot.params.signal_type, fitness, account))
            per_bot.append(bot_result(account, fitness, bot.genome))
        stats = compute_generation_stats(results)
        stats["ticks"] = run.tick_count
        stats["tick_errors"] = run.stats.tick_errors
        # From the accounts, so a generation resumed from a checkpoint counts them too.
        stats["force_closed"] = sum(r["force_closed"] for r in per_bot)
        stats["markets"] = len(self.book.markets)
        stats["trading_start"] = _iso(run.start_ms)
        stats["trading_end"] = _iso(run.end_ms)
        stats["finished"] = _iso(now_ms)
        genomes = [b.genome for b in run.bots]
        fitness_scores = [r.fitness for r in results]
        by_hash = results_by_gene_hash(per_bot)
        elite_rows = self._elite_rows(run.generation)
        if ev.luck_simulations > 0:
            luck = luck_test(
                [run.exchange.accounts[b.bot_id] for b in run.bots],
                [r.fitness for r in results],
                min_settled_trades=ev.min_settled_trades,
                simulations=ev.luck_simulations,
                alpha=ev.luck_alpha,
                rng=luck_rng(ev.seed, run.generation),
                group_of=self._event_of,
                elites=elite_rows,
            )
            stats.update(luck.to_stats())
            if luck.oos_p_value is not None:
                self.oos_z_sum = round(self.oos_z_sum + p_to_z(luck.oos_p_value), 9)
                self.oos_windows += 1
            combined = combined_p(self.oos_z_sum, self.oos_windows)
            stats["luck_oos_windows"] = self.oos_windows
            stats["luck_oos_z_sum"] = self.oos_z_sum
            stats["luck_oos_combined_p_value"] = round(combined, 6) + 0.0
            stats["luck_oos_verdict"] = EDGE if combined < ev.luck_alpha else NO_EDGE
        stats["fitness"] = ev.fitness
        stats["carried_elites_oos"] = carried_elites_summary(
            self.carried_elites, run.generation, by_hash
        )
        ranked = sorted(
            zip(results, run.bots, per_bot, strict=True),
            key=lambda rb: (-rb[0].fitness, rb[1].genome.id),
        )
        top_entries = []
        for result, bot, res in ranked[: ev.hall_of_fame_top_per_generation]:
            account = run.exchange.accounts[bot.bot_id]
            top_entries.append(
                {
                    "genome": bot.genome.to_dict(),
                    "fitness_roi_pct": result.fitness,
                    "total_trades": account.total_trades,
                    "settled_trades": account.n_settled,
                    "win_rate": account.win_rate,
                    "realized_pnl": account.realized_pnl_usd,
                    "fees_paid": account.fees_paid_usd,
                    "generation": run.generation,
                    "signal_type": bot.params.signal_type,
                    "params": bot.params.to_dict(),
                    "roi_bankroll_pct": res["roi_bankroll_pct"],
                    "roi_stake_pct": res["roi_stake_pct"],
                }
            )
        # Write order: the generation file (which records its hall-of-fame entries) and
        # latest.json, then the hall of fame, then the pruning of the generation's checkpoints.
        # A kill between any two leaves a state the next start completes (the hall of fame is
        # caught up from the generation files; stale checkpoints are pruned).
        extra: dict[str, Any] = {persistence.HALL_OF_FAME_ENTRIES_FIELD: top_entries}
        position = self._position(now_ms)
        if position is not None and self.position_sink is None:
            extra["recording_position"] = position
        persistence.save_generation_state(
            run.generation,
            genomes,
            fitness_scores,
            stats,
            state_dir=self.state_dir,
            now_ms=now_ms,
            results=per_bot,
            extra=extra,
            before_write=self._before_write(position),
        )
        persistence.save_hall_of_fame(
            run.generation,
            top_entries,
            state_dir=self.state_dir,
            now_ms=now_ms,
            max_entries=ev.hall_of_fame_size,
            window_results=by_hash,
        )
        rows = leaderboard_rows(results, 5)
        log.info("generation_complete", generation=run.generation, stats=stats, leaderboard=rows)
        self.completed.append(
            GenerationSummary(run.generation, run.start_ms, now_ms, run.tick_count, stats)
        )
        next_genomes = (
            evolve(
                genomes, fitness_scores, evolve_rng(ev.seed, run.generation), ev, run.generation + 1
            )
            if self.evolve
            else genomes
        )
        self.carried_elites = CarriedElites(
            run.generation, elite_hashes(genomes, fitness_scores, ev.elite_count)
        )
        self.generation = run.generation + 1
        if self.done:
            self.run = None
            return
        if self.evolve and self.on_breed is not None:
            next_genomes = self.on_breed(self.generation, next_genomes)
        self._prune_finished()
        self.run = GenerationRun(self.settings, self.book, next_genomes, self.generation, now_ms)
        self.first_tick = 0
        log.info(
            "generation_started",
            generation=self.generation,
            bots=len(next_genomes),
            markets=len(self.book.markets),
        )

    def _elite_rows(self, generation: int) -> list[int]:
        """Population indices of last generation's elites (first bot with each gene hash)."""
        carried = self.carried_elites
        if carried is None or carried.chosen_in >= generation or self.run is None:
            return []
        first: dict[str, int] = {}
        for i, bot in enumerate(self.run.bots):
            first.setdefault(bot.genome.gene_hash, i)
        return [first[h] for h in carried.gene_hashes if h in first]

    def _event_of(self, ticker: str) -> str:
        """A market's event ticker (from the book; else derived from the ticker)."""
        m = self.book.get(ticker)
        return m.event_ticker if m is not None and m.event_ticker else event_group(ticker)

    # -- persistence --------------------------------------------------------------------------

    def save_checkpoint(self, now_ms: int) -> None:
        """Write the running generation's checkpoint (no-op between runs)."""
        if self.run is None or self.run.phase is Phase.DONE:
            return
        data = self.run.checkpoint()
        position = self._position(now_ms)
        if position is not None:
            position["pending_results"] = self.book.pending_determined()
            if self.position_sink is None:
                data["recording_position"] = position
        persistence.save_checkpoint(
            self.run.generation,
            data,
            self.run.tick_count,
            state_dir=self.state_dir,
            now_ms=now_ms,
            before_write=self._before_write(position),
        )

    def _before_write(
        self, position: dict[str, Any] | None
    ) -> Callable[[Path, bytes], None] | None:
        sink = self.position_sink
        if sink is None or position is None:
            return None
        return lambda path, data: sink(path, data, position)

    def _prune_finished(self) -> None:
        """A generation begins: the checkpoints of the ones before it are history."""
        if self.generation > 0:
            persistence.clean_state_dir(self.state_dir, completed_through=self.generation - 1)

    def _position(self, now_ms: int) -> dict[str, Any] | None:
        """The shell's input position plus the running generation's timing, or ``None``."""
        if self.position is None or self.run is None:
            return None
        return {
            **self.position(),
            "t_ms": now_ms,
            "generation_start_ms": self.run.start_ms,
            "first_tick": self.first_tick,
            "ticks": self.run.tick_count,
        }

    def stop(self, now_ms: int) -> None:
        """Graceful stop: checkpoint the generation in progress."""
        self.save_checkpoint(now_ms)
        if self.run is not None:
            log.info(
                "stopped",
                generation=self.run.generation,
                tick=self.run.tick_count,
                phase=self.run.phase.value,
            )


@dataclass(frozen=True, slots=True)
class CarriedElites:
    """The elites chosen by generation ``chosen_in``, by gene hash, best first."""

    chosen_in: int
    gene_hashes: tuple[str, ...]


def elite_hashes(genomes: list[Genome], fitness: list[float], count: int) -> tuple[str, ...]:
    """Gene hashes of the ``count`` genomes :func:`evolve` carries over as elites (deduplicated).

    Same ranking as :func:`~evoarena.evolution.operators.select_elites`.
    """
    out: list[str] = []
    for i in rank_indices(fitness)[: max(0, min(count, len(genomes)))]:
        h = genomes[i].gene_hash
        if h not in out:
            out.append(h)
    return tuple(out)


def results_by_gene_hash(per_bot: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each gene hash's result: the first bot in population order with those genes."""
    out: dict[str, dict[str, Any]] = {}
    for r in per_bot:
        out.setdefault(str(r["gene_hash"]), r)
    return out


def carried_elites_summary(
    carried: CarriedElites | None, generation: int, by_hash: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Out-of-sample result of last generation's elites in this window.

    ``{"chosen_in", "n", "mean_fitness", "mean_roi_bankroll_pct", "mean_roi_stake_pct"}``:
    means over the elites that traded here with their genes unchanged (``null`` when none did:
    generation 0, or no elites).
    """
    rows = []
    if carried is not None and carried.chosen_in < generation:
        rows = [by_hash[h] for h in carried.gene_hashes if h in by_hash]

    def mean(key: str) -> float | None:
        return round(statistics.fmean(float(r[key]) for r in rows), 6) + 0.0 if rows else None

    return {
        "chosen_in": None if carried is None else carried.chosen_in,
        "n": len(rows),
        "mean_fitness": mean("fitness"),
        "mean_roi_bankroll_pct": mean("roi_bankroll_pct"),
        "mean_roi_stake_pct": mean("roi_stake_pct"),
    }


def _iso(ms: int) -> str:
    return iso_ms(ms)
