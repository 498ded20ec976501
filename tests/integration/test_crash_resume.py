"""kill -9 a real `evoarena replay` subprocess at chosen state writes; the same command again
ends with the state files of an uninterrupted run, byte for byte (benchmarks/crash_matrix.py
does this at 20 points)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.replayer import run_replay
from evoarena.settings import load_settings
from evoarena.testing import KILL_AT_RENAME

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


CONFIG = """
[evolution]
population_size = 10
elite_count = 2
tournament_size = 3
immigrant_count = 1
min_settled_trades = 1
seed = 5
[trading]
generation_duration_secs = 3600
settlement_wait_secs = 3600
checkpoint_every_ticks = 20
market_close_window_secs = 7200
"""


def _cli(tmp: Path, state: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = ["replay", str(tmp / "day.jsonl.gz"), "--config", str(tmp / "cfg.toml")]
    args += ["--state-dir", str(state), "--no-progress"]
    return subprocess.run(
        [sys.executable, "-c", KILL_AT_RENAME, *args],
        env={**os.environ, "EVOARENA_LOG__LEVEL": "error", **env},
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )


def _files(state: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in state.iterdir() if p.name != ".evoarena.lock"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A small day replayed once without interruption (in this process, as the CLI would), and
    the names its renames wrote, in order."""
    tmp = tmp_path_factory.mktemp("crash")
    generate_day(tmp / "day.jsonl.gz", markets=20, hours=4, seed=4, start_ms=DEFAULT_START_MS)
    (tmp / "cfg.toml").write_text(CONFIG)
    names: list[str] = []
    real_replace = os.replace

    def logged(src: Any, dst: Any) -> None:
        names.append(Path(dst).name)
        real_replace(src, dst)

    settings = load_settings(tmp / "cfg.toml", {"state": {"dir": str(tmp / "reference")}})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", logged)
        run_replay(tmp / "day.jsonl.gz", settings)
    return tmp, names


def _nth(names: list[str], name: str, n: int = 1) -> int:
    """The 1-based index of the n-th rename onto ``name``."""
    hits = [i + 1 for i, got in enumerate(names) if got == name]
    return hits[n - 1]


@pytest.mark.parametrize(
    ("label", "target", "nth", "phase"),
    [
        # mid-generation: a checkpoint of generation 2 just written → resume from it
        ("after-checkpoint", "checkpoint_gen0002.json", 2, "after"),
        # the hall-of-fame temp file written, not yet renamed → stray temp file, stale hall
        ("before-hall-of-fame", "hall_of_fame.json", 3, "before"),
    ],
)
def test_kill_9_then_rerun_gives_the_uninterrupted_state(
    reference: tuple[Path, list[str]], label: str, target: str, nth: int, phase: str
) -> None:
    """The killed run leaves a state the rerun completes into exactly the reference bytes."""
    tmp, names = reference
    state = tmp / f"state-{label}"
    killed = _cli(tmp, state, {"KILL_AT": str(_nth(names, target, nth)), "KILL_PHASE": phase})
    assert killed.returncode == -9
    if phase == "before":
        assert any(n.endswith(".tmp") for n in os.listdir(state)), "the kill left a temp file"
    rerun = _cli(tmp, state, {})
    assert rerun.returncode == 0, rerun.stderr
    expected = _files(tmp / "reference")
    got = _files(state)
    assert sorted(got) == sorted(expected)
    for name, data in expected.items():
        assert got[name] == data, name
