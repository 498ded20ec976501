"""A marked recording (as `evoarena run --record` writes) resumes exactly too: kill -9 a real
`evoarena replay` subprocess at chosen state writes, run the same command again, and the state
directory ends byte-identical to an uninterrupted replay — while the generation files and
checkpoints stay free of ``recording_position`` (they must equal the live run's; the positions
are kept in ``replay_position.json``).

The marked recording is a synthetic day with the marks the live service writes inserted: a
``start`` mark after the first order-book snapshot's instant, then a ``fire`` mark every tick
interval, each before the first item received after its time (where the live scheduler would
have woken up), as :meth:`evoarena.supervisor.Supervisor._scheduler` records them.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_crash_resume import CONFIG

from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.replay_position import POSITION_FILE, PositionLog
from evoarena.replayer import plan_resume, recording_fingerprint, run_replay
from evoarena.settings import Settings, load_settings
from evoarena.testing import KILL_AT_RENAME

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def mark_day(day: Path, out: Path, tick_ms: int) -> None:
    """Write ``day`` as a marked recording: header ``"marks": true``, a ``start`` mark and a
    ``fire`` mark every ``tick_ms`` (the format :class:`~evoarena.supervisor.Supervisor`
    records)."""
    lines = gzip.decompress(day.read_bytes()).splitlines()
    header = {**orjson.loads(lines[0]), "marks": True}
    items = [(orjson.loads(line)["t_ms"], line) for line in lines[1:]]
    snapshot_ms = next(
        t
        for t, line in items
        if b'"type":"orderbook_snapshot"' in line or b'"type": "orderbook_snapshot"' in line
    )
    out_lines = [orjson.dumps(header)]
    started = False
    next_fire = snapshot_ms + tick_ms
    for t, line in items:
        if not started and t > snapshot_ms:
            start = {
                "kind": "start",
                "now_ms": snapshot_ms,
                "generation": 0,
                "resumed_from": None,
                "resumed_checkpoint": False,
                "tick": 0,
            }
            out_lines.append(orjson.dumps({"t_ms": snapshot_ms, "mark": start}))
            started = True
        while started and t > next_fire:
            fire = {"kind": "fire", "now_ms": next_fire}
            out_lines.append(orjson.dumps({"t_ms": next_fire, "mark": fire}))
            next_fire += tick_ms
        out_lines.append(line)
    last = items[-1][0]
    out_lines.append(orjson.dumps({"t_ms": last, "mark": {"kind": "stop", "now_ms": last}}))
    out.write_bytes(gzip.compress(b"\n".join(out_lines) + b"\n", mtime=0))


def _settings(tmp: Path, state: Path) -> Settings:
    return load_settings(tmp / "cfg.toml", {"state": {"dir": str(state)}})


def _files(state: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in state.iterdir() if p.name != ".evoarena.lock"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The marked day replayed once without interruption (in this process, as the CLI would),
    and the names its renames wrote, in order."""
    tmp = tmp_path_factory.mktemp("marked")
    generate_day(tmp / "day.jsonl.gz", markets=20, hours=4, seed=4, start_ms=DEFAULT_START_MS)
    (tmp / "cfg.toml").write_text(CONFIG)
    settings = _settings(tmp, tmp / "reference")
    mark_day(
        tmp / "day.jsonl.gz", tmp / "marked.jsonl.gz", settings.trading.tick_interval_secs * 1000
    )
    names: list[str] = []
    real_replace = os.replace

    def logged(src: Any, dst: Any) -> None:
        names.append(Path(dst).name)
        real_replace(src, dst)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", logged)
        report = run_replay(tmp / "marked.jsonl.gz", settings)
    assert report.marked
    assert len(report.generations) >= 2
    return tmp, names


