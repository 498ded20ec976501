"""One process per state directory, a writable check at start, exit 1 on a full disk, and a
replay that stops calmly on SIGTERM (twice)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from evoarena.cli import main
from evoarena.errors import StateLockedError
from evoarena.evolution import persistence
from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.statedir import LOCK_FILE, state_dir_lock

CONFIG = """
[evolution]
population_size = 10
elite_count = 2
tournament_size = 3
immigrant_count = 1
seed = 5
[trading]
generation_duration_secs = 3600
settlement_wait_secs = 3600
market_close_window_secs = 7200
"""


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("guard")
    path = tmp / "day.jsonl.gz"
    generate_day(path, markets=10, hours=3, seed=2, start_ms=DEFAULT_START_MS)
    (tmp / "cfg.toml").write_text(CONFIG)
    return path


def _args(day: Path, state: Path) -> list[str]:
    cfg = day.parent / "cfg.toml"
    return ["replay", str(day), "--config", str(cfg), "--state-dir", str(state), "--no-progress"]


def test_a_second_process_gets_one_line_and_exit_2(day: Path, tmp_path: Path) -> None:
    """While this process holds the lock, `evoarena replay` on the same directory exits 2."""
    state = tmp_path / "state"
    with state_dir_lock(state):
        with pytest.raises(StateLockedError, match=f"pid {os.getpid()}"), state_dir_lock(state):
            pass
        done = subprocess.run(
            [sys.executable, "-m", "evoarena", *_args(day, state)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"evoarena: error: {state}: in use by another evoarena process (pid {os.getpid()}); "
        "stop it first or use another --state-dir"
    ]
    assert not list(state.glob("gen_*.json"))
    # released with the file descriptor (and by the OS when a process dies, even by kill -9)
    with state_dir_lock(state):
        assert (state / LOCK_FILE).read_text().strip() == str(os.getpid())


def test_unusable_state_dir_is_reported_at_start(
    day: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state directory that cannot be created: exit 2 before any replay work."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(_args(day, blocker / "state")) == 2
    err = capsys.readouterr().err
    assert "cannot create the state directory" in err
    assert "Traceback" not in err


def test_full_disk_exits_1(
    day: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ENOSPC on a state write is exit 1 (systemd restarts; a later start can succeed)."""

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(persistence.os, "fsync", full)
    assert main(_args(day, tmp_path / "state")) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err
    assert "Traceback" not in err
    assert not [p for p in (tmp_path / "state").iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
def test_replay_stops_on_double_sigterm_with_exit_0(day: Path, tmp_path: Path) -> None:
    """SIGTERM twice during a replay: exit 0, one line saying how to resume, no traceback."""
    state = tmp_path / "state"
    env = {**os.environ, "EVOARENA_LOG__LEVEL": "info"}
    with subprocess.Popen(
        [sys.executable, "-m", "evoarena", *_args(day, state), "--verbose"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
    ) as proc:
        assert proc.stderr is not None
        for raw in proc.stderr:  # wait until the first generation is under way
            if b"generation_started" in raw:
                break
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 0, rest
    assert "stopped by SIGTERM" in rest
    assert "run the same command again to resume" in rest
    assert "Traceback" not in rest
