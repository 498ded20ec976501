"""Properties of the genetic operators, generation persistence and the hall of fame."""

from __future__ import annotations

import tempfile
from pathlib import Path
from random import Random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from evoarena.evolution.genome import GENE_NAMES, Genome
from evoarena.evolution.hall_of_fame import merge_hall_of_fame
from evoarena.evolution.operators import evolve, mutate_genes, uniform_crossover
from evoarena.evolution.persistence import (
    load_generation,
    load_latest_state,
    save_generation_state,
)
from evoarena.settings import EvolutionSettings, load_settings

_BASE = load_settings().evolution.model_dump()
T = "2024-01-01T00:00:00.000000+00:00"

seeds = st.integers(min_value=0, max_value=2**32 - 1)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
fitness_values = st.floats(min_value=-100.0, max_value=1000.0, allow_nan=False)


@st.composite
def evolution_settings(draw: st.DrawFn) -> EvolutionSettings:
    """Valid settings for small populations."""
    size = draw(st.integers(min_value=2, max_value=25))
    elites = draw(st.integers(min_value=0, max_value=size))
    immigrants = draw(st.integers(min_value=0, max_value=size - elites))
    return EvolutionSettings(
        **{
            **_BASE,
            "population_size": size,
            "elite_count": elites,
            "immigrant_count": immigrants,
            "tournament_size": draw(st.integers(min_value=1, max_value=8)),
            "crossover_rate": draw(unit),
            "mutation_rate": draw(unit),
            "mutation_sigma": draw(st.floats(min_value=0.0, max_value=3.0)),
        }
    )


def _genome(seed: int, generation: int = 0) -> Genome:
    return Genome.random(Random(seed), generation)


@settings(max_examples=60, deadline=None)
@given(seed=seeds, rate=unit, sigma=st.floats(min_value=0.0, max_value=50.0))
def test_mutation_keeps_genes_in_unit_interval(seed: int, rate: float, sigma: float) -> None:
    """Whatever the rate and sigma, mutated genes stay in [0, 1]."""
    out = mutate_genes(_genome(seed).genes, Random(seed + 1), rate, sigma)
    assert list(out) == list(GENE_NAMES)
    assert all(0.0 <= v <= 1.0 for v in out.values())


@settings(max_examples=60, deadline=None)
@given(a=seeds, b=seeds, seed=seeds)
def test_crossover_genes_come_from_parents(a: int, b: int, seed: int) -> None:
    """Every child gene is the same gene of one parent."""
    pa, pb = _genome(a), _genome(b)
    child = uniform_crossover(pa, pb, Random(seed), 1)
    for name in GENE_NAMES:
        assert child.genes[name] in (pa.genes[name], pb.genes[name])


@settings(max_examples=40, deadline=None)
@given(
    s=evolution_settings(),
    n_parents=st.integers(min_value=1, max_value=25),
    seed=seeds,
    data=st.data(),
)
def test_evolve_shape(s: EvolutionSettings, n_parents: int, seed: int, data: st.DataObject) -> None:
    """Size, generation, unique ids, gene bounds, elites and immigrants in their places."""
    parents = [_genome(seed + i, 3) for i in range(n_parents)]
    fitness = data.draw(st.lists(fitness_values, min_size=n_parents, max_size=n_parents))
    out = evolve(parents, fitness, Random(seed), s, 4)
    assert len(out) == s.population_size
    assert all(g.generation == 4 for g in out)
    ids = [g.id for g in out]
    assert len(set(ids)) == len(ids)
    assert not set(ids) & {p.id for p in parents}
    assert all(0.0 <= v <= 1.0 for g in out for v in g.genes.values())
    n_elites = min(s.elite_count, n_parents)
    best = max(fitness)
    if n_elites:
        first = out[0]
        assert len(first.parent_ids) == 1
        source = next(p for p in parents if p.id == first.parent_ids[0])
        assert fitness[parents.index(source)] == best
        assert first.genes == source.genes
    n_imm = min(s.immigrant_count, s.population_size - n_elites)
    tail = out[len(out) - n_imm :] if n_imm else []
    assert all(g.parent_ids == [] for g in tail)
    assert all(g.parent_ids for g in out[: len(out) - n_imm])


