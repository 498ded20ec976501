"""Retention: delete old checkpoints and recording segments (``[retention]`` settings)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from evoarena.settings import Settings

if TYPE_CHECKING:
    from evoarena.supervisor import Supervisor

log = structlog.get_logger(__name__)

_CHECKPOINT = re.compile(r"checkpoint_gen(\d{4,})\.json")


def prune(settings: Settings, state_dir: Path, sup: Supervisor, *, now_wall_s: float) -> list[Path]:
    """Delete files older than their ``keep_days``; returns what was deleted.

    Checkpoints: only of generations that have finished (a ``gen_NNNN.json`` exists) and never
    the running generation's. Recordings: rotated segments of the current recording's base name,
    never the segment being written.
    """
    r = settings.retention
    deleted: list[Path] = []
    if r.checkpoints_keep_days > 0:
        cutoff = now_wall_s - r.checkpoints_keep_days * 86400
        running = sup.runner.run.generation if sup.runner.run is not None else None
        for path in state_dir.glob("checkpoint_gen*.json"):
            m = _CHECKPOINT.fullmatch(path.name)
            if m is None or int(m.group(1)) == running:
                continue
            if not (state_dir / f"gen_{m.group(1)}.json").exists():
                continue
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                deleted.append(path)
    rec = sup.recorder
    if r.recordings_keep_days > 0 and rec is not None:
        cutoff = now_wall_s - r.recordings_keep_days * 86400
        base = rec.base_path
        stem = base.name.split(".", 1)[0]
        for path in base.parent.glob(f"{stem}*"):
            if path == rec.path or not path.is_file() or ".jsonl" not in path.name:
                continue
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                deleted.append(path)
    if deleted:
        log.info("retention_pruned", files=[str(p) for p in deleted])
    return deleted
