"""The hall of fame: the best genomes seen across all generations, with their performance.

Structure (the seed's, plus a schema version added by :mod:`~evoarena.evolution.persistence`)::

    {"updated_at": ISO-8601, "latest_generation": int,
     "best_ever": entry | null, "entries": [entry, ...]}

An entry is the seed's dict: ``genome`` (``Genome.to_dict()``), ``fitness_roi_pct``,
``total_trades``, ``settled_trades``, ``win_rate``, ``realized_pnl``, ``generation``,
``signal_type``, ``params``; extra keys are kept as they are.

Merging rules (:func:`merge_hall_of_fame`):

* entries are keyed by genome id; an entry passed later (a later call, or later in the same list)
  replaces an earlier one for the same id, even if its fitness is lower — newest data wins;
* entries are ordered by fitness, best first; equal fitness is ordered by genome id, then newest
  generation first; only the best ``max_entries`` are kept;
* ``best_ever`` is the highest-fitness entry ever passed in. It is kept separately, so it survives
  when its entry falls out of the top list or is replaced by newer, weaker data for the same
  genome (then ``best_ever`` still shows the older, higher result). A new entry replaces it only
  with a strictly higher fitness. Hence ``best_ever`` is at least as fit as every entry.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from typing import Any

from evoarena.evolution.genome import Genome

DEFAULT_MAX_ENTRIES = 20

_NUMBER_FIELDS = ("fitness_roi_pct", "win_rate", "realized_pnl")
_COUNT_FIELDS = ("total_trades", "settled_trades", "generation")


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def parse_genome(data: object) -> Genome:
    """``Genome.from_dict`` for untrusted JSON: any malformed shape raises ``ValueError``."""
    if not isinstance(data, dict):
        msg = f"genome must be an object, was {type(data).__name__}"
        raise ValueError(msg)
    if "genes" in data and not isinstance(data["genes"], dict):
        msg = "genome field 'genes' must be an object"
        raise ValueError(msg)
    if not isinstance(data.get("parent_ids", []), list):
        msg = "genome field 'parent_ids' must be a list"
        raise ValueError(msg)
    try:
        return Genome.from_dict(data)
    except (TypeError, KeyError, AttributeError) as e:
        msg = f"genome is malformed: {e}"
        raise ValueError(msg) from e


def validate_entry(entry: object) -> str:
    """Check one entry's fields; returns its genome id, raises ``ValueError`` naming the problem."""
    if not isinstance(entry, Mapping):
        msg = f"entry must be an object, was {type(entry).__name__}"
        raise ValueError(msg)
    if "genome" not in entry:
        msg = "entry is missing field 'genome'"
        raise ValueError(msg)
    genome = parse_genome(entry["genome"])
    for name in (*_NUMBER_FIELDS, *_COUNT_FIELDS, "signal_type", "params"):
        if name not in entry:
            msg = f"entry for genome {genome.id} is missing field '{name}'"
            raise ValueError(msg)
    for name in _NUMBER_FIELDS:
        if not _is_number(entry[name]):
            msg = f"entry for genome {genome.id}: '{name}' must be a finite number"
            raise ValueError(msg)
    for name in _COUNT_FIELDS:
        if not _is_count(entry[name]):
            msg = f"entry for genome {genome.id}: '{name}' must be a non-negative integer"
            raise ValueError(msg)
    if not isinstance(entry["signal_type"], str):
        msg = f"entry for genome {genome.id}: 'signal_type' must be a string"
        raise ValueError(msg)
    if not isinstance(entry["params"], dict):
        msg = f"entry for genome {genome.id}: 'params' must be an object"
        raise ValueError(msg)
    return genome.id


def entry_genome_id(entry: Mapping[str, Any]) -> str:
    """The genome id of a (validated) entry."""
    return str(entry["genome"]["id"])


def entry_sort_key(entry: Mapping[str, Any]) -> tuple[float, str, int]:
    """Best first: higher fitness, then lower genome id, then newer generation."""
    return (-float(entry["fitness_roi_pct"]), entry_genome_id(entry), -int(entry["generation"]))


def validate_hall_of_fame(data: object) -> None:
    """Check a hall-of-fame dict's structure; raises ``ValueError`` naming the problem."""
    if not isinstance(data, Mapping):
        msg = "expected a JSON object"
        raise ValueError(msg)
    for name in ("updated_at", "latest_generation", "best_ever", "entries"):
        if name not in data:
            msg = f"missing field '{name}'"
            raise ValueError(msg)
    if not isinstance(data["updated_at"], str):
        msg = "'updated_at' must be a string"
        raise ValueError(msg)
    if not _is_count(data["latest_generation"]):
        msg = "'latest_generation' must be a non-negative integer"
        raise ValueError(msg)
    entries = data["entries"]
    if not isinstance(entries, list):
        msg = "'entries' must be a list"
        raise ValueError(msg)
    for i, entry in enumerate(entries):
        try:
            validate_entry(entry)
        except ValueError as e:
            msg = f"entries[{i}]: {e}"
            raise ValueError(msg) from e
    best = data["best_ever"]
    if best is None:
        if entries:
            msg = "'best_ever' is null but there are entries"
            raise ValueError(msg)
    else:
        try:
            validate_entry(best)
        except ValueError as e:
            msg = f"best_ever: {e}"
            raise ValueError(msg) from e


def merge_hall_of_fame(
    existing: Mapping[str, Any] | None,
    generation: int,
    new_entries: Iterable[Mapping[str, Any]],
    *,
    updated_at: str,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> dict[str, Any]:
    """The hall of fame after adding ``new_entries`` to ``existing`` (see the module rules).

    Pure: neither argument is modified, and the result shares no objects with them. Raises
    ``ValueError`` if an entry is invalid or ``max_entries < 1``.
    """
    if max_entries < 1:
        msg = f"max_entries must be at least 1, was {max_entries}"
        raise ValueError(msg)
    by_id: dict[str, dict[str, Any]] = {}
    best: dict[str, Any] | None = None
    if existing is not None:
        for entry in existing["entries"]:
            by_id[entry_genome_id(entry)] = copy.deepcopy(dict(entry))
        if existing["best_ever"] is not None:
            best = copy.deepcopy(dict(existing["best_ever"]))
    fresh: list[dict[str, Any]] = []
    for i, entry in enumerate(new_entries):
        try:
            gid = validate_entry(entry)
        except ValueError as e:
            msg = f"top_entries[{i}]: {e}"
            raise ValueError(msg) from e
        item = copy.deepcopy(dict(entry))
        by_id[gid] = item
        fresh.append(item)
    for entry in sorted(fresh, key=entry_sort_key):
        if best is None or entry["fitness_roi_pct"] > best["fitness_roi_pct"]:
            best = copy.deepcopy(entry)
    entries = sorted(by_id.values(), key=entry_sort_key)[:max_entries]
    return {
        "updated_at": updated_at,
        "latest_generation": generation,
        "best_ever": best,
        "entries": entries,
    }
