"""``evoarena hof``: the table, --json, --top, and clear failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from random import Random
from typing import Any

import orjson
import pytest
import structlog

from evoarena.cli import main
from evoarena.evolution.genome import Genome
from evoarena.evolution.persistence import load_hall_of_fame, save_hall_of_fame

NOW = 1_704_067_200_000


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """main() configures structlog for the captured stderr; undo that after each test."""
    yield
    structlog.reset_defaults()


def _entry(seed: int, fitness: float, generation: int, signal: str) -> dict[str, Any]:
    g = Genome.random(Random(seed), generation)
    return {
        "genome": g.to_dict(),
        "fitness_roi_pct": fitness,
        "total_trades": 10 + seed,
        "settled_trades": 5 + seed,
        "win_rate": 0.625,
        "realized_pnl": fitness / 4,
        "generation": generation,
        "signal_type": signal,
        "params": g.decode().to_dict(),
    }


def _populate(state: Path) -> list[str]:
    entries = [
        _entry(1, 4.5, 0, "momentum"),
        _entry(2, 12.25, 1, "value"),
        _entry(3, -2.0, 1, "contrarian"),
    ]
    save_hall_of_fame(1, entries, state_dir=state, now_ms=NOW)
    return [e["genome"]["id"] for e in (entries[1], entries[0], entries[2])]


def test_table_lists_entries_best_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each row shows rank, id, generation, ROI, trades, win rate, P&L and signal."""
    ids = _populate(tmp_path)
    assert main(["hof", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    positions = [out.index(gid) for gid in ids]
    assert positions == sorted(positions)
    first = next(line for line in out.splitlines() if ids[0] in line)
    for cell in ("1", "+12.25", "12", "+3.06", "value"):  # win rate and P&L: --json
        assert cell in first.split()
    for legend in ("IS = in-sample", "OOS = out-of-sample", "ROI on stake"):
        assert legend in out
    # fitness and ROI on bankroll are different figures, named apart (issue 11)
    flat = " ".join(out.split())
    assert f"genome {ids[0]} (gen 1, value): fitness +12.25, ROI on bankroll +3.06%" in flat


def test_top_limits_the_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--top N shows only the best N."""
    ids = _populate(tmp_path)
    assert main(["hof", "--state-dir", str(tmp_path), "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert ids[0] in out
    assert ids[1] not in out
    assert ids[2] not in out


def test_json_prints_the_file_content(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json output parses to exactly what the file holds."""
    _populate(tmp_path)
    assert main(["hof", "--state-dir", str(tmp_path), "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out) == load_hall_of_fame(state_dir=tmp_path)


def test_state_dir_from_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --state-dir the configured state.dir is used (--config works)."""
    state = tmp_path / "elsewhere"
    ids = _populate(state)
    config = tmp_path / "my.toml"
    config.write_text(f'[state]\ndir = "{state.as_posix()}"\n')
    assert main(["hof", "--config", str(config)]) == 0
    assert ids[0] in capsys.readouterr().out


def test_no_hall_of_fame_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty state directory gives a clear message, not a traceback."""
    assert main(["hof", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no hall of fame" in err
    assert str(tmp_path) in err
    assert "Traceback" not in err


def test_corrupt_hall_of_fame_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A damaged file is named in the message and exits 2."""
    (tmp_path / "hall_of_fame.json").write_text('{"schema_version": 1, "entries": [')
    assert main(["hof", "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'hall_of_fame.json'}: not valid JSON" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("top", ["0", "-3", "many"])
def test_top_must_be_positive(top: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad --top is an argument error (exit 2)."""
    with pytest.raises(SystemExit) as info:
        main(["hof", "--top", top])
    assert info.value.code == 2
    assert "--top" in capsys.readouterr().err
