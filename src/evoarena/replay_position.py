"""Where in a marked recording each state file was written: ``replay_position.json``.

A replay of a marked recording (``evoarena run --record``) must write generation files and
checkpoints byte-identical to the live run's, and those carry no ``recording_position``. The
positions an exact resume needs are kept beside them instead, in ``replay_position.json``::

    {"schema_version": 1,
     "entries": [{"file": "checkpoint_gen0002.json", "sha256": "<hex>", "position": {...}}, ...]}

one entry per state file written, keyed by the SHA-256 of the file's exact bytes, in write order.
An entry is written (atomically) *before* its state file, so every state file a marked replay
wrote has its entry; an entry whose file never got written (a kill between the two writes)
matches no file's bytes and is ignored, and a file whose bytes match no entry is not resumed from
(the replay falls back to an older consistent point: the previous checkpoint or the start of the
generation). Pruning depends only on the sequence of writes, so a killed-and-rerun replay ends
with the same bytes here as an uninterrupted one: entries of a checkpoint file keep its last
:data:`KEEP_PER_CHECKPOINT` writes (the current file, ``.prev``, and one being written), and a
generation's first checkpoint drops the entries of earlier generations' checkpoints.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import orjson
import structlog

from evoarena.errors import StateError
from evoarena.evolution import persistence

log = structlog.get_logger(__name__)

POSITION_FILE = "replay_position.json"
KEEP_PER_CHECKPOINT = 3
_CHECKPOINT = re.compile(r"checkpoint_gen(\d{4,})\.json")
_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def digest(data: bytes) -> str:
    """The key of a state file's entry: SHA-256 of its exact bytes."""
    return hashlib.sha256(data).hexdigest()


class PositionLog:
    """``replay_position.json`` of one state directory (read once, rewritten on every record)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / POSITION_FILE
        self.entries = self._load()

    def _load(self) -> list[dict[str, Any]]:
        try:
            doc = persistence.read_json_object(self.path)
        except StateError as e:
            doc = {"damaged": str(e)}
        if doc is None:
            return []
        entries = doc.get("entries")
        ok = (
            doc.get("schema_version") == 1
            and isinstance(entries, list)
            and all(
                isinstance(e, dict)
                and isinstance(e.get("file"), str)
                and isinstance(e.get("sha256"), str)
                and isinstance(e.get("position"), dict)
                for e in entries
            )
        )
        if not ok:
            log.warning(
                "replay_position_unusable",
                file=str(self.path),
                note="the replay cannot resume exactly from the saved state and breeds on from it",
            )
            return []
        assert isinstance(entries, list)  # noqa: S101 — checked above, for mypy
        return entries

    def record(self, path: Path, data: bytes, position: dict[str, Any]) -> None:
        """Note ``position`` for the state file ``path`` about to be written with ``data``."""
        key = digest(data)
        name = path.name
        entries = [e for e in self.entries if e["sha256"] != key]
        m = _CHECKPOINT.fullmatch(name)
        if m is not None:
            gen = int(m.group(1))
            entries = [e for e in entries if _checkpoint_gen(e["file"]) in (None, gen)]
            same = [i for i, e in enumerate(entries) if e["file"] == name]
            drop = set(same[: max(0, len(same) - (KEEP_PER_CHECKPOINT - 1))])
            entries = [e for i, e in enumerate(entries) if i not in drop]
        entries.append({"file": name, "sha256": key, "position": position})
        self.entries = entries
        doc = {"schema_version": 1, "entries": entries}
        persistence.atomic_write(self.path, orjson.dumps(doc, option=_OPTIONS))

    def position_of(self, path: Path) -> dict[str, Any] | None:
        """The position recorded for the current bytes of ``path`` (a checkpoint's ``.prev`` too;
        ``None``: none matches)."""
        try:
            key = digest(path.read_bytes())
        except OSError:
            return None
        for e in reversed(self.entries):
            if e["sha256"] == key and e["file"] == path.name.replace(".prev.json", ".json"):
                pos: dict[str, Any] = e["position"]
                return pos
        return None


def _checkpoint_gen(name: str) -> int | None:
    m = _CHECKPOINT.fullmatch(name)
    return None if m is None else int(m.group(1))
