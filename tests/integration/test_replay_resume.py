"""Replay resumes exactly: --generations counts the whole state directory, a rerun continues
from the saved position, and the hall of fame follows the generation files."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import orjson
import pytest

from evoarena.errors import UserError
from evoarena.evolution import persistence
from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.replayer import run_replay
from evoarena.settings import Settings, load_settings

OVERRIDES = {
    "evolution": {
        "population_size": 10,
        "elite_count": 2,
        "tournament_size": 3,
        "immigrant_count": 1,
        "min_settled_trades": 1,
        "seed": 5,
    },
    "trading": {
        "generation_duration_secs": 3600,
        "settlement_wait_secs": 3600,
        "checkpoint_every_ticks": 20,
        "market_close_window_secs": 7200,
    },
}


def _settings(state: Path) -> Settings:
    return load_settings(None, {**OVERRIDES, "state": {"dir": str(state)}})


def _files(state: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in state.iterdir() if p.name != ".evoarena.lock"}


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("resume") / "day.jsonl.gz"
    generate_day(path, markets=20, hours=4, seed=4, start_ms=DEFAULT_START_MS)
    return path


@pytest.fixture(scope="module")
def whole(day: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("whole") / "state"
    run_replay(day, _settings(state))
    return state


def test_generations_count_the_whole_state_directory(
    day: Path, whole: Path, tmp_path: Path
) -> None:
    """--generations 2, then the same without a limit: the uninterrupted run's bytes."""
    state = tmp_path / "s"
    first = run_replay(day, _settings(state), max_generations=2)
    assert [g.generation for g in first.generations] == [0, 1]
    again = run_replay(day, _settings(state), max_generations=2)
    assert again.generations == []  # already two: nothing to do
    rest = run_replay(day, _settings(state))
    assert rest.generations[0].generation == 2
    assert _files(state) == _files(whole)


def test_rerun_after_the_end_changes_nothing(day: Path, whole: Path, tmp_path: Path) -> None:
    """Resuming from the final checkpoint (taken when the recording ended) is a no-op."""
    state = tmp_path / "s"
    shutil.copytree(whole, state)
    run_replay(day, _settings(state))
    assert _files(state) == _files(whole)


def test_lost_hall_of_fame_and_latest_are_rebuilt(day: Path, whole: Path, tmp_path: Path) -> None:
    """A kill between the generation file and the hall of fame / latest.json: the rerun catches
    the hall of fame up from the generation files and ends identical."""
    state = tmp_path / "s"
    run_replay(day, _settings(state), max_generations=2)
    last = persistence.list_generations(state)[-1]
    hof = orjson.loads((state / "hall_of_fame.json").read_bytes())
    # what the state looked like before generation `last` reached the hall of fame
    before = tmp_path / "before"
    run_replay(day, _settings(before), max_generations=last)
    (state / "hall_of_fame.json").write_bytes((before / "hall_of_fame.json").read_bytes())
    (state / "latest.json").unlink()
    (state / ".hall_of_fame.json.0badc0de.tmp").write_bytes(b"{partial")
    run_replay(day, _settings(state))
    assert _files(state) == _files(whole)
    assert hof["entries"][0] in orjson.loads((state / "hall_of_fame.json").read_bytes())["entries"]


def test_a_different_recording_with_the_same_start_is_refused(
    day: Path, whole: Path, tmp_path: Path
) -> None:
    """A state directory saved at a point this recording does not reach: one clear error."""
    state = tmp_path / "s"
    shutil.copytree(whole, state)
    lines = gzip.decompress(day.read_bytes()).splitlines(keepends=True)
    short = tmp_path / "short.jsonl.gz"  # the same first lines (so the same fingerprint)
    short.write_bytes(gzip.compress(b"".join(lines[: len(lines) // 2]), mtime=0))
    with pytest.raises(UserError, match=r"the saved state was taken at item \d+"):
        run_replay(short, _settings(state))
