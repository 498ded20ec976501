"""Where chosen genomes come from: a state directory, a generation file, or a JSON file.

``SOURCE`` may be

* a **state directory**: its ``hall_of_fame.json`` entries, best first;
* a **hall-of-fame file** (``hall_of_fame.json``, or what ``evoarena hof --json`` prints: an
  object with ``entries``), best first;
* a **generation file** ``gen_NNNN.json``: its genomes, highest fitness first;
* ``latest.json`` (an object with ``genomes``): in file order;
* a JSON **list** of genomes (``Genome.to_dict()``) or of hall-of-fame entries (with ``genome``).

Genomes with the same genes (``Genome.gene_hash``) are kept once, the first seen. Every problem
is a :class:`~evoarena.errors.UserError` naming the file and what is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from evoarena.errors import UserError
from evoarena.evolution.genome import Genome
from evoarena.evolution.hall_of_fame import parse_genome

HALL_OF_FAME_FILE = "hall_of_fame.json"


def _read(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        msg = f"{path}: no such file or state directory"
        raise UserError(msg) from None
    except OSError as e:
        msg = f"{path}: cannot read: {e.strerror or e}"
        raise UserError(msg) from e
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        msg = f"{path}: not valid JSON: {e}"
        raise UserError(msg) from e


def _items(path: Path, doc: Any) -> list[Any]:
    """The genome dicts of a document, in the order they should be used."""
    if isinstance(doc, list):
        return [d["genome"] if isinstance(d, dict) and "genome" in d else d for d in doc]
    if not isinstance(doc, dict):
        msg = f"{path}: expected a JSON object or list of genomes"
        raise UserError(msg)
    if isinstance(doc.get("entries"), list):
        return [e.get("genome") if isinstance(e, dict) else e for e in doc["entries"]]
    genomes = doc.get("genomes")
    if isinstance(genomes, list):
        scores = doc.get("fitness_scores")
        if isinstance(scores, list) and len(scores) == len(genomes):
            order = sorted(
                range(len(genomes)),
                key=lambda i: -float(scores[i]) if isinstance(scores[i], int | float) else 0.0,
            )
            return [genomes[i] for i in order]
        return list(genomes)
    msg = f"{path}: no genomes found (expected 'entries', 'genomes' or a list)"
    raise UserError(msg)


def load_genomes(source: Path, top: int | None) -> list[Genome]:
    """The genomes in ``source`` (see the module docstring), the first ``top`` if given."""
    if top is not None and top < 1:
        msg = f"top must be at least 1, was {top}"
        raise UserError(msg)
    path = source / HALL_OF_FAME_FILE if source.is_dir() else source
    if source.is_dir() and not path.is_file():
        msg = f"{source}: no {HALL_OF_FAME_FILE} in this state directory yet"
        raise UserError(msg)
    out: list[Genome] = []
    seen: set[str] = set()
    for i, item in enumerate(_items(path, _read(path))):
        try:
            genome = parse_genome(item)
        except ValueError as e:
            msg = f"{path}: genome #{i + 1}: {e}"
            raise UserError(msg) from e
        if genome.gene_hash in seen:
            continue
        seen.add(genome.gene_hash)
        out.append(genome)
        if top is not None and len(out) >= top:
            break
    if not out:
        msg = f"{path}: holds no genome"
        raise UserError(msg)
    return out
