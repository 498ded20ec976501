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

import contextlib
import errno
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

from evoarena.errors import StateError, StateWriteError
from evoarena.evolution import state_models
from evoarena.evolution.genome import Genome
from evoarena.evolution.hall_of_fame import (
    DEFAULT_MAX_ENTRIES,
    merge_hall_of_fame,
    parse_genome,
    validate_entry,
)

log = structlog.get_logger(__name__)

_T = TypeVar("_T")

SCHEMA_VERSION = 1
LATEST_FILE = "latest.json"
HALL_OF_FAME_FILE = "hall_of_fame.json"

_GEN_FILE = re.compile(r"gen_(\d{4,})\.json")
_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})
_TMP_FILE = re.compile(r"\..+\.[0-9a-f]+\.tmp")
_CHECKPOINT_FILE = re.compile(r"checkpoint_gen(\d{4,})(\.prev)?\.json")
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


def _atomic_write(path: Path, data: bytes, *, keep_previous: Path | None = None) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring).

    With ``keep_previous``, the file being replaced is first renamed there (a crash between the
    two renames leaves the previous file and no current one: loaders fall back to it).
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with open(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if keep_previous is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.replace(path, keep_previous)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as e:
        msg = f"{path}: cannot write: {e.strerror or e}"
        if e.errno in _DISK_ERRNOS:
            raise StateWriteError(msg) from e
        raise StateError(msg) from e
    _fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` in the state directory atomically (see the module docstring)."""
    ensure_state_dir(path.parent)
    _atomic_write(path, data)


def _write_doc(path: Path, doc: Mapping[str, Any]) -> None:
    data = _encode(path, doc)
    ensure_state_dir(path.parent)
    _atomic_write(path, data)


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; ``None`` if the file does not exist, :class:`StateError`
    naming the file if it cannot be read or is not a JSON object."""
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
    return doc


def _read_doc(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path`` with a checked schema version; ``None`` if it does not exist."""
    doc = read_json_object(path)
    if doc is None:
        return None
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
    model = state_models.validate(state_models.GenerationFile, doc)
    _check_generation_field(doc, generation)
    return [Genome.from_dict(g) for g in model.genomes]


def _validate_latest_doc(doc: Mapping[str, Any]) -> tuple[int, list[Genome]]:
    model = state_models.validate(state_models.LatestFile, doc)
    return model.generation, [Genome.from_dict(g) for g in model.genomes]


def _validate_checkpoint_doc(doc: Mapping[str, Any], generation: int) -> None:
    state_models.validate(state_models.CheckpointFile, doc)
    _check_generation_field(doc, generation)


def _validate_hall_of_fame_doc(doc: Mapping[str, Any]) -> None:
    state_models.validate(state_models.HallOfFameFile, doc)


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
    extra: Mapping[str, Any] | None = None,
    before_write: Callable[[Path, bytes], None] | None = None,
) -> Path:
    """Write ``gen_{NNNN}.json``, then point ``latest.json`` at it; returns the generation file.

    ``results`` (per-bot booked results aligned with ``genomes``, see
    :func:`~evoarena.evolution.stats.bot_result`) is stored as ``"results"`` when given.
    ``extra`` adds fields to the generation file (the runner adds ``hall_of_fame_entries``, the
    entries this generation gave the hall of fame, and ``recording_position``); it must not use
    the seed's keys. ``before_write(path, data)`` is called with the generation file's exact
    bytes just before they are written. Raises ``ValueError`` for inconsistent arguments
    (lengths differ, non-finite fitness, no genomes, values orjson cannot encode) and
    :class:`StateError` if the disk refuses.
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
    if extra:
        clash = sorted(set(doc).intersection(extra))
        if clash:
            msg = f"generation {generation}: extra fields use reserved keys {clash}"
            raise ValueError(msg)
        doc.update(extra)
    path = state_dir / name
    if before_write is None:
        _write_doc(path, doc)
    else:
        data = _encode(path, doc)
        ensure_state_dir(state_dir)
        before_write(path, data)
        _atomic_write(path, data)
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
    # The generation file latest.json points at must be usable too (the runner breeds from its
    # fitness scores): when it is damaged, fall back to the newest usable one below it.
    gens = list_generations(state_dir)
    candidates = [n for n in gens if latest is None or n >= latest[0]]
    if latest is not None and latest[0] in gens:
        candidates += [n for n in gens if n < latest[0]]
    for n in sorted(set(candidates), reverse=True):
        try:
            doc = load_generation(n, state_dir=state_dir)
        except StateError as e:
            log.warning("generation_file_corrupt_skipped", error=str(e))
            problems.append(str(e))
            if latest is not None and n == latest[0]:
                reason = f"{generation_file_name(n)}, which {LATEST_FILE} points at, is damaged"
            continue
        if doc is None:  # removed since the directory was listed
            continue
        if latest is not None and n == latest[0]:
            return latest
        log.warning(
            "latest_state_rebuilt", file=str(path), source=generation_file_name(n), reason=reason
        )
        _rebuild_latest(state_dir, n, doc)
        return n, [Genome.from_dict(g) for g in doc["genomes"]]
    if latest is not None and latest[0] not in gens:
        return latest  # no generation file at all for it: the runner reports that
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
    before_write: Callable[[Path, bytes], None] | None = None,
) -> Path:
    """Write ``checkpoint_gen{NNNN}.json``: ``checkpoint``'s keys plus generation, tick count, time.

    ``before_write(path, data)`` is called with the file's exact bytes before they are written.

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
    data = _encode(path, doc)
    ensure_state_dir(state_dir)
    if before_write is not None:
        before_write(path, data)
    try:
        if path.read_bytes() == data:
            return path  # the same checkpoint again (a rerun at the same point): keep both files
    except OSError:
        pass
    _atomic_write(path, data, keep_previous=previous_checkpoint_path(path))
    return path


def previous_checkpoint_path(path: Path) -> Path:
    """Where the checkpoint before ``path`` is kept (``checkpoint_genNNNN.prev.json``)."""
    return path.with_name(path.name.removesuffix(".json") + ".prev.json")


def load_checkpoint(
    generation: int, *, state_dir: Path, previous: bool = False
) -> dict[str, Any] | None:
    """The validated content of ``checkpoint_gen{NNNN}.json`` (``previous``: the one before it,
    ``checkpoint_gen{NNNN}.prev.json``), or ``None`` if absent."""
    path = state_dir / checkpoint_file_name(generation)
    if previous:
        path = previous_checkpoint_path(path)
    loaded = _load_validated(path, lambda d: _validate_checkpoint_doc(d, generation))
    return None if loaded is None else loaded[0]


def set_aside(path: Path) -> Path | None:
    """Rename a damaged state file to ``<name>.corrupt-N`` (never overwriting an earlier copy).

    Returns the new path, or ``None`` if the file vanished or cannot be renamed (logged).
    """
    n = 1
    while (aside := path.with_name(f"{path.name}.corrupt-{n}")).exists():
        n += 1
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return None
    except OSError as e:
        log.warning("state_file_set_aside_failed", file=str(path), error=str(e))
        return None
    log.warning("state_file_set_aside", file=str(path), moved_to=str(aside))
    return aside


# -- start-up housekeeping ------------------------------------------------------------------------


def clean_state_dir(state_dir: Path, *, completed_through: int | None) -> list[str]:
    """Remove what a crash or a finished generation leaves behind; returns the names removed.

    Stray temp files (``.<name>.<hex>.tmp``) are unfinished writes: the file they were to replace
    is intact. Checkpoints of generations up to ``completed_through`` are history (their
    generation file holds the outcome), so only the running generation's two newest remain.
    """
    try:
        names = sorted(os.listdir(state_dir))
    except FileNotFoundError:
        return []
    except OSError as e:
        msg = f"{state_dir}: cannot list the state directory: {e.strerror}"
        raise StateError(msg) from e
    removed = []
    for name in names:
        m = _CHECKPOINT_FILE.fullmatch(name)
        stale_cp = (
            m is not None and completed_through is not None and int(m.group(1)) <= completed_through
        )
        if _TMP_FILE.fullmatch(name) or stale_cp:
            try:
                (state_dir / name).unlink()
            except FileNotFoundError:
                continue
            except OSError as e:
                log.warning("state_cleanup_failed", file=name, error=str(e))
                continue
            removed.append(name)
    if removed:
        log.info("state_dir_cleaned", dir=str(state_dir), removed=removed)
    return removed


def check_writable(state_dir: Path) -> None:
    """Create ``state_dir`` and prove a file can be written, synced and removed there.

    Raises :class:`StateError` (exit 2: a person must fix permissions) or
    :class:`~evoarena.errors.StateWriteError` (exit 1: a full disk may clear).
    """
    ensure_state_dir(state_dir)
    probe = state_dir / ".write-probe.json"
    _atomic_write(probe, b"{}\n")
    try:
        probe.unlink()
    except OSError as e:
        msg = f"{state_dir}: cannot remove a file: {e.strerror or e}"
        raise StateError(msg) from e


# -- hall of fame ---------------------------------------------------------------------------------


def save_hall_of_fame(
    generation: int,
    top_entries: Sequence[Mapping[str, Any]],
    *,
    state_dir: Path,
    now_ms: int,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    window_results: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Merge ``top_entries`` into ``hall_of_fame.json`` and return what was written.

    Merge rules (and ``window_results``, the generation's results by gene hash for the
    out-of-sample records): :func:`~evoarena.evolution.hall_of_fame.merge_hall_of_fame`. Raises
    ``ValueError`` naming an invalid entry (nothing is written). A corrupt existing file is set
    aside (:func:`set_aside`, never overwriting an earlier copy) and the hall of fame is rebuilt
    from the generation files before ``generation`` (:func:`rebuild_hall_of_fame`), so no entry
    those files recorded is lost.
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
        log.warning("hall_of_fame_corrupt", error=str(e), action="rebuilt from generation files")
        set_aside(path)
        existing = (
            rebuild_hall_of_fame(state_dir, max_entries=max_entries, through=generation - 1)
            if generation > 0
            else None
        )
    hof = merge_hall_of_fame(
        existing,
        generation,
        top_entries,
        updated_at=iso_timestamp(now_ms),
        max_entries=max_entries,
        window_results=window_results,
    )
    doc = {"schema_version": SCHEMA_VERSION, **hof}
    _write_doc(path, doc)
    return doc


HALL_OF_FAME_ENTRIES_FIELD = "hall_of_fame_entries"
"""The generation-file field holding what that generation gave the hall of fame."""


def _fold_hall_of_fame(
    state_dir: Path,
    existing: dict[str, Any] | None,
    generations: Sequence[int],
    max_entries: int,
) -> tuple[dict[str, Any] | None, list[int]]:
    """Merge the recorded entries of ``generations`` (in order) onto ``existing``.

    Returns the result and the generations that could not contribute (file missing, corrupt,
    or written before generation files recorded their entries).
    """
    hof = existing
    missing: list[int] = []
    for n in generations:
        try:
            doc = load_generation(n, state_dir=state_dir)
        except StateError as e:
            log.warning("generation_file_corrupt_skipped", error=str(e))
            doc = None
        entries = None if doc is None else doc.get(HALL_OF_FAME_ENTRIES_FIELD)
        if doc is None or not isinstance(entries, list):
            missing.append(n)
            continue
        try:
            hof = merge_hall_of_fame(
                hof,
                n,
                entries,
                updated_at=str(doc["timestamp"]),
                max_entries=max_entries,
                window_results=_window_results(doc),
            )
        except ValueError as e:
            log.warning("generation_hall_of_fame_entries_invalid", generation=n, error=str(e))
            missing.append(n)
    return hof, missing


def _window_results(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]] | None:
    """A generation file's per-bot results by gene hash (the out-of-sample records' input)."""
    results = doc.get("results")
    if not isinstance(results, list):
        return None
    out: dict[str, Mapping[str, Any]] = {}
    for r in results:  # the first bot with those genes, as the runner chose
        if isinstance(r, dict) and "gene_hash" in r:
            out.setdefault(str(r["gene_hash"]), r)
    return out


def rebuild_hall_of_fame(
    state_dir: Path, *, max_entries: int = DEFAULT_MAX_ENTRIES, through: int | None = None
) -> dict[str, Any] | None:
    """The hall of fame as the generation files (up to ``through``) make it, or ``None``.

    Folds every generation file's ``hall_of_fame_entries`` through
    :func:`~evoarena.evolution.hall_of_fame.merge_hall_of_fame` in generation order: exactly the
    file the runner wrote generation by generation. Nothing is written.
    """
    gens = [n for n in list_generations(state_dir) if through is None or n <= through]
    hof, missing = _fold_hall_of_fame(state_dir, None, gens, max_entries)
    if missing:
        log.warning(
            "hall_of_fame_rebuild_incomplete",
            generations_without_entries=missing,
            note="these generation files do not record their hall-of-fame entries",
        )
    return None if hof is None else {"schema_version": SCHEMA_VERSION, **hof}


def reconcile_hall_of_fame(
    state_dir: Path, *, latest_generation: int | None, max_entries: int = DEFAULT_MAX_ENTRIES
) -> str:
    """Make ``hall_of_fame.json`` agree with the generation files; returns what was done.

    ``ok`` (it already records ``latest_generation``), ``caught_up`` (a crash came between a
    generation file and the hall-of-fame write: the missing generations are merged in),
    ``rebuilt`` (missing, corrupt, or ahead of the generation files: rebuilt from them; a
    corrupt file is set aside first) or ``none`` (no generations, no hall of fame).
    """
    path = state_dir / HALL_OF_FAME_FILE
    try:
        hof = load_hall_of_fame(state_dir=state_dir)
    except StateError as e:
        log.warning("hall_of_fame_corrupt", error=str(e), action="rebuilt from generation files")
        set_aside(path)
        hof = None
    if latest_generation is None:
        return "ok" if hof is not None else "none"
    if hof is not None:
        recorded = int(hof["latest_generation"])
        if recorded == latest_generation:
            return "ok"
        if recorded < latest_generation:
            gens = [n for n in list_generations(state_dir) if recorded < n <= latest_generation]
            body = {k: v for k, v in hof.items() if k != "schema_version"}
            caught, missing = _fold_hall_of_fame(state_dir, body, gens, max_entries)
            if not missing and caught is not None:
                log.warning(
                    "hall_of_fame_caught_up", from_generation=recorded, to=latest_generation
                )
                _write_doc(path, {"schema_version": SCHEMA_VERSION, **caught})
                return "caught_up"
    gens = [n for n in list_generations(state_dir) if n <= latest_generation]
    rebuilt, missing = _fold_hall_of_fame(state_dir, None, gens, max_entries)
    if hof is not None and missing:
        log.warning(
            "hall_of_fame_disagrees_kept",
            note="older generation files do not record their entries; keeping the file",
            generations_without_entries=missing,
        )
        return "ok"
    if rebuilt is None:
        return "none"
    if missing:
        log.warning("hall_of_fame_rebuild_incomplete", generations_without_entries=missing)
    log.warning("hall_of_fame_rebuilt", latest_generation=latest_generation)
    _write_doc(path, {"schema_version": SCHEMA_VERSION, **rebuilt})
    return "rebuilt"


def load_hall_of_fame(*, state_dir: Path) -> dict[str, Any] | None:
    """The validated content of ``hall_of_fame.json``, or ``None`` if absent."""
    loaded = _load_validated(state_dir / HALL_OF_FAME_FILE, _validate_hall_of_fame_doc)
    return None if loaded is None else loaded[0]


def write_hall_of_fame(hof: Mapping[str, Any], *, state_dir: Path) -> dict[str, Any]:
    """Write a whole hall-of-fame document (e.g. a merge of several runs') atomically.

    ``hof`` is validated first (``ValueError`` naming the problem; nothing is written); the
    schema version is added. Returns what was written.
    """
    doc = {**hof, "schema_version": SCHEMA_VERSION}
    _validate_hall_of_fame_doc(doc)
    _write_doc(state_dir / HALL_OF_FAME_FILE, doc)
    return doc
