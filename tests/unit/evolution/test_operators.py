"""Genetic operators: selection, crossover, mutation, elitism, immigrants and evolve()."""

from __future__ import annotations

from collections.abc import Iterator
from random import Random
from typing import Any

import pytest

from evoarena.evolution.genome import GENE_NAMES, Genome
from evoarena.evolution.operators import (
    evolve,
    make_immigrants,
    make_offspring,
    mutate_genes,
    rank_indices,
    select_elites,
    tournament_select,
    uniform_crossover,
)
from evoarena.settings import EvolutionSettings, load_settings


def _settings(**changes: Any) -> EvolutionSettings:
    base = load_settings().evolution.model_dump()
    base.update(changes)
    return EvolutionSettings(**base)


def _population(n: int, seed: int = 1, generation: int = 3) -> list[Genome]:
    rng = Random(seed)
    return [Genome.random(rng, generation) for _ in range(n)]


class RecordingRandom(Random):
    """A Random that remembers what randrange returned."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.drawn: list[int] = []

    def randrange(self, *args: Any, **kwargs: Any) -> int:
        """Record and return the draw."""
        value = super().randrange(*args, **kwargs)
        self.drawn.append(value)
        return value


class ScriptedIdRandom(Random):
    """A Random whose 32-bit draws (genome ids) come from a script first."""

    def __init__(self, seed: int, ids: list[int]) -> None:
        super().__init__(seed)
        self._ids: Iterator[int] = iter(ids)

    def getrandbits(self, k: int) -> int:
        """Scripted values for 32-bit draws while they last."""
        if k == 32:
            nxt = next(self._ids, None)
            if nxt is not None:
                return nxt
        return super().getrandbits(k)


# -- tournament ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
def test_tournament_picks_best_of_sampled(seed: int) -> None:
    """The winner is the fittest of the k genomes that were drawn."""
    genomes = _population(12)
    fitness = [float((7 * i) % 12) for i in range(12)]
    rng = RecordingRandom(seed)
    winner = tournament_select(genomes, fitness, rng, 4)
    assert len(rng.drawn) == 4
    best = max(fitness[i] for i in rng.drawn)
    assert fitness[genomes.index(winner)] == best
    assert genomes.index(winner) in rng.drawn


def test_tournament_ties_go_to_first_in_population() -> None:
    """Among equally fit contestants, the one earliest in the population wins."""
    genomes = _population(6)
    fitness = [1.0] * 6
    for seed in range(20):
        rng = RecordingRandom(seed)
        winner = tournament_select(genomes, fitness, rng, 3)
        assert genomes.index(winner) == min(rng.drawn)


def test_tournament_of_one_is_a_random_pick() -> None:
    """k=1 returns exactly the one genome drawn."""
    genomes = _population(5)
    rng = RecordingRandom(3)
    winner = tournament_select(genomes, [0.0, 1.0, 2.0, 3.0, 4.0], rng, 1)
    assert rng.drawn == [genomes.index(winner)]


def test_tournament_rejects_bad_input() -> None:
    """Zero size, empty populations and mismatched lengths are errors."""
    genomes = _population(3)
    with pytest.raises(ValueError, match="at least 1"):
        tournament_select(genomes, [1.0, 2.0, 3.0], Random(0), 0)
    with pytest.raises(ValueError, match="empty"):
        tournament_select([], [], Random(0), 2)
    with pytest.raises(ValueError, match="3 genomes but 2"):
        tournament_select(genomes, [1.0, 2.0], Random(0), 2)


# -- crossover ----------------------------------------------------------------------------------


def test_crossover_child_draws_every_gene_from_a_parent() -> None:
    """Each child gene equals the same gene of one parent, and both parents contribute."""
    a = Genome(id="aaaaaaaa", generation=1, parent_ids=[], genes=dict.fromkeys(GENE_NAMES, 0.25))
    b = Genome(id="bbbbbbbb", generation=1, parent_ids=[], genes=dict.fromkeys(GENE_NAMES, 0.75))
    child = uniform_crossover(a, b, Random(42), 2)
    assert set(child.genes.values()) == {0.25, 0.75}
    assert list(child.genes) == list(GENE_NAMES)
    assert child.parent_ids == ["aaaaaaaa", "bbbbbbbb"]
    assert child.generation == 2
    assert child.id not in {"aaaaaaaa", "bbbbbbbb"}


def test_crossover_of_a_genome_with_itself_lists_one_parent() -> None:
    """Self-crossover copies the genes and names the parent once."""
    a = _population(1)[0]
    child = uniform_crossover(a, a, Random(1), 4)
    assert child.genes == a.genes
    assert child.parent_ids == [a.id]


def test_offspring_without_crossover_is_a_clone_of_the_first_parent() -> None:
    """crossover_rate=0 and mutation_rate=0 give a's genes with a as the only parent."""
    a, b = _population(2)
    s = _settings(crossover_rate=0.0, mutation_rate=0.0)
    child = make_offspring(a, b, Random(5), s, 9)
    assert child.genes == a.genes
    assert child.parent_ids == [a.id]
    assert child.generation == 9
    assert child.id != a.id


