"""[retention]: old checkpoints of finished generations and old recording segments go."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from evoarena.observe.retention import prune
from evoarena.settings import load_settings

NOW = 1_800_000_000.0
DAY = 86400


def _touch(path: Path, age_days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}", encoding="utf-8")
    os.utime(path, (NOW - age_days * DAY, NOW - age_days * DAY))
    return path


def test_prunes_only_what_is_old_and_finished(tmp_path: Path) -> None:
    state, recs = tmp_path / "state", tmp_path / "rec"
    settings = load_settings(
        None, {"retention": {"checkpoints_keep_days": 7, "recordings_keep_days": 3}}
    )
    _touch(state / "gen_0000.json", 30)
    old_done = _touch(state / "checkpoint_gen0000.json", 30)
    unfinished = _touch(state / "checkpoint_gen0001.json", 30)  # no gen_0001.json: keep
    _touch(state / "gen_0002.json", 30)
    recent_done = _touch(state / "checkpoint_gen0002.json", 2)
    running = _touch(state / "checkpoint_gen0003.json", 30)
    base = _touch(recs / "kalshi.jsonl.gz", 10)
    old_seg = _touch(recs / "kalshi.0001.jsonl.gz", 5)
    new_seg = _touch(recs / "kalshi.0002.jsonl.gz", 1)
    current = _touch(recs / "kalshi.0003.jsonl.gz", 9)  # being written: never
    other = _touch(recs / "notes.txt", 30)
    sup: Any = SimpleNamespace(
        runner=SimpleNamespace(run=SimpleNamespace(generation=3)),
        recorder=SimpleNamespace(base_path=base, path=current),
    )
    deleted = prune(settings, state, sup, now_wall_s=NOW)
    assert sorted(deleted) == sorted([old_done, base, old_seg])
    for kept in (unfinished, recent_done, running, new_seg, current, other):
        assert kept.exists(), kept


def test_zero_keeps_everything(tmp_path: Path) -> None:
    settings = load_settings()
    old = _touch(tmp_path / "checkpoint_gen0000.json", 999)
    _touch(tmp_path / "gen_0000.json", 999)
    sup: Any = SimpleNamespace(runner=SimpleNamespace(run=None), recorder=None)
    assert prune(settings, tmp_path, sup, now_wall_s=NOW) == []
    assert old.exists()
