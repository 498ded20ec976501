"""Genome sources: a state directory, a generation file, a JSON list; de-dup, top, errors."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from evoarena.errors import UserError
from evoarena.evolution import persistence
from evoarena.evolution.genome import Genome
from evoarena.evolution.genome_source import load_genome_source, load_genomes

pytestmark = pytest.mark.timeout(30)

NOW = 1_767_225_600_000


def _genomes(n: int, seed: int = 1) -> list[Genome]:
    rng = random.Random(seed)
    return [Genome.random(rng, 0) for _ in range(n)]


def _entry(g: Genome, fitness: float, generation: int = 0) -> dict[str, Any]:
    return {
        "genome": g.to_dict(),
        "fitness_roi_pct": fitness,
        "total_trades": 3,
        "settled_trades": 3,
        "win_rate": 0.5,
        "realized_pnl": 1.0,
        "generation": generation,
        "signal_type": g.decode().signal_type,
        "params": g.decode().to_dict(),
    }


def test_state_dir_gives_hall_of_fame_order_and_top(tmp_path: Path) -> None:
    """A state directory yields its hall of fame, best first; ``top`` keeps the first N."""
    gs = _genomes(4)
    entries = [_entry(g, f) for g, f in zip(gs, [1.0, 9.0, 5.0, -3.0], strict=True)]
    persistence.save_hall_of_fame(0, entries, state_dir=tmp_path, now_ms=NOW)
    persistence.save_generation_state(
        0, gs, [1.0, 9.0, 5.0, -3.0], {"trading_start": "a", "trading_end": "b"},
        state_dir=tmp_path, now_ms=NOW,
    )  # fmt: skip
    src = load_genome_source(tmp_path)
    assert [g.id for g in src.genomes] == [gs[1].id, gs[2].id, gs[0].id, gs[3].id]
    assert src.in_sample_fitness == [9.0, 5.0, 1.0, -3.0]
    assert src.training_windows == [("a", "b")]
    assert [g.id for g in load_genomes(tmp_path, top=2)] == [gs[1].id, gs[2].id]


def test_generation_file_is_ranked_by_fitness_and_deduplicated_by_genes(tmp_path: Path) -> None:
    """A gen file ranks by fitness; a clone (same genes, new id) is kept once, at its best rank."""
    gs = _genomes(3)
    clone = gs[0].clone(random.Random(9), 1)
    pop = [*gs, clone]
    path = persistence.save_generation_state(
        3, pop, [2.0, 7.0, 7.0, 8.0], {}, state_dir=tmp_path, now_ms=NOW
    )
    got = load_genome_source(path)
    assert got.kind == "generation"
    # clone (8.0) first; gs[1] and gs[2] tie at 7.0 and keep file order; gs[0] dropped as dup
    assert [g.id for g in got.genomes] == [clone.id, gs[1].id, gs[2].id]
    assert got.in_sample_fitness == [8.0, 7.0, 7.0]


def test_hof_json_output_and_plain_lists_load(tmp_path: Path) -> None:
    """The ``hof --json`` document, ``{"genomes": [...]}`` and a list of entries all load."""
    gs = _genomes(3)
    hof = persistence.save_hall_of_fame(
        0, [_entry(g, float(i)) for i, g in enumerate(gs)], state_dir=tmp_path, now_ms=NOW
    )
    a = tmp_path / "hof.json"
    a.write_bytes(orjson.dumps(hof))
    assert [g.id for g in load_genomes(a)] == [gs[2].id, gs[1].id, gs[0].id]
    b = tmp_path / "genomes.json"
    b.write_bytes(orjson.dumps({"genomes": [g.to_dict() for g in gs]}))
    assert load_genomes(b) == gs
    c = tmp_path / "entries.json"
    c.write_bytes(orjson.dumps([_entry(gs[1], 4.0), gs[0].to_dict()]))
    src = load_genome_source(c)
    assert src.genomes == [gs[1], gs[0]]
    assert src.in_sample_fitness == [4.0, None]


def test_two_genomes_with_one_id_get_distinct_ids(tmp_path: Path) -> None:
    """Different genes under one id (merged same-seed runs): the later one is renamed."""
    a, b = _genomes(2)
    b.id = a.id
    path = tmp_path / "g.json"
    path.write_bytes(orjson.dumps([a.to_dict(), b.to_dict()]))
    got = load_genomes(path)
    assert got[0].id == a.id
    assert got[1].id == b.gene_hash[:8] != a.id
    assert got[1].parent_ids == [a.id]
    assert got[1].genes == b.genes


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"x": 1}', "not a genome source"),
        (b"[]", "list of genomes is empty"),
        (b'[{"id": "abc"}]', "[0]: genome"),
        (b'{"genomes": [], "fitness_scores": []}', "non-empty"),
        (b'{"entries": [], "updated_at": 1}', "not a valid hall of fame"),
    ],
)
def test_bad_files_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    """Every malformed source is a UserError naming the file and the problem."""
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(UserError, match=r"bad\.json") as err:
        load_genomes(path)
    assert message in str(err.value)


def test_missing_source_and_empty_state_dir(tmp_path: Path) -> None:
    """A path that does not exist, and a state directory without a hall of fame, are errors."""
    with pytest.raises(UserError, match="no such state directory or genome file"):
        load_genomes(tmp_path / "nope")
    with pytest.raises(UserError, match=r"no hall_of_fame\.json"):
        load_genomes(tmp_path)
    with pytest.raises(UserError, match="--top"):
        load_genomes(tmp_path, top=0)
