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
from evoarena.evolution.genome import Genome
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
        self.carried_elites: CarriedElites | None = None
        """The previous generation's elites (by gene hash), which trade this window unchanged."""
        self.oos_z_sum = 0.0
        self.oos_windows = 0
        """Walk-forward luck test so far: Σ Φ⁻¹(1 − p) of the elites' out-of-sample windows."""

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
        saved_stats = state.get("stats", {})
        self.oos_z_sum = float(saved_stats.get("luck_oos_z_sum", 0.0) or 0.0)
        self.oos_windows = int(saved_stats.get("luck_oos_windows", 0) or 0)
        self.carried_elites = CarriedElites(
            gen, elite_hashes(genomes, fitness, self.settings.evolution.elite_count)
        )
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
            for req in self.run.fire_due(due):
                if req.kind == "checkpoint":
                    self.save_checkpoint(due)
                else:
                    out.append(req)
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
        # The hall of fame first: once gen_N/latest.json exist a restart moves on to N+1.
        persistence.save_hall_of_fame(
            run.generation,
            top_entries,
            state_dir=self.state_dir,
            now_ms=now_ms,
            max_entries=ev.hall_of_fame_size,
            window_results=by_hash,
        )
        persistence.save_generation_state(
            run.generation,
            genomes,
            fitness_scores,
            stats,
            state_dir=self.state_dir,
            now_ms=now_ms,
            results=per_bot,
        )
        rows = leaderboard_rows(results, 5)
        log.info("generation_complete", generation=run.generation, stats=stats, leaderboard=rows)
        self.completed.append(
            GenerationSummary(run.generation, run.start_ms, now_ms, run.tick_count, stats)
        )
        next_genomes = evolve(
            genomes, fitness_scores, evolve_rng(ev.seed, run.generation), ev, run.generation + 1
        )
        self.carried_elites = CarriedElites(
            run.generation, elite_hashes(genomes, fitness_scores, ev.elite_count)
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
