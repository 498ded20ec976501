"""The state directory: generation files, ``latest.json``, checkpoints and the hall of fame.

The seed's API and files, with the directory and the time passed in (``state_dir``, ``now_ms``:
the clock's time, virtual in replay) instead of read from globals.

Files (every one carries ``"schema_version": 1``; timestamps are ISO-8601 UTC, e.g.
``2023-12-31T10:30:45.123000+00:00``):

* ``gen_{NNNN}.json`` — ``generation``, ``timestamp``, ``genomes`` (``Genome.to_dict()`` each),
  ``fitness_scores`` (one per genome, same order), ``stats``.
* ``latest.json`` — the pointer to the most recent generation: ``generation``, ``file`` (the
  ``gen_{NNNN}.json`` name), ``timestamp`` and that generation's ``genomes``, so
  :func:`load_latest_state` needs no other file. Written right after the generation file.
* ``checkpoint_gen{NNNN}.json`` — the caller's checkpoint dict (which must hold ``bots``: a list
  of objects with at least ``genome_id``; a ``genome`` there is validated too), plus
  ``generation``, ``tick_count`` and ``timestamp``.
* ``hall_of_fame.json`` — see :mod:`~evoarena.evolution.hall_of_fame`.

Writing is atomic: a temp file (``.<name>.<random>.tmp``) in the same directory is written,
flushed and fsynced, then ``os.replace``-d over the target, then the directory is fsynced. A crash
leaves either the old file or the new one, never a mix (at worst a stray ``.tmp`` file, safe to
delete). JSON is written by orjson with sorted keys and two-space indents, so the same inputs give
the same bytes.

Loading validates the schema version, the required fields and every genome
(``Genome.from_dict``), and raises :class:`~evoarena.errors.StateError` naming the file and the
problem. A missing file is not an error: the loader returns ``None``.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import structlog

from evoarena.errors import StateError
from evoarena.evolution.genome import Genome
from evoarena.evolution.hall_of_fame import (
    DEFAULT_MAX_ENTRIES,
    merge_hall_of_fame,
    parse_genome,
    validate_entry,
    validate_hall_of_fame,
)

log = structlog.get_logger(__name__)

_T = TypeVar("_T")

SCHEMA_VERSION = 1
LATEST_FILE = "latest.json"
HALL_OF_FAME_FILE = "hall_of_fame.json"
CORRUPT_HALL_OF_FAME_FILE = "hall_of_fame.json.corrupt"

_GEN_FILE = re.compile(r"gen_(\d{4,})\.json")
_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
_CHECKPOINT_RESERVED = frozenset({"schema_version", "generation", "tick_count", "timestamp"})


# -- names and time ------------------------------------------------------------------------------


def generation_file_name(generation: int) -> str:
    """``gen_{generation:04d}.json``."""
    _check_generation(generation)
    return f"gen_{generation:04d}.json"


def checkpoint_file_name(generation: int) -> str:
    """``checkpoint_gen{generation:04d}.json``."""
    _check_generation(generation)
    return f"checkpoint_gen{generation:04d}.json"


def iso_timestamp(now_ms: int) -> str:
    """ISO-8601 UTC text with microseconds for a millisecond timestamp (exact, no float math)."""
    secs, ms = divmod(now_ms, 1000)
    dt = datetime.fromtimestamp(secs, tz=UTC).replace(microsecond=ms * 1000)
    return dt.isoformat(timespec="microseconds")


def _check_generation(generation: int) -> None:
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        msg = f"generation must be a non-negative integer, was {generation!r}"
        raise ValueError(msg)


def list_generations(state_dir: Path) -> list[int]:
    """Generation numbers with a ``gen_*.json`` file in ``state_dir``, ascending (unvalidated)."""
    try:
        names = os.listdir(state_dir)
    except FileNotFoundError:
        return []
    except OSError as e:
        msg = f"{state_dir}: cannot list the state directory: {e.strerror}"
        raise StateError(msg) from e
    return sorted(int(m.group(1)) for name in names if (m := _GEN_FILE.fullmatch(name)))


# -- low-level I/O --------------------------------------------------------------------------------


def ensure_state_dir(state_dir: Path) -> Path:
    """Create ``state_dir`` (and its parents) if missing; returns it."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        msg = f"{state_dir}: cannot create the state directory: {e.strerror or e}"
        raise StateError(msg) from e
    return state_dir


