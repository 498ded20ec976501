"""Read a state directory's generation files and hall of fame for tables and charts.

All reading of *optional* fields lives here: newer evoarena versions add fields (per-bot results,
the out-of-sample result of carried elites, a luck test, out-of-sample records in hall-of-fame
entries). Each is looked up under the names in the ``*_FIELDS`` tables below, first match wins,
and reads as ``None`` ("not recorded") when absent or not a finite number. Nothing here writes.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evoarena.errors import StateError
from evoarena.evolution import persistence
from evoarena.evolution.genome import GENE_NAMES, SIGNAL_TYPES

Path_ = tuple[str, ...]

# Optional generation statistics: output name → candidate locations in the generation file
# (a location is a path of keys from the file's top level).
STATS_FIELDS: dict[str, tuple[Path_, ...]] = {
    "oos_mean_roi_pct": (
        ("stats", "carried_elites_oos", "mean_roi_bankroll_pct"),
        ("stats", "elites_oos_mean_roi_pct"),
        ("stats", "oos_mean_roi_pct"),
        ("stats", "out_of_sample", "mean_roi_pct"),
        ("stats", "elites_out_of_sample", "mean_roi_pct"),
        ("stats", "oos", "mean_roi_pct"),
    ),
    "oos_mean_fitness": (
        ("stats", "carried_elites_oos", "mean_fitness"),
        ("stats", "elites_oos_mean_fitness"),
        ("stats", "oos_mean_fitness"),
        ("stats", "out_of_sample", "mean_fitness"),
        ("stats", "elites_out_of_sample", "mean_fitness"),
        ("stats", "oos", "mean_fitness"),
    ),
    "luck_p_value": (
        ("stats", "luck_p_value"),
        ("stats", "luck_test_p_value"),
        ("stats", "luck_test", "p_value"),
        ("stats", "luck", "p_value"),
    ),
}

# Per-bot results: where the list is, and the numeric fields read from each item.
BOT_LIST_FIELDS: tuple[Path_, ...] = (("results",), ("bots",), ("bot_results",), ("stats", "bots"))
# Output name → the names it may have in an item (``evolution.stats.bot_result`` first).
BOT_NUMBER_FIELDS: dict[str, tuple[str, ...]] = {
    "trades": ("trades",),
    "settled": ("settled",),
    "wins": ("wins",),
    "stake": ("stake_usd", "stake"),
    "fees": ("fees_usd", "fees"),
    "pnl": ("pnl_usd", "pnl"),
    "roi_bankroll_pct": ("roi_bankroll_pct",),
    "roi_stake_pct": ("roi_stake_pct",),
    "force_closed": ("force_closed",),
    "fitness": ("fitness",),
}

# Hall-of-fame entry: the out-of-sample record and the fields read from it.
HOF_OOS_FIELDS: tuple[Path_, ...] = (("out_of_sample",), ("oos",), ("oos_record",))
# Output name → the names it may have in the record (``hall_of_fame`` out-of-sample first).
HOF_OOS_NUMBER_FIELDS: dict[str, tuple[str, ...]] = {
    "fitness": ("mean_fitness", "fitness"),
    "roi_bankroll_pct": ("mean_roi_bankroll_pct", "roi_bankroll_pct"),
    "roi_stake_pct": ("mean_roi_stake_pct", "roi_stake_pct"),
    "windows": ("n_windows", "windows", "generations"),
}


def lookup(doc: Mapping[str, Any], paths: Sequence[Path_]) -> Any:
    """The value at the first of ``paths`` that exists in ``doc`` (``None`` if none does)."""
    for path in paths:
        node: Any = doc
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                break
            node = node[key]
        else:
            return node
    return None


def number(value: object) -> float | None:
    """``value`` as a finite float, or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


@dataclass(frozen=True, slots=True)
class GenerationRecord:
    """One finished generation as the report and ``history`` see it."""

    generation: int
    timestamp: str
    population: int
    best_fitness: float
    mean_fitness: float
    median_fitness: float
    best_roi: float
    median_roi: float
    active_bots: int
    total_trades: int
    settled_trades: int
    fees_usd: float
    pnl_usd: float
    force_closed: int | None
    ticks: int | None
    signal_mix: dict[str, int]
    genes: dict[str, list[float]]
    """Gene name → the population's values."""
    oos_mean_roi_pct: float | None = None
    oos_mean_fitness: float | None = None
    luck_p_value: float | None = None
    bots: list[dict[str, float | None]] | None = None
    """Per-bot results when the file has them (fields :data:`BOT_NUMBER_FIELDS`)."""

    def row(self) -> dict[str, Any]:
        """The flat row ``history --csv/--json`` prints (``None`` = not recorded)."""
        return {
            "generation": self.generation,
            "timestamp": self.timestamp,
            "population": self.population,
            "best_fitness": self.best_fitness,
            "median_fitness": self.median_fitness,
            "mean_fitness": self.mean_fitness,
            "best_roi_bankroll_pct": self.best_roi,
            "median_roi_bankroll_pct": self.median_roi,
            "active_bots": self.active_bots,
            "trades": self.total_trades,
            "settled": self.settled_trades,
            "fees_usd": self.fees_usd,
            "pnl_usd": self.pnl_usd,
            "force_closed": self.force_closed,
            "oos_mean_roi_pct": self.oos_mean_roi_pct,
            "oos_mean_fitness": self.oos_mean_fitness,
            "luck_p_value": self.luck_p_value,
        }


