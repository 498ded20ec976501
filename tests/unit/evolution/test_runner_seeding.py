"""Seeded starts and the fixed-population mode of the runner (``evaluate``, ``--seed-genomes``)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from test_runner import MIN, T0, _market
from test_runner import _settings as _runner_settings

from evoarena.engine.book import MarketBook
from evoarena.errors import StateError
from evoarena.evolution import persistence
from evoarena.evolution.genome import Genome
from evoarena.evolution.runner import EvolutionRunner, genesis_rng, initial_population
from evoarena.settings import Settings

pytestmark = pytest.mark.timeout(30)


def _settings(tmp_path: Path, **trading: int) -> Settings:
    """test_runner's settings with the default settlement margin."""
    return _runner_settings(tmp_path, **{"settlement_margin_secs": 1800, **trading})


def _seeds(n: int) -> list[Genome]:
    rng = random.Random(77)
    return [Genome.random(rng, 4) for _ in range(n)]


def test_initial_population_without_seeds_is_the_unseeded_start() -> None:
    """No seeds: exactly the genomes an unseeded start draws from the genesis RNG."""
    rng = genesis_rng(3)
    plain = [Genome.random(rng, 0) for _ in range(6)]
    assert initial_population(3, 6) == plain


def test_initial_population_puts_seeds_first_and_pads_deterministically() -> None:
    """Seeds come first, unchanged; the padding is the genesis RNG's draws (ids never clash)."""
    seeds = _seeds(2)
    pop = initial_population(3, 6, seeds)
    assert pop[:2] == seeds
    assert pop[2:] == initial_population(3, 4)
    assert initial_population(3, 6, seeds) == pop
    assert len({g.id for g in pop}) == 6
    clash = Genome(id=initial_population(3, 1)[0].id, generation=0, parent_ids=[],
                   genes=dict(seeds[0].genes))  # fmt: skip
    padded = initial_population(3, 3, [clash])
    assert len({g.id for g in padded}) == 3
    assert initial_population(3, 1, seeds) == seeds[:1]


def test_seeded_runner_starts_from_the_seeds_and_then_breeds(tmp_path: Path) -> None:
    """Generation 0 holds the seeds (padded); generation 1 is bred as usual."""
    s = _settings(tmp_path, settlement_wait_secs=120)
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "M1", T0 + 9 * MIN)
    seeds = _seeds(3)
    runner = EvolutionRunner(s, book, max_generations=2, seed_genomes=seeds)
    runner.start(T0)
    assert runner.run is not None
    assert [b.genome for b in runner.run.bots] == initial_population(5, 10, seeds)
    runner.fire_due(T0 + 10 * 3_600_000)
    gen1 = persistence.load_generation(1, state_dir=Path(s.state.dir))
    assert gen1 is not None
    assert {g["id"] for g in gen1["genomes"]}.isdisjoint({g.id for g in seeds})


def test_seeding_refuses_a_state_dir_with_generations(tmp_path: Path) -> None:
    """Seed genomes only start a fresh run."""
    s = _settings(tmp_path, settlement_wait_secs=120)
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "M1", T0 + 9 * MIN)
    first = EvolutionRunner(s, book, max_generations=1)
    first.start(T0)
    first.fire_due(T0 + 3_600_000)
    again = EvolutionRunner(s, book, seed_genomes=_seeds(2))
    with pytest.raises(StateError, match="already holds generations"):
        again.start(T0 + 4_000_000)


def test_fixed_population_trades_the_same_genomes_every_window(tmp_path: Path) -> None:
    """evolve=False: no padding, no breeding; every generation file holds the same genomes."""
    s = _settings(tmp_path, settlement_wait_secs=120)
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "M1", T0 + 9 * MIN)
    _market(book, "M2", T0 + 50 * MIN, mid_cents=70)
    seeds = _seeds(3)
    runner = EvolutionRunner(s, book, max_generations=3, seed_genomes=seeds, evolve=False)
    runner.start(T0)
    runner.fire_due(T0 + 10 * 3_600_000)
    assert [g.generation for g in runner.completed] == [0, 1, 2]
    for n in (0, 1, 2):
        doc = persistence.load_generation(n, state_dir=Path(s.state.dir))
        assert doc is not None
        assert doc["genomes"] == [g.to_dict() for g in seeds]
    with pytest.raises(ValueError, match="needs seed_genomes"):
        EvolutionRunner(s, book, evolve=False)
