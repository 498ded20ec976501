"""The gene hash is a genome's identity: content, not id or lineage."""

from __future__ import annotations

import random

from evoarena.evolution.genome import GENE_NAMES, Genome, genes_hash


def test_clone_keeps_the_hash_but_not_the_id() -> None:
    """A clone (new id, new lineage) is the same genome by content."""
    rng = random.Random(1)
    g = Genome.random(rng)
    c = g.clone(rng, generation=3)
    assert c.id != g.id
    assert c.gene_hash == g.gene_hash


def test_any_gene_change_changes_the_hash() -> None:
    """Every gene takes part, to the last bit of its float."""
    g = Genome.random(random.Random(2))
    for name in GENE_NAMES:
        genes = dict(g.genes)
        genes[name] = genes[name] / 2 if genes[name] else 0.5
        assert genes_hash(genes) != g.gene_hash, name
    genes = dict(g.genes)
    genes["signal_type"] = float.fromhex(genes["signal_type"].hex()) + 2**-52
    assert genes_hash(genes) != g.gene_hash


def test_hash_survives_a_json_round_trip_and_key_order() -> None:
    """The stored form hashes the same; dict order does not matter."""
    g = Genome.random(random.Random(3))
    back = Genome.from_dict(g.to_dict())
    assert back.gene_hash == g.gene_hash
    reordered = dict(reversed(list(g.genes.items())))
    assert genes_hash(reordered) == g.gene_hash
    assert len(g.gene_hash) == 16
    int(g.gene_hash, 16)
