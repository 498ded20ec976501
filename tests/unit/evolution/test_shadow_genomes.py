"""Shadow trading: the run flags, and the runner that never breeds."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from evoarena.cli import main
from evoarena.engine.book import MarketBook
from evoarena.evolution import persistence
from evoarena.evolution.genome import Genome
from evoarena.evolution.runner import EvolutionRunner
from evoarena.settings import load_settings

T0 = 1_767_225_600_000


def _genomes(n: int, seed: int = 1) -> list[Genome]:
    rng = random.Random(seed)
    return [Genome.random(rng, 0) for _ in range(n)]


def _entry(g: Genome, fitness: float) -> dict[str, object]:
    return {
        "genome": g.to_dict(),
        "fitness_roi_pct": fitness,
        "total_trades": 1,
        "settled_trades": 1,
        "win_rate": 1.0,
        "realized_pnl": 1.0,
        "generation": 0,
        "signal_type": "value",
        "params": {},
    }


def test_run_flags_are_checked_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "g.json"
    src.write_bytes(orjson.dumps([g.to_dict() for g in _genomes(2)]))
    assert main(["run", "--genomes", str(src)]) == 2
    assert "add --no-evolve" in capsys.readouterr().err
    assert main(["run", "--no-evolve"]) == 2
    assert "--no-evolve needs --genomes SOURCE" in capsys.readouterr().err
    assert main(["run", "--no-evolve", "--genomes", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: no such state directory or genome file" in capsys.readouterr().err


def test_fixed_genomes_trade_every_generation_unbred(tmp_path: Path) -> None:
    chosen = _genomes(3, seed=9)
    settings = load_settings(
        None,
        {
            "trading": {"generation_duration_secs": 300, "settlement_wait_secs": 60},
            "state": {"dir": str(tmp_path / "state")},
        },
    )
    runner = EvolutionRunner(
        settings, MarketBook(10), max_generations=2, seed_genomes=chosen, evolve=False
    )
    runner.start(T0)
    runner.fire_due(T0 + 3_600_000)
    assert [g.generation for g in runner.completed] == [0, 1]
    for gen in (0, 1):
        doc = persistence.load_generation(gen, state_dir=tmp_path / "state")
        assert doc is not None
        assert [g["id"] for g in doc["genomes"]] == [g.id for g in chosen]
    # a restart keeps trading the same genomes on top of the saved generations
    again = EvolutionRunner(
        settings, MarketBook(10), max_generations=1, seed_genomes=chosen, evolve=False
    )
    again.start(T0 + 3_600_000)
    assert again.generation == 2
    assert again.run is not None
    assert [b.genome.id for b in again.run.bots] == [g.id for g in chosen]
