"""Genetic operators: tournament selection, uniform crossover, Gaussian mutation, elitism,
immigrants, and :func:`evolve`, which breeds a whole generation from them.

Every random choice is drawn from the ``random.Random`` passed in, in a fixed order, so the same
population, fitness and RNG state always breed the same next generation (ids included).
Sizes and rates come from :class:`~evoarena.settings.EvolutionSettings`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from random import Random

from evoarena.evolution.genome import GENE_NAMES, Genome, new_genome_id
from evoarena.settings import EvolutionSettings


def _check_population(genomes: Sequence[Genome], fitness: Sequence[float]) -> None:
    if not genomes:
        msg = "cannot breed from an empty population"
        raise ValueError(msg)
    if len(genomes) != len(fitness):
        msg = f"{len(genomes)} genomes but {len(fitness)} fitness scores"
        raise ValueError(msg)
    for i, f in enumerate(fitness):
        if not math.isfinite(f):
            msg = f"fitness of genome {genomes[i].id} is not a finite number: {f!r}"
            raise ValueError(msg)


def rank_indices(fitness: Sequence[float]) -> list[int]:
    """Indices from best to worst fitness; equal fitness keeps population order."""
    return sorted(range(len(fitness)), key=lambda i: (-fitness[i], i))


def tournament_select(
    genomes: Sequence[Genome], fitness: Sequence[float], rng: Random, k: int
) -> Genome:
    """The fittest of ``k`` genomes drawn with replacement (``rng.randrange``, ``k`` times).

    Ties go to the contestant that comes first in the population, so the result depends only
    on the draws.
    """
    if k < 1:
        msg = f"tournament size must be at least 1, was {k}"
        raise ValueError(msg)
    _check_population(genomes, fitness)
    n = len(genomes)
    best = rng.randrange(n)
    for _ in range(k - 1):
        i = rng.randrange(n)
        if fitness[i] > fitness[best] or (fitness[i] == fitness[best] and i < best):
            best = i
    return genomes[best]


def uniform_crossover(a: Genome, b: Genome, rng: Random, generation: int) -> Genome:
    """A child taking each gene from ``a`` or ``b`` with equal probability; parents ``[a, b]``.

    The child's id is drawn first, then one ``rng.random()`` per gene in :data:`GENE_NAMES` order.
    """
    child_id = new_genome_id(rng)
    genes = {name: (a.genes[name] if rng.random() < 0.5 else b.genes[name]) for name in GENE_NAMES}
    parents = list(dict.fromkeys([a.id, b.id]))
    return Genome(id=child_id, generation=generation, parent_ids=parents, genes=genes)


def mutate_genes(
    genes: dict[str, float], rng: Random, rate: float, sigma: float
) -> dict[str, float]:
    """A copy of ``genes`` where each gene, with probability ``rate``, moves by N(0, ``sigma``).

    Results are clamped to [0, 1]. One ``rng.random()`` is drawn per gene whatever the rate, so a
    rate of 0 changes nothing.
    """
    out: dict[str, float] = {}
    for name in GENE_NAMES:
        value = genes[name]
        if rng.random() < rate:
            value = min(1.0, max(0.0, value + rng.normalvariate(0.0, sigma)))
        out[name] = value
    return out


def make_offspring(
    a: Genome, b: Genome, rng: Random, settings: EvolutionSettings, generation: int
) -> Genome:
    """Crossover (with probability ``crossover_rate``) or a clone of ``a``, then mutation.

    A crossover child's ``parent_ids`` are both parents; a clone's is ``[a.id]`` only, since
    ``b`` contributed nothing to it.
    """
    if rng.random() < settings.crossover_rate:
        child = uniform_crossover(a, b, rng, generation)
    else:
        child = a.clone(rng, generation)
    child.genes = mutate_genes(child.genes, rng, settings.mutation_rate, settings.mutation_sigma)
    return child


def select_elites(
    genomes: Sequence[Genome], fitness: Sequence[float], rng: Random, count: int, generation: int
) -> list[Genome]:
    """Clones (new ids, ``parent_ids = [original id]``, genes unchanged) of the ``count`` best.

    Equal fitness keeps population order. At most ``len(genomes)`` elites are returned.
    """
    _check_population(genomes, fitness)
    return [genomes[i].clone(rng, generation) for i in rank_indices(fitness)[:count]]


def make_immigrants(rng: Random, count: int, generation: int) -> list[Genome]:
    """``count`` fresh random genomes (no parents)."""
    return [Genome.random(rng, generation) for _ in range(count)]


def evolve(
    genomes: list[Genome],
    fitness: list[float],
    rng: Random,
    settings: EvolutionSettings,
    next_generation: int,
) -> list[Genome]:
    """Breed exactly ``settings.population_size`` genomes for ``next_generation``.

    Order: elites (best first), offspring (two tournament winners → :func:`make_offspring`),
    immigrants. Every genome has ``generation = next_generation``. Ids are unique within the
    result and distinct from the parents' (a colliding id is redrawn from ``rng``).
    ``genomes`` may differ in size from ``population_size`` (e.g. after a config change).
    """
    _check_population(genomes, fitness)
    size = settings.population_size
    elites = select_elites(genomes, fitness, rng, min(settings.elite_count, size), next_generation)
    n_immigrants = min(settings.immigrant_count, size - len(elites))
    n_offspring = size - len(elites) - n_immigrants
    offspring = []
    for _ in range(n_offspring):
        a = tournament_select(genomes, fitness, rng, settings.tournament_size)
        b = tournament_select(genomes, fitness, rng, settings.tournament_size)
        offspring.append(make_offspring(a, b, rng, settings, next_generation))
    immigrants = make_immigrants(rng, n_immigrants, next_generation)
    out = [*elites, *offspring, *immigrants]
    seen = {g.id for g in genomes}
    for g in out:
        while g.id in seen:
            g.id = new_genome_id(rng)
        seen.add(g.id)
    return out
