"""Reading generation files for `history` and `report`: present fields drawn, absent ones named."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from evoarena.cli import main
from evoarena.evolution import persistence
from evoarena.evolution.genome import Genome
from evoarena.observe.history import load_history
from evoarena.observe.report_html import NOT_RECORDED, build_charts, render_report

T0 = 1_772_409_600_000


def _state(tmp_path: Path, *, optional: bool) -> Path:
    state = tmp_path / "state"
    rng = random.Random(1)
    for gen in range(3):
        genomes = [Genome.random(rng, gen) for _ in range(6)]
        fitness = [-100.0, -100.0, 2.5 * gen, 1.0, -3.0, 4.0 + gen]
        stats: dict[str, Any] = {
            "best_roi": 4.0 + gen,
            "median_roi": 0.5,
            "active_bots": 4,
            "total_trades": 10 + gen,
            "settled_trades": 9,
            "fees_paid": 1.25,
            "realized_pnl": -2.0,
            "force_closed": gen,
            "signal_mix": {"momentum": 3, "value": 3},
        }
        if optional:
            stats["carried_elites_oos"] = {"n": 2, "mean_roi_bankroll_pct": -1.5 + gen}
            stats["luck_test"] = {"p_value": 0.5 / (gen + 1)}
        persistence.save_generation_state(
            gen, genomes, fitness, stats, state_dir=state, now_ms=T0 + gen * 3_600_000
        )
        if optional:  # per-bot results at the top level of the generation file
            path = state / f"gen_{gen:04d}.json"
            doc = orjson.loads(path.read_bytes())
            doc["results"] = [
                {
                    "trades": 2,
                    "stake_usd": 3.0,
                    "roi_bankroll_pct": 1.0 * i,
                    "roi_stake_pct": 10.0 * i,
                }
                for i in range(6)
            ]
            path.write_bytes(orjson.dumps(doc))
        entry = {
            "genome": genomes[5].to_dict(),
            "fitness_roi_pct": 4.0 + gen,
            "total_trades": 3,
            "settled_trades": 3,
            "win_rate": 0.5,
            "realized_pnl": 4.0 + gen,
            "generation": gen,
            "signal_type": "value",
            "params": {},
        }
        if optional:
            entry["out_of_sample"] = {
                "n_windows": 2,
                "mean_fitness": -7.25,
                "mean_roi_bankroll_pct": -7.5,
            }
        persistence.save_hall_of_fame(gen, [entry], state_dir=state, now_ms=T0)
    return state


def test_absent_optional_fields_read_as_not_recorded(tmp_path: Path) -> None:
    hist = load_history(_state(tmp_path, optional=False))
    assert [g.generation for g in hist.generations] == [0, 1, 2]
    g2 = hist.generations[2]
    assert g2.median_fitness == pytest.approx(-1.0)  # of -100, -100, 5, 1, -3, 6
    assert (g2.oos_mean_roi_pct, g2.luck_p_value, g2.bots) == (None, None, None)
    charts, notes = build_charts(hist.generations)
    assert [c.id for c in charts] == [
        "chart-fitness",
        "chart-activity",
        "chart-signals",
        "chart-genes",
    ]
    assert len(charts[0].data) == 3  # best / median / mean only
    assert any("Luck test: not recorded" in n for n in notes)
    page = render_report(hist, generated_at_ms=T0, js="")
    assert page.count(NOT_RECORDED) >= 4
    assert "-7.25" not in page


def test_present_optional_fields_are_drawn(tmp_path: Path) -> None:
    hist = load_history(_state(tmp_path, optional=True))
    g2 = hist.generations[2]
    assert g2.oos_mean_roi_pct == 0.5
    assert g2.luck_p_value == pytest.approx(0.5 / 3)
    assert g2.bots is not None
    assert g2.bots[3]["roi_stake_pct"] == 30.0
    assert g2.bots[3]["stake"] == 3.0
    charts, notes = build_charts(hist.generations)
    fitness = charts[0]
    names = [t["name"] for t in fitness.data]
    assert "elites, out-of-sample ROI %" in names[3]
    assert fitness.data[4]["yaxis"] == "y2"
    assert fitness.data[4]["y"] == pytest.approx([0.5, 0.25, 0.5 / 3])
    assert charts[-1].id == "chart-bot-roi"
    assert not any("Luck" in n or "Out-of-sample" in n for n in notes)
    page = render_report(hist, generated_at_ms=T0, js="")
    assert "-7.25" in page  # the hall of fame's out-of-sample column


def test_history_cli_table_csv_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _state(tmp_path, optional=True)
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["history", "--state-dir", str(state)]) == 0
    table = capsys.readouterr().out
    assert all(len(line) <= 80 for line in table.splitlines()), table
    assert "…" not in table
    assert "+0.50" in table  # out-of-sample ROI of generation 2
    assert main(["history", "--state-dir", str(state), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["generation"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["force_closed"] == "0"
    assert main(["history", "--state-dir", str(state), "--json"]) == 0
    data = orjson.loads(capsys.readouterr().out)
    assert data[1]["trades"] == 11
    assert data[1]["luck_p_value"] == 0.25


def test_history_of_an_empty_or_missing_state_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "--state-dir", str(tmp_path / "nope")]) == 2
    assert "no such state directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["history", "--state-dir", str(tmp_path / "empty")]) == 1
    assert "no finished generation" in capsys.readouterr().err
