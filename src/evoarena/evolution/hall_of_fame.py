"""The hall of fame: the best genomes seen across all generations, with their performance.

Structure (the seed's, plus a schema version added by :mod:`~evoarena.evolution.persistence`)::

    {"updated_at": ISO-8601, "latest_generation": int,
     "best_ever": entry | null, "entries": [entry, ...]}

An entry is the seed's dict: ``genome`` (``Genome.to_dict()``), ``fitness_roi_pct``,
``total_trades``, ``settled_trades``, ``win_rate``, ``realized_pnl``, ``generation``,
``signal_type``, ``params``; extra keys are kept as they are. The merge adds:

* ``gene_hash``: :attr:`Genome.gene_hash`, the entry's identity;
* ``in_sample``: ``{"generation", "genome_id", "fitness", "roi_bankroll_pct",
  "roi_stake_pct"}`` — the window that first chose these genes (ROI fields ``null`` when the entry
  did not carry them); it never changes afterwards;
* ``out_of_sample``: ``{"windows": [...], "n_windows", "mean_fitness", "mean_roi_bankroll_pct",
  "mean_roi_stake_pct"}`` — every later window in which the same genes traded (see
  :func:`record_window`), each ``{"generation", "fitness", "roi_bankroll_pct", "roi_stake_pct",
  "trades", "pnl_usd"}``; means are ``null`` with no window yet.

Merging rules (:func:`merge_hall_of_fame`):

* entries are keyed by gene hash, so one genome fills one slot whatever its ids (elites are
  cloned with new ids; ids remain for lineage: ``genome.id``, ``parent_ids``, ``generation``);
* the first window that chose some genes is their in-sample result and the entry keeps it: a
  later entry with the same genes does not replace it (the seeds, keyed by id, kept the newest
  data; with content identity a later result of the same genes is out-of-sample evidence, and
  it is kept in ``out_of_sample``). Within one call, the fitter of two entries with the same
  genes is kept (the first on a tie);
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

from evoarena.evolution.genome import Genome, genes_hash

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


def entry_gene_hash(entry: Mapping[str, Any]) -> str:
    """The gene hash of a (validated) entry, computed from its genes."""
    return genes_hash(entry["genome"]["genes"])


def _window_record(result: Mapping[str, Any], generation: int) -> dict[str, Any]:
    return {
        "generation": generation,
        "fitness": result["fitness"],
        "roi_bankroll_pct": result["roi_bankroll_pct"],
        "roi_stake_pct": result["roi_stake_pct"],
        "trades": result["trades"],
        "pnl_usd": result["pnl_usd"],
    }


def _mean(xs: list[float]) -> float | None:
    return round(math.fsum(xs) / len(xs), 6) + 0.0 if xs else None


def _summarize(windows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "windows": windows,
        "n_windows": len(windows),
        "mean_fitness": _mean([w["fitness"] for w in windows]),
        "mean_roi_bankroll_pct": _mean([w["roi_bankroll_pct"] for w in windows]),
        "mean_roi_stake_pct": _mean([w["roi_stake_pct"] for w in windows]),
    }


def _ensure_records(entry: dict[str, Any]) -> None:
    """Give an entry its ``gene_hash``, ``in_sample`` and ``out_of_sample`` if it lacks them."""
    entry["gene_hash"] = entry_gene_hash(entry)
    if not isinstance(entry.get("in_sample"), dict):
        entry["in_sample"] = {
            "generation": entry["generation"],
            "genome_id": entry_genome_id(entry),
            "fitness": entry["fitness_roi_pct"],
            "roi_bankroll_pct": entry.get("roi_bankroll_pct"),
            "roi_stake_pct": entry.get("roi_stake_pct"),
        }
    if not isinstance(entry.get("out_of_sample"), dict):
        entry["out_of_sample"] = _summarize([])


def record_window(
    entry: dict[str, Any], generation: int, results_by_hash: Mapping[str, Mapping[str, Any]]
) -> bool:
    """Add ``generation``'s result of the entry's genes to its out-of-sample record (in place).

    ``results_by_hash`` maps gene hashes to :func:`~evoarena.evolution.stats.bot_result` dicts.
    Only a window after the one that chose the genes counts, each window once. Returns True if
    a window was added.
    """
    _ensure_records(entry)
    result = results_by_hash.get(entry["gene_hash"])
    if result is None or int(entry["in_sample"]["generation"]) >= generation:
        return False
    windows = [dict(w) for w in entry["out_of_sample"].get("windows", [])]
    if any(w.get("generation") == generation for w in windows):
        return False
    windows.append(_window_record(result, generation))
    entry["out_of_sample"] = _summarize(windows)
    return True


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
    window_results: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The hall of fame after adding ``new_entries`` to ``existing`` (see the module rules).

    ``window_results`` (gene hash → that genome's ``bot_result`` in ``generation``) first
    extends the out-of-sample records of the entries already there (:func:`record_window`).
    Pure: no argument is modified, and the result shares no objects with them. Raises
    ``ValueError`` if an entry is invalid or ``max_entries < 1``.
    """
    if max_entries < 1:
        msg = f"max_entries must be at least 1, was {max_entries}"
        raise ValueError(msg)
    by_hash: dict[str, dict[str, Any]] = {}
    best: dict[str, Any] | None = None
    if existing is not None:
        for entry in existing["entries"]:
            item = copy.deepcopy(dict(entry))
            _ensure_records(item)
            by_hash[item["gene_hash"]] = item
        if existing["best_ever"] is not None:
            best = copy.deepcopy(dict(existing["best_ever"]))
            _ensure_records(best)
    if window_results:
        for item in [*by_hash.values(), *([best] if best is not None else [])]:
            record_window(item, generation, window_results)
    fresh: list[dict[str, Any]] = []
    for i, entry in enumerate(new_entries):
        try:
            validate_entry(entry)
        except ValueError as e:
            msg = f"top_entries[{i}]: {e}"
            raise ValueError(msg) from e
        item = copy.deepcopy(dict(entry))
        _ensure_records(item)  # an entry from another hall of fame keeps its records
        h = item["gene_hash"]
        if best is not None and best["gene_hash"] == h and h not in by_hash:
            # best_ever's genes came back after leaving the list: their records continue
            item = copy.deepcopy(best)
        earlier = by_hash.get(h)
        if earlier is not None:
            same_call = next((f for f in fresh if f["gene_hash"] == h), None)
            if same_call is None or item["fitness_roi_pct"] <= same_call["fitness_roi_pct"]:
                continue
            fresh.remove(same_call)
        by_hash[h] = item
        fresh.append(item)
    for entry in sorted(fresh, key=entry_sort_key):
        if best is None or entry["fitness_roi_pct"] > best["fitness_roi_pct"]:
            best = copy.deepcopy(entry)
    entries = sorted(by_hash.values(), key=entry_sort_key)[:max_entries]
    return {
        "updated_at": updated_at,
        "latest_generation": generation,
        "best_ever": best,
        "entries": entries,
    }