def test_marked_state_files_carry_no_position(reference: tuple[Path, list[str]]) -> None:
    """The live run's files have no recording position, so neither have the replay's."""
    tmp, _names = reference
    state = tmp / "reference"
    for path in state.glob("*.json"):
        if path.name != POSITION_FILE:
            assert b"recording_position" not in path.read_bytes(), path.name
    entries = orjson.loads((state / POSITION_FILE).read_bytes())["entries"]
    assert {e["file"] for e in entries} >= {"gen_0000.json", "gen_0001.json"}


def test_marked_generations_count_the_whole_state_directory(
    reference: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """--generations 1, then the same without a limit: the uninterrupted run's bytes."""
    tmp, _names = reference
    state = tmp_path / "s"
    first = run_replay(tmp / "marked.jsonl.gz", _settings(tmp, state), max_generations=1)
    assert [g.generation for g in first.generations] == [0]
    rest = run_replay(tmp / "marked.jsonl.gz", _settings(tmp, state))
    assert rest.generations[0].generation == 1
    assert rest.resumed_from == 0
    assert _files(state) == _files(tmp / "reference")


def test_marked_rerun_after_the_end_changes_nothing(
    reference: tuple[Path, list[str]], tmp_path: Path
) -> None:
    tmp, _names = reference
    state = tmp_path / "s"
    shutil.copytree(tmp / "reference", state)
    run_replay(tmp / "marked.jsonl.gz", _settings(tmp, state))
    assert _files(state) == _files(tmp / "reference")


def _cli(tmp: Path, state: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = ["replay", str(tmp / "marked.jsonl.gz"), "--config", str(tmp / "cfg.toml")]
    args += ["--state-dir", str(state), "--no-progress"]
    return subprocess.run(
        [sys.executable, "-c", KILL_AT_RENAME, *args],
        env={**os.environ, "EVOARENA_LOG__LEVEL": "error", **env},
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )


def _nth(names: list[str], name: str, n: int = 1) -> int:
    """The 1-based index of the n-th rename onto ``name``."""
    hits = [i + 1 for i, got in enumerate(names) if got == name]
    return hits[n - 1]


@pytest.mark.parametrize(
    ("label", "target", "nth", "phase", "resume_tick"),
    [
        # mid-generation: a checkpoint of generation 1 just written → resume from it (tick 40)
        ("after-checkpoint", "checkpoint_gen0001.json", 2, "after", 40),
        # the third checkpoint's position entry written, the old checkpoint renamed to .prev,
        # the new one not in place → resume from .prev (tick 40)
        ("before-checkpoint", "checkpoint_gen0001.json", 3, "before", 40),
        # the generation file written, the hall of fame not → the next generation's start
        ("before-hall-of-fame", "hall_of_fame.json", 1, "before", None),
    ],
)
def test_kill_9_during_a_marked_replay_then_rerun_gives_the_uninterrupted_state(
    reference: tuple[Path, list[str]],
    label: str,
    target: str,
    nth: int,
    phase: str,
    resume_tick: int | None,
) -> None:
    """The killed run leaves a state the rerun completes into exactly the reference bytes."""
    tmp, names = reference
    state = tmp / f"state-{label}"
    killed = _cli(tmp, state, {"KILL_AT": str(_nth(names, target, nth)), "KILL_PHASE": phase})
    assert killed.returncode == -9, killed.stderr
    settings = _settings(tmp, state)
    plan = plan_resume(
        state, recording_fingerprint(tmp / "marked.jsonl.gz"), settings, PositionLog(state)
    )
    assert plan is not None, "the killed run left a saved point to fast-forward to"
    if resume_tick is None:
        assert plan.checkpoint is None
    else:
        assert plan.checkpoint is not None
        assert plan.checkpoint["tick_count"] == resume_tick
    rerun = _cli(tmp, state, {})
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed after generation 0" in rerun.stdout
    expected = _files(tmp / "reference")
    got = _files(state)
    assert sorted(got) == sorted(expected)
    for name, data in expected.items():
        assert got[name] == data, name
