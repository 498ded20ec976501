"""Merging the halls of fame of independent runs (the seeds' runner: "Running multiple
independent evolutions in parallel … Merging hall of fame results post-hoc").

:func:`merge_halls` takes each run's ``hall_of_fame.json`` content and returns one hall of fame in
the same format:

* every entry (and each run's ``best_ever``) is tagged with ``origin_run``, the run it came from
  (an entry that already has one, from an earlier merge, keeps it);
* entries with equal genes (:attr:`~evoarena.evolution.genome.Genome.gene_hash`) are one genome:
  the entry ranked best by :func:`~evoarena.evolution.hall_of_fame.entry_sort_key` is kept;
* entries are ordered best first by that key and the best ``max_entries`` are kept;
* ``best_ever`` is the best of the runs' ``best_ever`` entries; ``latest_generation`` and
  ``updated_at`` are the newest of the runs' (so merging the same files gives the same bytes).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from evoarena.evolution.hall_of_fame import entry_sort_key, parse_genome

ORIGIN_FIELD = "origin_run"


def _tagged(entry: Mapping[str, Any], origin: str) -> dict[str, Any]:
    out = copy.deepcopy(dict(entry))
    out.setdefault(ORIGIN_FIELD, origin)
    return out


def merge_halls(
    halls: Sequence[tuple[str, Mapping[str, Any]]], *, max_entries: int
) -> dict[str, Any]:
    """One hall of fame from ``(origin, validated hall of fame)`` pairs (see the module rules)."""
    if not halls:
        msg = "nothing to merge"
        raise ValueError(msg)
    if max_entries < 1:
        msg = f"max_entries must be at least 1, was {max_entries}"
        raise ValueError(msg)
    by_genes: dict[str, dict[str, Any]] = {}
    bests: list[dict[str, Any]] = []
    for origin, hof in halls:
        for entry in hof["entries"]:
            item = _tagged(entry, origin)
            key = parse_genome(item["genome"]).gene_hash
            kept = by_genes.get(key)
            if kept is None or entry_sort_key(item) < entry_sort_key(kept):
                by_genes[key] = item
        if hof["best_ever"] is not None:
            bests.append(_tagged(hof["best_ever"], origin))
    entries = sorted(by_genes.values(), key=entry_sort_key)[:max_entries]
    best = min(bests, key=entry_sort_key) if bests else None
    updated = max((str(h["updated_at"]) for _, h in halls), key=datetime.fromisoformat)
    return {
        "updated_at": updated,
        "latest_generation": max(int(h["latest_generation"]) for _, h in halls),
        "best_ever": best,
        "entries": entries,
    }