def test_offspring_with_crossover_has_both_parents() -> None:
    """crossover_rate=1 always crosses."""
    a, b = _population(2)
    child = make_offspring(a, b, Random(5), _settings(crossover_rate=1.0, mutation_rate=0.0), 9)
    assert child.parent_ids == [a.id, b.id]
    for name in GENE_NAMES:
        assert child.genes[name] in (a.genes[name], b.genes[name])


# -- mutation -----------------------------------------------------------------------------------


def test_mutation_rate_zero_changes_nothing() -> None:
    """No gene moves when the rate is 0, whatever sigma."""
    g = _population(1)[0]
    assert mutate_genes(g.genes, Random(0), 0.0, 5.0) == g.genes


def test_mutation_sigma_zero_changes_nothing() -> None:
    """A zero-width normal never moves a gene."""
    g = _population(1)[0]
    assert mutate_genes(g.genes, Random(0), 1.0, 0.0) == g.genes


def test_mutation_keeps_genes_in_bounds_and_clamps() -> None:
    """Huge sigma pushes genes to the bounds, never past them."""
    g = _population(1)[0]
    out = mutate_genes(g.genes, Random(3), 1.0, 100.0)
    assert all(0.0 <= v <= 1.0 for v in out.values())
    assert {0.0, 1.0} <= set(out.values())
    assert out != g.genes


def test_mutation_does_not_modify_its_input() -> None:
    """The input dict is left as it was."""
    g = _population(1)[0]
    before = dict(g.genes)
    mutate_genes(g.genes, Random(3), 1.0, 0.5)
    assert g.genes == before


def test_mutation_rate_is_roughly_respected() -> None:
    """With rate 0.25 about a quarter of many genes move."""
    rng = Random(11)
    genes = dict.fromkeys(GENE_NAMES, 0.5)
    moved = 0
    for _ in range(200):
        out = mutate_genes(genes, rng, 0.25, 0.1)
        moved += sum(1 for n in GENE_NAMES if out[n] != 0.5)
    share = moved / (200 * len(GENE_NAMES))
    assert 0.2 < share < 0.3


# -- elitism and immigrants ---------------------------------------------------------------------


def test_elites_are_clones_of_the_best_with_new_ids() -> None:
    """Top-k by fitness, genes unchanged, new ids, parent_ids = [original]."""
    genomes = _population(6)
    fitness = [3.0, 9.0, -1.0, 7.0, 0.0, 2.0]
    elites = select_elites(genomes, fitness, Random(0), 3, 4)
    originals = [genomes[1], genomes[3], genomes[0]]
    assert [e.parent_ids for e in elites] == [[o.id] for o in originals]
    assert [e.genes for e in elites] == [o.genes for o in originals]
    assert all(e.id != o.id for e, o in zip(elites, originals, strict=True))
    assert all(e.generation == 4 for e in elites)


def test_elite_ties_keep_population_order() -> None:
    """Equal fitness ranks earlier genomes first."""
    assert rank_indices([1.0, 5.0, 5.0, 2.0, 5.0]) == [1, 2, 4, 3, 0]


def test_more_elites_than_genomes_returns_all() -> None:
    """The elite count is capped by the population."""
    genomes = _population(2)
    assert len(select_elites(genomes, [1.0, 2.0], Random(0), 5, 1)) == 2


