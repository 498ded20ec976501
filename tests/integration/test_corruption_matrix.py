"""The corruption matrix: every state file truncated, emptied, garbled, of the wrong type, of
another schema version. Starting over it never raises a traceback, never exits 2 for something a
restart can fix, and loses no hall-of-fame entry; a replay rerun ends where an undamaged one
does."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from evoarena.cli import main
from evoarena.engine.book import MarketBook
from evoarena.evolution import persistence
from evoarena.evolution.runner import EvolutionRunner, load_usable_checkpoint
from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.replayer import plan_resume, recording_fingerprint
from evoarena.settings import Settings, load_settings

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
# On this 5 h day no market closes early enough for the default margin: without it the bots
# trade, so the hall of fame holds real entries to lose (or not).
settlement_margin_secs = 0
"""


def _truncate(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def _empty(raw: bytes) -> bytes:
    return b""


def _garble(raw: bytes) -> bytes:
    data = bytearray(raw)
    for i in range(7, len(data), 97):
        data[i] = (data[i] * 31 + 7) % 256
    return bytes(data)


def _wrong_type(raw: bytes) -> bytes:
    doc = orjson.loads(raw)
    for key in ("exchange", "genomes", "entries", "bots"):
        if key in doc:
            doc[key] = None if key == "exchange" else "x"
            break
    return orjson.dumps(doc)


def _array(raw: bytes) -> bytes:
    return b"[1, 2, 3]"


def _schema(raw: bytes) -> bytes:
    doc = orjson.loads(raw)
    doc["schema_version"] = 2
    return orjson.dumps(doc)


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": _truncate,
    "emptied": _empty,
    "garbled": _garble,
    "wrong-type": _wrong_type,
    "not-an-object": _array,
    "schema-2": _schema,
}
FILES = ("newest-generation", "latest.json", "checkpoint", "hall_of_fame.json")


def _resolve(state: Path, name: str) -> tuple[int, str]:
    """(the newest generation, the file name ``name`` stands for) in an undamaged directory."""
    newest = persistence.list_generations(state)[-1]
    if name == "newest-generation":
        return newest, persistence.generation_file_name(newest)
    if name == "checkpoint":
        return newest, persistence.checkpoint_file_name(newest + 1)
    return newest, name


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(recording, config, the state directory of an undamaged replay)."""
    tmp = tmp_path_factory.mktemp("corrupt")
    day = tmp / "day.jsonl.gz"
    generate_day(day, markets=16, hours=5, seed=4, start_ms=DEFAULT_START_MS)
    cfg = tmp / "cfg.toml"
    cfg.write_text(CONFIG)
    state = tmp / "reference"
    assert main(_args(day, cfg, state)) == 0
    newest = persistence.list_generations(state)[-1]
    assert newest >= 2
    names = {p.name for p in state.iterdir()}
    assert persistence.checkpoint_file_name(newest + 1) in names
    return day, cfg, state


def _args(day: Path, cfg: Path, state: Path) -> list[str]:
    return ["replay", str(day), "--config", str(cfg), "--state-dir", str(state), "--no-progress"]


def _settings(cfg: Path, state: Path) -> Settings:
    return load_settings(cfg, {"state": {"dir": str(state)}})


def _entries(state: Path) -> list[Any]:
    return list(orjson.loads((state / "hall_of_fame.json").read_bytes())["entries"])


def _state(state: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in state.iterdir()
        if p.name != ".evoarena.lock" and ".corrupt-" not in p.name
    }


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("name", FILES)
def test_start_over_damage_repairs_and_loses_nothing(
    setup: tuple[Path, Path, Path], tmp_path: Path, name: str, damage: str
) -> None:
    """What a start does with the damaged directory: no exception, the hall of fame whole."""
    day, cfg, reference = setup
    newest, name = _resolve(reference, name)
    state = tmp_path / "state"
    shutil.copytree(reference, state)
    path = state / name
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    settings = _settings(cfg, state)
    runner = EvolutionRunner(settings, MarketBook())
    latest = runner.housekeeping()
    assert latest is not None
    damaged_gen = name == persistence.generation_file_name(newest)
    assert latest[0] == (newest - 1 if damaged_gen else newest)
    plan = plan_resume(state, recording_fingerprint(day), settings)
    assert plan is not None
    cp = load_usable_checkpoint(latest[0] + 1, state, settings)
    if name.startswith("checkpoint"):  # kept aside; the previous checkpoint is used
        assert (state / f"{name}.corrupt-1").read_bytes() == DAMAGE[damage](
            (reference / name).read_bytes()
        )
        prev = reference / name.replace(".json", ".prev.json")
        if prev.exists():  # the previous checkpoint is used, else the generation's start
            assert cp is not None
            assert cp["tick_count"] == orjson.loads(prev.read_bytes())["tick_count"]
        else:
            assert cp is None
            assert plan.checkpoint is None
    expected = _entries(reference)
    got = _entries(state)
    if damaged_gen:
        # the damaged generation is re-run by the next replay; everything before it is kept
        # (the hall of fame is as it was before that generation: its entries come back then;
        # the out-of-sample records it extended are as they were before it)
        def in_sample(entries: list[Any]) -> list[Any]:
            return [
                {k: v for k, v in e.items() if k != "out_of_sample"}
                for e in entries
                if e["generation"] < newest
            ]

        assert in_sample(expected) == [e for e in in_sample(got) if e in in_sample(expected)]
        assert all(e in in_sample(got) for e in in_sample(expected))
    else:
        assert got == expected


@pytest.mark.slow
@pytest.mark.parametrize("name", ["newest-generation", "checkpoint", "hall_of_fame.json"])
def test_replay_rerun_over_damage_ends_as_undamaged(
    setup: tuple[Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
) -> None:
    """The same replay command over a damaged file: exit 0, no traceback, the reference state
    (a damaged checkpoint is kept aside as ``.corrupt-1``)."""
    day, cfg, reference = setup
    _, name = _resolve(reference, name)
    state = tmp_path / "state"
    shutil.copytree(reference, state)
    (state / name).write_bytes(_truncate((state / name).read_bytes()))
    assert main(_args(day, cfg, state)) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert _state(state) == _state(reference)
    if name.startswith("checkpoint"):
        assert (state / f"{name}.corrupt-1").is_file()
    assert persistence.load_hall_of_fame(state_dir=state) is not None
