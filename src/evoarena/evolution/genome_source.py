"""Where fixed genomes come from: ``evaluate --genomes``, ``--seed-genomes`` and shadow trading.

A SOURCE is one of:

* a **state directory** — its ``hall_of_fame.json``, in the hall of fame's order (best first);
* a **generation file** (``gen_NNNN.json``) — its genomes ranked by ``fitness_scores``, best
  first (equal fitness keeps the file's order);
* a **JSON file of genomes**: the hall-of-fame document ``evoarena hof --json`` prints (or a
  ``hall_of_fame.json`` itself), an object ``{"genomes": [genome, ...]}`` (order as given), or a
  JSON list whose items are genomes or hall-of-fame entries (objects with a ``genome``).

Genomes with equal genes (:attr:`~evoarena.evolution.genome.Genome.gene_hash`) are kept once, at
their best rank; then ``top`` keeps the first N. Ids must be unique in a population (a bot's
account is keyed by it); two *different* genomes with one id — possible when halls of fame of runs
with the same seed were merged — get the later one renamed to the first 8 hex characters of its
gene hash, its old id becoming its parent, with a warning. Any problem raises
:class:`~evoarena.errors.UserError` naming the file (exit 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog

from evoarena.errors import StateError, UserError
from evoarena.evolution import persistence
from evoarena.evolution.genome import Genome
from evoarena.evolution.hall_of_fame import parse_genome, validate_hall_of_fame

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class GenomeSource:
    """Genomes loaded from a SOURCE, best first, with what the source said about each."""

    path: Path
    kind: str
    """``hall_of_fame``, ``generation`` or ``genomes``."""
    genomes: list[Genome]
    in_sample_fitness: list[float | None]
    """The fitness the source recorded for each genome (``None`` when it records none)."""
    training_windows: list[tuple[str, str]] = field(default_factory=list)
    """``(trading_start, trading_end)`` ISO times of the generations the source was chosen in,
    when the source is a state directory or generation file that records them."""


def load_genomes(source: Path, top: int | None = None) -> list[Genome]:
    """The genomes of ``source`` (see the module docstring), best first, at most ``top``."""
    return load_genome_source(source, top).genomes


def load_genome_source(source: Path, top: int | None = None) -> GenomeSource:
    """:func:`load_genomes` with the in-sample fitness and training windows of each genome."""
    if top is not None and top < 1:
        msg = f"--top must be at least 1, was {top}"
        raise UserError(msg)
    if source.is_dir():
        loaded = _from_state_dir(source)
    elif source.is_file():
        loaded = _from_file(source, _read_json(source))
    else:
        msg = f"{source}: no such state directory or genome file"
        raise UserError(msg)
    _dedupe(loaded)
    if top is not None:
        loaded.genomes = loaded.genomes[:top]
        loaded.in_sample_fitness = loaded.in_sample_fitness[:top]
    _unique_ids(loaded)
    return loaded


# -- the three kinds -----------------------------------------------------------------------------


def _from_state_dir(state_dir: Path) -> GenomeSource:
    try:
        hof = persistence.load_hall_of_fame(state_dir=state_dir)
    except StateError as e:
        raise UserError(str(e)) from e
    if hof is None:
        msg = (
            f"{state_dir}: no {persistence.HALL_OF_FAME_FILE} in this state directory "
            "(it is written at the end of each generation)"
        )
        raise UserError(msg)
    out = _from_hall_of_fame(state_dir / persistence.HALL_OF_FAME_FILE, hof)
    out.training_windows = _windows_of_state_dir(state_dir)
    return out


def _from_file(path: Path, doc: object) -> GenomeSource:
    if isinstance(doc, dict) and "entries" in doc:
        try:
            validate_hall_of_fame(doc)
        except ValueError as e:
            msg = f"{path}: not a valid hall of fame: {e}"
            raise UserError(msg) from e
        return _from_hall_of_fame(path, doc)
    if isinstance(doc, dict) and "genomes" in doc and "fitness_scores" in doc:
        return _from_generation(path, doc)
    if isinstance(doc, dict) and "genomes" in doc:
        items = doc["genomes"]
        if not isinstance(items, list):
            msg = f"{path}: 'genomes' must be a list"
            raise UserError(msg)
        return _from_list(path, items)
    if isinstance(doc, list):
        return _from_list(path, doc)
    msg = (
        f"{path}: not a genome source (expected a hall of fame, a gen_NNNN.json, "
        '{"genomes": [...]} or a list of genomes)'
    )
    raise UserError(msg)


def _from_hall_of_fame(path: Path, hof: dict[str, Any]) -> GenomeSource:
    genomes = [parse_genome(e["genome"]) for e in hof["entries"]]
    fitness = [float(e["fitness_roi_pct"]) for e in hof["entries"]]
    if not genomes:
        msg = f"{path}: the hall of fame has no entries"
        raise UserError(msg)
    return GenomeSource(path, "hall_of_fame", genomes, list(fitness))


def _from_generation(path: Path, doc: dict[str, Any]) -> GenomeSource:
    items, scores = doc["genomes"], doc["fitness_scores"]
    if not isinstance(items, list) or not items:
        msg = f"{path}: 'genomes' must be a non-empty list"
        raise UserError(msg)
    if not isinstance(scores, list) or len(scores) != len(items):
        msg = f"{path}: 'fitness_scores' must be a list with one number per genome"
        raise UserError(msg)
    for i, s in enumerate(scores):
        if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s):
            msg = f"{path}: fitness_scores[{i}] must be a finite number, was {s!r}"
            raise UserError(msg)
    genomes = _parse_all(path, items, "genomes")
    order = sorted(range(len(genomes)), key=lambda i: (-float(scores[i]), i))
    out = GenomeSource(
        path,
        "generation",
        [genomes[i] for i in order],
        [float(scores[i]) for i in order],
    )
    stats = doc.get("stats")
    if isinstance(stats, dict):
        window = _window_of_stats(stats)
        if window is not None:
            out.training_windows = [window]
    return out


def _from_list(path: Path, items: list[Any]) -> GenomeSource:
    if not items:
        msg = f"{path}: the list of genomes is empty"
        raise UserError(msg)
    genomes: list[Genome] = []
    fitness: list[float | None] = []
    for i, item in enumerate(items):
        is_entry = isinstance(item, dict) and "genome" in item
        genomes.extend(_parse_all(path, [item["genome"] if is_entry else item], f"[{i}]"))
        f = item.get("fitness_roi_pct") if is_entry else None
        fitness.append(float(f) if isinstance(f, int | float) and not isinstance(f, bool) else None)
    return GenomeSource(path, "genomes", genomes, fitness)


# -- helpers ---------------------------------------------------------------------------------------


def _read_json(path: Path) -> object:
    try:
        raw = path.read_bytes()
    except OSError as e:
        msg = f"{path}: cannot read: {e.strerror or e}"
        raise UserError(msg) from e
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        msg = f"{path}: not valid JSON: {e}"
        raise UserError(msg) from e


def _parse_all(path: Path, items: list[Any], where: str) -> list[Genome]:
    out = []
    for i, item in enumerate(items):
        label = where if len(items) == 1 and where.startswith("[") else f"{where}[{i}]"
        try:
            out.append(parse_genome(item))
        except ValueError as e:
            msg = f"{path}: {label}: {e}"
            raise UserError(msg) from e
    return out


def _dedupe(src: GenomeSource) -> None:
    seen: set[str] = set()
    genomes: list[Genome] = []
    fitness: list[float | None] = []
    for g, f in zip(src.genomes, src.in_sample_fitness, strict=True):
        h = g.gene_hash
        if h in seen:
            continue
        seen.add(h)
        genomes.append(g)
        fitness.append(f)
    src.genomes, src.in_sample_fitness = genomes, fitness


def _unique_ids(src: GenomeSource) -> None:
    taken: set[str] = set()
    for g in src.genomes:
        if g.id in taken:
            old = g.id
            g.parent_ids = [old]
            g.id = g.gene_hash[:8]
            log.warning(
                "genome_id_renamed",
                source=str(src.path),
                old_id=old,
                new_id=g.id,
                note="two different genomes shared an id; the later one is renamed",
            )
        taken.add(g.id)


def _window_of_stats(stats: dict[str, Any]) -> tuple[str, str] | None:
    start, end = stats.get("trading_start"), stats.get("trading_end")
    if isinstance(start, str) and isinstance(end, str):
        return start, end
    return None


def _windows_of_state_dir(state_dir: Path) -> list[tuple[str, str]]:
    """The trading windows of every readable generation file (unreadable ones are skipped)."""
    windows = []
    for n in persistence.list_generations(state_dir):
        try:
            doc = persistence.load_generation(n, state_dir=state_dir)
        except StateError:
            continue
        if doc is not None and (w := _window_of_stats(doc["stats"])) is not None:
            windows.append(w)
    return windows
