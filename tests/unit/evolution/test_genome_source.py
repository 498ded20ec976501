"""Choosing genomes for shadow trading: every SOURCE kind, and the runner that never breeds."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from evoarena.cli import main
from evoarena.engine.book import MarketBook
from evoarena.errors import UserError
from evoarena.evolution import persistence
from evoarena.evolution.genome import Genome
from evoarena.evolution.genome_source import load_genomes
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


def test_every_source_kind(tmp_path: Path) -> None:
    gs = _genomes(4)
    state = tmp_path / "state"
    persistence.save_generation_state(0, gs, [1.0, 9.0, -5.0, 3.0], {}, state_dir=state, now_ms=T0)
    # a generation file: best fitness first
    ids = [g.id for g in load_genomes(state / "gen_0000.json", None)]
    assert ids == [gs[1].id, gs[3].id, gs[0].id, gs[2].id]
    assert [g.id for g in load_genomes(state / "latest.json", 2)] == [gs[0].id, gs[1].id]
    with pytest.raises(UserError, match=r"no hall_of_fame\.json in this state directory"):
        load_genomes(state, None)
    persistence.save_hall_of_fame(
        0, [_entry(gs[2], 7.0), _entry(gs[0], 8.0)], state_dir=state, now_ms=T0
    )
    # a state directory and `hof --json` output: hall-of-fame order
    assert [g.id for g in load_genomes(state, None)] == [gs[0].id, gs[2].id]
    hof_json = tmp_path / "hof.json"
    hof_json.write_bytes(orjson.dumps(persistence.load_hall_of_fame(state_dir=state)))
    assert [g.id for g in load_genomes(hof_json, 1)] == [gs[0].id]
    # a plain list, with a duplicate by genes kept once
    twin = Genome(id="abcdef01", generation=3, parent_ids=[], genes=dict(gs[3].genes))
    plain = tmp_path / "genomes.json"
    plain.write_bytes(orjson.dumps([gs[3].to_dict(), twin.to_dict(), gs[1].to_dict()]))
    assert [g.id for g in load_genomes(plain, None)] == [gs[3].id, gs[1].id]


def test_bad_sources_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(UserError, match=r"bad\.json: not valid JSON"):
        load_genomes(bad, None)
    bad.write_bytes(orjson.dumps([{"id": "xyz"}]))
    with pytest.raises(UserError, match=r"bad\.json: genome #1: .* field .generation."):
        load_genomes(bad, None)
    with pytest.raises(UserError, match="no such file"):
        load_genomes(tmp_path / "missing.json", None)


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
    assert "nope.json: no such file" in capsys.readouterr().err


def test_fixed_genomes_trade_every_generation_unbred(tmp_path: Path) -> None:
    chosen = _genomes(3, seed=9)
    settings = load_settings(
        None,
        {
            "trading": {"generation_duration_secs": 300, "settlement_wait_secs": 60},
            "state": {"dir": str(tmp_path / "state")},
        },
    )
    runner = EvolutionRunner(settings, MarketBook(10), max_generations=2, fixed_genomes=chosen)
    runner.start(T0)
    runner.fire_due(T0 + 3_600_000)
    assert [g.generation for g in runner.completed] == [0, 1]
    for gen in (0, 1):
        doc = persistence.load_generation(gen, state_dir=tmp_path / "state")
        assert doc is not None
        assert [g["id"] for g in doc["genomes"]] == [g.id for g in chosen]
    # a restart keeps trading the same genomes on top of the saved generations
    again = EvolutionRunner(settings, MarketBook(10), max_generations=1, fixed_genomes=chosen)
    again.start(T0 + 3_600_000)
    assert again.generation == 2
    assert again.run is not None
    assert [b.genome.id for b in again.run.bots] == [g.id for g in chosen]