def _encode(path: Path, doc: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(doc, option=_JSON_OPTIONS)
    except orjson.JSONEncodeError as e:
        msg = f"{path}: cannot encode as JSON: {e}"
        raise ValueError(msg) from e


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        # The file is already in place; some filesystems cannot fsync a directory.
        log.warning("state_dir_fsync_failed", dir=str(directory), error=str(e))


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with open(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as e:
        msg = f"{path}: cannot write: {e.strerror or e}"
        raise StateError(msg) from e
    _fsync_dir(path.parent)


def _write_doc(path: Path, doc: Mapping[str, Any]) -> None:
    data = _encode(path, doc)
    ensure_state_dir(path.parent)
    _atomic_write(path, data)


def _read_doc(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path`` with a checked schema version; ``None`` if it does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        msg = f"{path}: cannot read: {e.strerror or e}"
        raise StateError(msg) from e
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        msg = f"{path}: not valid JSON: {e}"
        raise StateError(msg) from e
    if not isinstance(doc, dict):
        msg = f"{path}: expected a JSON object, found {type(doc).__name__}"
        raise StateError(msg)
    if "schema_version" not in doc:
        msg = f"{path}: missing field 'schema_version'"
        raise StateError(msg)
    version = doc["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version != SCHEMA_VERSION:
        msg = f"{path}: schema_version is {version!r}, this evoarena reads {SCHEMA_VERSION}"
        raise StateError(msg)
    return doc


# -- field checks (raise ValueError; callers add the file name) ----------------------------------


def _require(doc: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if name not in doc:
            msg = f"missing field '{name}'"
            raise ValueError(msg)


def _check_count(doc: Mapping[str, Any], name: str) -> int:
    value = doc[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"'{name}' must be a non-negative integer, was {value!r}"
        raise ValueError(msg)
    return value


def _check_timestamp(doc: Mapping[str, Any]) -> None:
    value = doc["timestamp"]
    try:
        ok = isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        ok = False
    if not ok:
        msg = f"'timestamp' must be an ISO-8601 time with a UTC offset, was {value!r}"
        raise ValueError(msg)


def _check_genomes(doc: Mapping[str, Any]) -> list[Genome]:
    items = doc["genomes"]
    if not isinstance(items, list) or not items:
        msg = "'genomes' must be a non-empty list"
        raise ValueError(msg)
    genomes = []
    for i, item in enumerate(items):
        try:
            genomes.append(parse_genome(item))
        except ValueError as e:
            msg = f"genomes[{i}]: {e}"
            raise ValueError(msg) from e
    return genomes


def _check_generation_field(doc: Mapping[str, Any], expected: int) -> None:
    found = _check_count(doc, "generation")
    if found != expected:
        msg = f"'generation' is {found} but the file is for generation {expected}"
        raise ValueError(msg)


def _is_finite_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _validate_generation_doc(doc: Mapping[str, Any], generation: int) -> list[Genome]:
    _require(doc, "generation", "timestamp", "genomes", "fitness_scores", "stats")
    _check_generation_field(doc, generation)
    _check_timestamp(doc)
    genomes = _check_genomes(doc)
    scores = doc["fitness_scores"]
    if not isinstance(scores, list) or not all(_is_finite_number(s) for s in scores):
        msg = "'fitness_scores' must be a list of finite numbers"
        raise ValueError(msg)
    if len(scores) != len(genomes):
        msg = f"{len(scores)} fitness scores for {len(genomes)} genomes"
        raise ValueError(msg)
    if not isinstance(doc["stats"], dict):
        msg = "'stats' must be an object"
        raise ValueError(msg)
    return genomes


def _validate_latest_doc(doc: Mapping[str, Any]) -> tuple[int, list[Genome]]:
    _require(doc, "generation", "file", "timestamp", "genomes")
    generation = _check_count(doc, "generation")
    if doc["file"] != generation_file_name(generation):
        msg = f"'file' is {doc['file']!r}, expected {generation_file_name(generation)!r}"
        raise ValueError(msg)
    _check_timestamp(doc)
    return generation, _check_genomes(doc)


def _validate_checkpoint_doc(doc: Mapping[str, Any], generation: int) -> None:
    _require(doc, "generation", "tick_count", "timestamp", "bots")
    _check_generation_field(doc, generation)
    _check_count(doc, "tick_count")
    _check_timestamp(doc)
    _check_bots(doc["bots"])


def _check_bots(bots: object) -> None:
    if not isinstance(bots, list):
        msg = "'bots' must be a list"
        raise ValueError(msg)
    for i, bot in enumerate(bots):
        if not isinstance(bot, dict):
            msg = f"bots[{i}]: expected an object"
            raise ValueError(msg)
        if not isinstance(bot.get("genome_id"), str):
            msg = f"bots[{i}]: missing string field 'genome_id'"
            raise ValueError(msg)
        if "genome" in bot:
            try:
                parse_genome(bot["genome"])
            except ValueError as e:
                msg = f"bots[{i}]: {e}"
                raise ValueError(msg) from e


def _load_validated(
    path: Path, check: Callable[[dict[str, Any]], _T]
) -> tuple[dict[str, Any], _T] | None:
    """``(doc, check(doc))``, ``None`` if the file is absent; ``StateError`` names the file."""
    doc = _read_doc(path)
    if doc is None:
        return None
    try:
        return doc, check(doc)
    except ValueError as e:
        msg = f"{path}: {e}"
        raise StateError(msg) from e


# -- generations and latest.json ------------------------------------------------------------------


def save_generation_state(
    generation: int,
    genomes: Sequence[Genome],
    fitness_scores: Sequence[float],
    stats: Mapping[str, Any],
    *,
    state_dir: Path,
    now_ms: int,
    results: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``gen_{NNNN}.json``, then point ``latest.json`` at it; returns the generation file.

    ``results`` (per-bot booked results aligned with ``genomes``, see
    :func:`~evoarena.evolution.stats.bot_result`) is stored as ``"results"`` when given.
    Raises ``ValueError`` for inconsistent arguments (lengths differ, non-finite fitness, no
    genomes, values orjson cannot encode) and :class:`StateError` if the disk refuses.
    """
    name = generation_file_name(generation)
    if not genomes:
        msg = f"generation {generation}: no genomes to save"
        raise ValueError(msg)
    if len(genomes) != len(fitness_scores):
        msg = f"generation {generation}: {len(genomes)} genomes but {len(fitness_scores)} scores"
        raise ValueError(msg)
    if not all(_is_finite_number(f) for f in fitness_scores):
        msg = f"generation {generation}: fitness scores must be finite numbers"
        raise ValueError(msg)
    timestamp = iso_timestamp(now_ms)
    genome_dicts = [g.to_dict() for g in genomes]
    doc = {
        "schema_version": SCHEMA_VERSION,
        "generation": generation,
        "timestamp": timestamp,
        "genomes": genome_dicts,
        "fitness_scores": [float(f) for f in fitness_scores],
        "stats": dict(stats),
    }
    if results is not None:
        if len(results) != len(genomes):
            msg = f"generation {generation}: {len(genomes)} genomes but {len(results)} results"
            raise ValueError(msg)
        doc["results"] = [dict(r) for r in results]
    path = state_dir / name
    _write_doc(path, doc)
    _write_latest(state_dir, generation, timestamp, genome_dicts)
    return path


def _write_latest(
    state_dir: Path, generation: int, timestamp: str, genome_dicts: list[dict[str, Any]]
) -> None:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "generation": generation,
        "file": generation_file_name(generation),
        "timestamp": timestamp,
        "genomes": genome_dicts,
    }
    _write_doc(state_dir / LATEST_FILE, doc)


def load_generation(generation: int, *, state_dir: Path) -> dict[str, Any] | None:
    """The validated content of ``gen_{NNNN}.json`` (genomes as dicts), or ``None`` if absent."""
    path = state_dir / generation_file_name(generation)
    loaded = _load_validated(path, lambda d: _validate_generation_doc(d, generation))
    return None if loaded is None else loaded[0]


def load_latest_state(*, state_dir: Path) -> tuple[int, list[Genome]] | None:
    """``(generation, genomes)`` of the most recent saved generation, or ``None`` if none is saved.

    ``latest.json`` is used when it is valid and no newer ``gen_*.json`` exists. Otherwise (it is
    missing or corrupt, or a crash came between the two writes of :func:`save_generation_state`)
    the newest *valid* generation file is used, corrupt ones are skipped with a warning, and
    ``latest.json`` is rewritten from it. Raises :class:`StateError` when state files exist but
    none is usable (rather than silently starting afresh over them).
    """
    path = state_dir / LATEST_FILE
    problems: list[str] = []
    latest: tuple[int, list[Genome]] | None = None
    try:
        loaded = _load_validated(path, _validate_latest_doc)
    except StateError as e:
        log.warning("latest_state_corrupt", file=str(path), error=str(e))
        problems.append(str(e))
        reason = f"{LATEST_FILE} is corrupt"
    else:
        if loaded is None:
            reason = f"{LATEST_FILE} is missing"
        else:
            latest = loaded[1]
            reason = f"{LATEST_FILE} points at generation {latest[0]} but a newer file exists"
    newer = [n for n in list_generations(state_dir) if latest is None or n > latest[0]]
    for n in reversed(newer):
        try:
            doc = load_generation(n, state_dir=state_dir)
        except StateError as e:
            log.warning("generation_file_corrupt_skipped", error=str(e))
            problems.append(str(e))
            continue
        if doc is None:  # removed since the directory was listed
            continue
        log.warning(
            "latest_state_rebuilt", file=str(path), source=generation_file_name(n), reason=reason
        )
        _rebuild_latest(state_dir, n, doc)
        return n, [Genome.from_dict(g) for g in doc["genomes"]]
    if latest is not None:
        return latest
    if problems:
        msg = f"{path}: no usable saved state; " + "; ".join(problems)
        raise StateError(msg)
    return None


def _rebuild_latest(state_dir: Path, generation: int, doc: Mapping[str, Any]) -> None:
    try:
        _write_latest(state_dir, generation, doc["timestamp"], doc["genomes"])
    except StateError as e:  # a read-only state dir still loads
        log.warning("latest_state_rebuild_failed", error=str(e))


# -- checkpoints ----------------------------------------------------------------------------------


def save_checkpoint(
    generation: int,
    checkpoint: Mapping[str, Any],
    tick_count: int,
    *,
    state_dir: Path,
    now_ms: int,
) -> Path:
    """Write ``checkpoint_gen{NNNN}.json``: ``checkpoint``'s keys plus generation, tick count, time.

    ``checkpoint`` must hold ``bots`` (see the module docstring) and must not use the keys
    ``schema_version``, ``generation``, ``tick_count`` or ``timestamp`` (``ValueError``).
    """
    path = state_dir / checkpoint_file_name(generation)
    clash = sorted(_CHECKPOINT_RESERVED.intersection(checkpoint))
    if clash:
        msg = f"{path}: checkpoint uses reserved keys {clash}"
        raise ValueError(msg)
    if isinstance(tick_count, bool) or not isinstance(tick_count, int) or tick_count < 0:
        msg = f"{path}: tick_count must be a non-negative integer, was {tick_count!r}"
        raise ValueError(msg)
    if "bots" not in checkpoint:
        msg = f"{path}: checkpoint has no 'bots'"
        raise ValueError(msg)
    try:
        _check_bots(checkpoint["bots"])
    except ValueError as e:
        msg = f"{path}: {e}"
        raise ValueError(msg) from e
    doc = {
        **checkpoint,
        "schema_version": SCHEMA_VERSION,
        "generation": generation,
        "tick_count": tick_count,
        "timestamp": iso_timestamp(now_ms),
    }
    _write_doc(path, doc)
    return path


def load_checkpoint(generation: int, *, state_dir: Path) -> dict[str, Any] | None:
    """The validated content of ``checkpoint_gen{NNNN}.json``, or ``None`` if absent."""
    path = state_dir / checkpoint_file_name(generation)
    loaded = _load_validated(path, lambda d: _validate_checkpoint_doc(d, generation))
    return None if loaded is None else loaded[0]


# -- hall of fame ---------------------------------------------------------------------------------


def save_hall_of_fame(
    generation: int,
    top_entries: Sequence[Mapping[str, Any]],
    *,
    state_dir: Path,
    now_ms: int,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> dict[str, Any]:
    """Merge ``top_entries`` into ``hall_of_fame.json`` and return what was written.

    Merge rules: :func:`~evoarena.evolution.hall_of_fame.merge_hall_of_fame`. Raises
    ``ValueError`` naming an invalid entry (nothing is written). A corrupt existing file is moved
    aside to ``hall_of_fame.json.corrupt`` (replacing an older one) with a warning, and a new hall
    of fame is started, so one bad file cannot stop the service at every generation's end.
    """
    _check_generation(generation)
    for i, entry in enumerate(top_entries):
        try:
            validate_entry(entry)
        except ValueError as e:
            msg = f"top_entries[{i}]: {e}"
            raise ValueError(msg) from e
    path = state_dir / HALL_OF_FAME_FILE
    try:
        existing = load_hall_of_fame(state_dir=state_dir)
    except StateError as e:
        aside = state_dir / CORRUPT_HALL_OF_FAME_FILE
        log.warning("hall_of_fame_corrupt", error=str(e), moved_to=str(aside))
        try:
            os.replace(path, aside)
        except OSError as oe:
            msg = f"{path}: corrupt and cannot be moved aside: {oe.strerror or oe}"
            raise StateError(msg) from oe
        existing = None
    hof = merge_hall_of_fame(
        existing,
        generation,
        top_entries,
        updated_at=iso_timestamp(now_ms),
        max_entries=max_entries,
    )
    doc = {"schema_version": SCHEMA_VERSION, **hof}
    _write_doc(path, doc)
    return doc


def load_hall_of_fame(*, state_dir: Path) -> dict[str, Any] | None:
    """The validated content of ``hall_of_fame.json``, or ``None`` if absent."""
    loaded = _load_validated(state_dir / HALL_OF_FAME_FILE, validate_hall_of_fame)
    return None if loaded is None else loaded[0]