@dataclass(slots=True)
class History:
    """Everything the report shows, read once."""

    state_dir: Path
    generations: list[GenerationRecord] = field(default_factory=list)
    hall_of_fame: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    """Files that could not be read (shown in the report, not fatal)."""


def _int(value: object, default: int = 0) -> int:
    n = number(value)
    return default if n is None else int(n)


def _opt_int(value: object) -> int | None:
    n = number(value)
    return None if n is None else int(n)


def _bots(doc: Mapping[str, Any]) -> list[dict[str, float | None]] | None:
    items = lookup(doc, BOT_LIST_FIELDS)
    if not isinstance(items, list) or not items or not all(isinstance(i, Mapping) for i in items):
        return None
    return [
        {
            name: number(lookup(item, [(a,) for a in aliases]))
            for name, aliases in BOT_NUMBER_FIELDS.items()
        }
        for item in items
    ]


def record_from_doc(doc: Mapping[str, Any]) -> GenerationRecord:
    """A :class:`GenerationRecord` from a validated ``gen_NNNN.json`` document."""
    stats: Mapping[str, Any] = doc.get("stats") or {}
    fitness = [float(f) for f in doc["fitness_scores"]]
    mix_raw = stats.get("signal_mix")
    mix = dict.fromkeys(SIGNAL_TYPES, 0)
    if isinstance(mix_raw, Mapping):
        for k, v in mix_raw.items():
            mix[str(k)] = _int(v)
    genes: dict[str, list[float]] = {name: [] for name in GENE_NAMES}
    for g in doc["genomes"]:
        for name in GENE_NAMES:
            genes[name].append(float(g["genes"][name]))
    optional = {name: number(lookup(doc, paths)) for name, paths in STATS_FIELDS.items()}
    return GenerationRecord(
        generation=int(doc["generation"]),
        timestamp=str(doc["timestamp"]),
        population=len(fitness),
        best_fitness=max(fitness),
        mean_fitness=statistics.fmean(fitness),
        median_fitness=statistics.median(fitness),
        best_roi=number(stats.get("best_roi")) or 0.0,
        median_roi=number(stats.get("median_roi")) or 0.0,
        active_bots=_int(stats.get("active_bots")),
        total_trades=_int(stats.get("total_trades")),
        settled_trades=_int(stats.get("settled_trades")),
        fees_usd=number(stats.get("fees_paid")) or 0.0,
        pnl_usd=number(stats.get("realized_pnl")) or 0.0,
        force_closed=_opt_int(stats.get("force_closed")),
        ticks=_opt_int(stats.get("ticks")),
        signal_mix=mix,
        genes=genes,
        bots=_bots(doc),
        **optional,
    )


def hof_oos(entry: Mapping[str, Any]) -> dict[str, float | None] | None:
    """A hall-of-fame entry's out-of-sample record (``None``: not recorded)."""
    rec = lookup(entry, HOF_OOS_FIELDS)
    if not isinstance(rec, Mapping):
        return None
    out = {
        name: number(lookup(rec, [(a,) for a in aliases]))
        for name, aliases in HOF_OOS_NUMBER_FIELDS.items()
    }
    if out["windows"] == 0:
        return None  # no later window yet: nothing out of sample to show
    return out


def load_history(state_dir: Path) -> History:
    """Read every generation file and the hall of fame; unreadable files go to ``problems``.

    Raises :class:`StateError` only when the state directory itself cannot be listed.
    """
    hist = History(state_dir=state_dir)
    for n in persistence.list_generations(state_dir):
        try:
            doc = persistence.load_generation(n, state_dir=state_dir)
        except StateError as e:
            hist.problems.append(str(e))
            continue
        if doc is not None:
            hist.generations.append(record_from_doc(doc))
    try:
        hist.hall_of_fame = persistence.load_hall_of_fame(state_dir=state_dir)
    except StateError as e:
        hist.problems.append(str(e))
    return hist