@settings(max_examples=25, deadline=None)
@given(s=evolution_settings(), seed=seeds)
def test_evolve_is_deterministic(s: EvolutionSettings, seed: int) -> None:
    """Equal inputs and RNG seeds breed equal generations."""
    parents = [_genome(seed + i) for i in range(10)]
    fitness = [float((seed + 7 * i) % 13) for i in range(10)]
    one = evolve(parents, fitness, Random(seed), s, 1)
    two = evolve(parents, fitness, Random(seed), s, 1)
    assert [g.to_dict() for g in one] == [g.to_dict() for g in two]


@settings(max_examples=20, deadline=None)
@given(
    generation=st.integers(min_value=0, max_value=20_000),
    seed=seeds,
    n=st.integers(min_value=1, max_value=8),
    now_ms=st.integers(min_value=0, max_value=4_102_444_800_000),
    data=st.data(),
)
def test_generation_round_trip(
    generation: int, seed: int, n: int, now_ms: int, data: st.DataObject
) -> None:
    """Saved genomes and fitness load back unchanged, through both loaders."""
    genomes = [_genome(seed + i, generation) for i in range(n)]
    fitness = data.draw(
        st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=n, max_size=n)
    )
    with tempfile.TemporaryDirectory() as d:
        state = Path(d)
        save_generation_state(
            generation, genomes, fitness, {"x": 1}, state_dir=state, now_ms=now_ms
        )
        loaded = load_generation(generation, state_dir=state)
        assert loaded is not None
        assert [Genome.from_dict(g) for g in loaded["genomes"]] == genomes
        assert loaded["fitness_scores"] == fitness
        assert load_latest_state(state_dir=state) == (generation, genomes)


def _entry(gid: int, fitness: float, generation: int) -> dict[str, Any]:
    g = _genome(gid, generation)
    g.id = f"{gid:08x}"
    return {
        "genome": g.to_dict(),
        "fitness_roi_pct": fitness,
        "total_trades": 1,
        "settled_trades": 1,
        "win_rate": 0.0,
        "realized_pnl": 0.0,
        "generation": generation,
        "signal_type": "value",
        "params": {},
    }


batches = st.lists(
    st.lists(st.tuples(st.integers(min_value=0, max_value=12), fitness_values), max_size=8),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(batches=batches, cap=st.integers(min_value=1, max_value=6))
def test_hall_of_fame_invariants(batches: list[list[tuple[int, float]]], cap: int) -> None:
    """Capped, sorted, unique genes, first choice per genome kept, best_ever = best kept.

    The model: the same genes (here: the same id) keep the result of the call that first
    chose them (within one call, the fitter; the first on a tie); cut to the best ``cap``; an
    entry cut once is forgotten unless its genes are best_ever's, whose result comes back.
    """
    hof: dict[str, Any] | None = None
    model: dict[str, float] = {}
    best: tuple[str, float] | None = None
    for gen, batch in enumerate(batches):
        entries = [_entry(gid, f, gen) for gid, f in batch]
        hof = merge_hall_of_fame(hof, gen, entries, updated_at=T, max_entries=cap)
        before = set(model)
        for gid, f in batch:
            key = f"{gid:08x}"
            if key in before:
                continue
            if key not in model and best is not None and best[0] == key:
                f = best[1]  # best_ever's genes come back with its result
            if key not in model or f > model[key]:
                model[key] = f
        for key, f in sorted(model.items(), key=lambda x: (-x[1], x[0])):
            if key not in before and (best is None or f > best[1]):
                best = (key, f)
        model = dict(sorted(model.items(), key=lambda x: (-x[1], x[0]))[:cap])
        assert hof is not None
        got = [(e["genome"]["id"], e["fitness_roi_pct"]) for e in hof["entries"]]
        assert len(got) <= cap
        assert len({gid for gid, _ in got}) == len(got)
        assert len({e["gene_hash"] for e in hof["entries"]}) == len(got)
        assert got == sorted(got, key=lambda x: (-x[1], x[0]))
        assert got == list(model.items())
        if best is not None:
            assert hof["best_ever"]["fitness_roi_pct"] == best[1]
            assert all(hof["best_ever"]["fitness_roi_pct"] >= f for _, f in got)
        else:
            assert hof["best_ever"] is None
