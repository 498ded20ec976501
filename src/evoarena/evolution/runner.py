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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from evoarena.clock import iso_ms
from evoarena.engine.book import MarketBook
from evoarena.errors import StateError
from evoarena.evolution import persistence
from evoarena.evolution.fitness import evaluate_fitness
from evoarena.evolution.generation import GenerationRun, Phase, Request
from evoarena.evolution.genome import Genome
from evoarena.evolution.operators import evolve
from evoarena.evolution.stats import BotResult, compute_generation_stats, leaderboard_rows
from evoarena.settings import Settings

log = structlog.get_logger(__name__)


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


class EvolutionRunner:
    """Generation after generation over one shared book."""

    def __init__(
        self,
        settings: Settings,
        book: MarketBook,
        *,
        max_generations: int | None = None,
    ) -> None:
        self.settings = settings
        self.book = book
        self.state_dir = Path(settings.state.dir)
        self.max_generations = max_generations
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

    @property
    def done(self) -> bool:
        """True once ``max_generations`` generations have completed in this process."""
        return self.max_generations is not None and len(self.completed) >= self.max_generations

    # -- start --------------------------------------------------------------------------------

    def start(self, now_ms: int, *, resume_checkpoint: bool = False) -> None:
        """Resume from the state directory, or start fresh, with a generation beginning now."""
        persistence.ensure_state_dir(self.state_dir)
        seed = self.settings.evolution.seed
        latest = persistence.load_latest_state(state_dir=self.state_dir)
        if latest is None:
            size = self.settings.evolution.population_size
            rng = genesis_rng(seed)
            genomes = [Genome.random(rng, 0) for _ in range(size)]
            self.generation = 0
            log.info("starting_fresh", population=size, seed=seed)
        else:
            gen, saved = latest
            genomes = self._breed_from_saved(gen, saved)
            self.generation = gen + 1
            self.resumed_from = gen
            log.info("resumed", from_generation=gen, generation=self.generation)
        if resume_checkpoint and self._resume_checkpoint(now_ms):
            return
        self.run = GenerationRun(self.settings, self.book, genomes, self.generation, now_ms)
        log.info(
            "generation_started",
            generation=self.generation,
            bots=len(genomes),
            markets=len(self.book.markets),
            categories=self.run.categories,
        )

    def _breed_from_saved(self, gen: int, genomes: list[Genome]) -> list[Genome]:
        state = persistence.load_generation(gen, state_dir=self.state_dir)
        if state is None:
            msg = f"{self.state_dir}/gen_{gen:04d}.json: missing, but latest.json points at it"
            raise StateError(msg)
        fitness = [float(f) for f in state["fitness_scores"]]
        return evolve(
            genomes,
            fitness,
            evolve_rng(self.settings.evolution.seed, gen),
            self.settings.evolution,
            gen + 1,
        )

    def _resume_checkpoint(self, now_ms: int) -> bool:
        if self.generation in persistence.list_generations(self.state_dir):
            return False  # that generation completed (its checkpoint is history, not a resume)
        cp = persistence.load_checkpoint(self.generation, state_dir=self.state_dir)
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
        if run.phase is Phase.TRADING:
            # Ticks missed while the service was down are skipped, not replayed in a burst.
            missed = max(0, (now_ms - run.start_ms) // run.tick_ms - run.tick_count)
            run.tick_count = min(run.total_ticks, run.tick_count + missed)
        self.run = run
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
        for bot in run.bots:
            account = run.exchange.accounts[bot.bot_id]
            fitness = evaluate_fitness(
                account,
                min_settled_trades=ev.min_settled_trades,
                inactive_penalty=ev.inactive_penalty_roi_pct,
            )
            results.append(BotResult(bot.genome.id, bot.params.signal_type, fitness, account))
        stats = compute_generation_stats(results)
        stats["ticks"] = run.tick_count
        stats["tick_errors"] = run.stats.tick_errors
        stats["force_closed"] = run.stats.force_closed
        stats["markets"] = len(self.book.markets)
        stats["trading_start"] = _iso(run.start_ms)
        stats["trading_end"] = _iso(run.end_ms)
        stats["finished"] = _iso(now_ms)
        genomes = [b.genome for b in run.bots]
        fitness_scores = [r.fitness for r in results]
        ranked = sorted(
            zip(results, run.bots, strict=True), key=lambda rb: (-rb[0].fitness, rb[1].genome.id)
        )
        top_entries = []
        for result, bot in ranked[: ev.hall_of_fame_top_per_generation]:
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
                }
            )
        # The hall of fame first: once gen_N/latest.json exist a restart moves on to N+1.
        persistence.save_hall_of_fame(
            run.generation,
            top_entries,
            state_dir=self.state_dir,
            now_ms=now_ms,
            max_entries=ev.hall_of_fame_size,
        )
        persistence.save_generation_state(
            run.generation,
            genomes,
            fitness_scores,
            stats,
            state_dir=self.state_dir,
            now_ms=now_ms,
        )
        rows = leaderboard_rows(results, 5)
        log.info("generation_complete", generation=run.generation, stats=stats, leaderboard=rows)
        self.completed.append(
            GenerationSummary(run.generation, run.start_ms, now_ms, run.tick_count, stats)
        )
        next_genomes = evolve(
            genomes, fitness_scores, evolve_rng(ev.seed, run.generation), ev, run.generation + 1
        )
        self.generation = run.generation + 1
        if self.done:
            self.run = None
            return
        self.run = GenerationRun(self.settings, self.book, next_genomes, self.generation, now_ms)
        log.info(
            "generation_started",
            generation=self.generation,
            bots=len(next_genomes),
            markets=len(self.book.markets),
        )

    # -- persistence --------------------------------------------------------------------------

    def save_checkpoint(self, now_ms: int) -> None:
        """Write the running generation's checkpoint (no-op between runs)."""
        if self.run is None or self.run.phase is Phase.DONE:
            return
        persistence.save_checkpoint(
            self.run.generation,
            self.run.checkpoint(),
            self.run.tick_count,
            state_dir=self.state_dir,
            now_ms=now_ms,
        )

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


def _iso(ms: int) -> str:
    return iso_ms(ms)