def test_immigrants_are_fresh() -> None:
    """Immigrants have no parents and the requested generation."""
    imm = make_immigrants(Random(0), 4, 7)
    assert len(imm) == 4
    assert all(g.parent_ids == [] and g.generation == 7 for g in imm)
    assert len({g.id for g in imm}) == 4


# -- evolve -------------------------------------------------------------------------------------


def test_evolve_returns_population_with_elites_offspring_immigrants() -> None:
    """Sizes, order, generation and lineage of a bred generation."""
    s = _settings(population_size=20, elite_count=3, immigrant_count=4, tournament_size=3)
    parents = _population(20)
    fitness = [float(i % 7) - 2.0 for i in range(20)]
    out = evolve(parents, fitness, Random(9), s, 4)
    assert len(out) == 20
    assert all(g.generation == 4 for g in out)
    parent_ids = {g.id for g in parents}
    best = [parents[i] for i in rank_indices(fitness)[:3]]
    assert [g.parent_ids for g in out[:3]] == [[b.id] for b in best]
    assert [g.genes for g in out[:3]] == [b.genes for b in best]
    for child in out[3:16]:
        assert 1 <= len(child.parent_ids) <= 2
        assert set(child.parent_ids) <= parent_ids
    assert all(g.parent_ids == [] for g in out[16:])
    ids = [g.id for g in out]
    assert len(set(ids)) == 20
    assert not set(ids) & parent_ids


def test_evolve_fills_population_from_a_smaller_one() -> None:
    """A population smaller than population_size still breeds a full generation."""
    s = _settings(population_size=10, elite_count=2, immigrant_count=1)
    out = evolve(_population(4), [1.0, 2.0, 3.0, 4.0], Random(2), s, 1)
    assert len(out) == 10


def test_evolve_is_deterministic_for_equal_seeds() -> None:
    """Equal RNG states breed identical generations; another seed breeds another one."""
    s = _settings(population_size=15, elite_count=2, immigrant_count=2)
    parents = _population(15)
    fitness = [float(i) for i in range(15)]
    one = [g.to_dict() for g in evolve(parents, fitness, Random(77), s, 2)]
    two = [g.to_dict() for g in evolve(parents, fitness, Random(77), s, 2)]
    other = [g.to_dict() for g in evolve(parents, fitness, Random(78), s, 2)]
    assert one == two
    assert one != other


def test_evolve_does_not_modify_parents() -> None:
    """Parents keep their genes, ids and lineage."""
    parents = _population(8)
    before = [g.to_dict() for g in parents]
    s = _settings(population_size=8, elite_count=2, immigrant_count=2)
    evolve(parents, [float(i) for i in range(8)], Random(0), s, 1)
    assert [g.to_dict() for g in parents] == before


def test_evolve_favours_the_fit() -> None:
    """Offspring descend from the fitter half far more often than from the rest."""
    s = _settings(
        population_size=100, elite_count=0, immigrant_count=0, tournament_size=3, crossover_rate=0.0
    )
    parents = _population(100)
    fitness = [float(i) for i in range(100)]
    out = evolve(parents, fitness, Random(4), s, 1)
    top_half = {g.id for g in parents[50:]}
    from_top = sum(1 for g in out if g.parent_ids[0] in top_half)
    assert from_top > 75


def test_evolve_redraws_colliding_ids() -> None:
    """A child whose drawn id already exists gets a fresh one."""
    parents = _population(3)
    clash = int(parents[0].id, 16)
    rng = ScriptedIdRandom(0, [clash, clash, 0x1234ABCD])
    s = _settings(population_size=3, elite_count=2, immigrant_count=0)
    out = evolve(parents, [3.0, 2.0, 1.0], rng, s, 1)
    ids = [g.id for g in out]
    assert len(set(ids)) == 3
    assert parents[0].id not in ids


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_evolve_rejects_non_finite_fitness(bad: float) -> None:
    """NaN or infinite fitness is a caller error."""
    with pytest.raises(ValueError, match="finite"):
        evolve(
            _population(3),
            [1.0, bad, 2.0],
            Random(0),
            _settings(population_size=3, elite_count=0, immigrant_count=0),
            1,
        )


def test_evolve_rejects_mismatched_lengths() -> None:
    """Every genome needs a fitness."""
    with pytest.raises(ValueError, match="2 genomes but 3"):
        evolve(_population(2), [1.0, 2.0, 3.0], Random(0), _settings(), 1)
