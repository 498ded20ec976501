"""Merging halls of fame of independent runs: gene-hash de-dup, origin, order, best ever."""

from __future__ import annotations

import random
from typing import Any

import pytest

from evoarena.evolution.genome import Genome
from evoarena.evolution.hall_of_fame import merge_hall_of_fame, validate_hall_of_fame
from evoarena.evolution.hof_merge import merge_halls

pytestmark = pytest.mark.timeout(30)


def _entry(g: Genome, fitness: float, generation: int = 0) -> dict[str, Any]:
    return {
        "genome": g.to_dict(), "fitness_roi_pct": fitness, "total_trades": 3,
        "settled_trades": 3, "win_rate": 0.5, "realized_pnl": fitness, "generation": generation,
        "signal_type": g.decode().signal_type, "params": g.decode().to_dict(),
    }  # fmt: skip


def _hof(entries: list[dict[str, Any]], at: str, gen: int) -> dict[str, Any]:
    return merge_hall_of_fame(None, gen, entries, updated_at=at)


def test_merge_dedups_by_genes_keeps_origin_and_orders_best_first() -> None:
    """The same genes under two ids in two runs count once (the better entry, its origin)."""
    rng = random.Random(3)
    a1, a2, b1 = (Genome.random(rng, 0) for _ in range(3))
    twin = a2.clone(rng, 4)  # same genes as a2, another id, in run b
    run_a = _hof([_entry(a1, 5.0), _entry(a2, 1.0)], "2026-03-02T10:00:00+00:00", 3)
    run_b = _hof([_entry(twin, 7.0, 4), _entry(b1, -2.0)], "2026-03-03T10:00:00+00:00", 9)
    merged = merge_halls([("runs/a", run_a), ("runs/b", run_b)], max_entries=20)
    validate_hall_of_fame(merged)
    got = [(e["genome"]["id"], e["origin_run"], e["fitness_roi_pct"]) for e in merged["entries"]]
    assert got == [(twin.id, "runs/b", 7.0), (a1.id, "runs/a", 5.0), (b1.id, "runs/b", -2.0)]
    assert merged["best_ever"]["genome"]["id"] == twin.id
    assert merged["best_ever"]["origin_run"] == "runs/b"
    assert merged["latest_generation"] == 9
    assert merged["updated_at"] == "2026-03-03T10:00:00+00:00"
    top2 = merge_halls([("runs/a", run_a), ("runs/b", run_b)], max_entries=2)
    assert [e["genome"]["id"] for e in top2["entries"]] == [twin.id, a1.id]
    # merging a merge keeps the first origin
    again = merge_halls([("merged", merged)], max_entries=20)
    assert [e["origin_run"] for e in again["entries"]] == ["runs/b", "runs/a", "runs/b"]


def test_one_id_with_different_genes_in_two_runs_stays_two_genomes() -> None:
    """Runs with the same seed reuse ids for different genes: both entries are kept."""
    rng = random.Random(4)
    a, b = Genome.random(rng, 0), Genome.random(rng, 0)
    b.id = a.id
    merged = merge_halls(
        [("x", _hof([_entry(a, 1.0)], "2026-03-02T10:00:00+00:00", 0)),
         ("y", _hof([_entry(b, 2.0)], "2026-03-02T10:00:00+00:00", 0))],
        max_entries=5,
    )  # fmt: skip
    assert [e["origin_run"] for e in merged["entries"]] == ["y", "x"]
    with pytest.raises(ValueError, match="nothing to merge"):
        merge_halls([], max_entries=5)
