"""`evoarena evaluate`, `--seed-genomes` and `hof merge` as a user meets them: real files, the
real CLI in a subprocess, a training run and a fresh synthetic day."""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_run_cli import base_env

from evoarena.evolution import persistence
from evoarena.evolution.evaluate import evaluate_genomes
from evoarena.evolution.genome import Genome
from evoarena.evolution.genome_source import load_genome_source
from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.replayer import run_replay
from evoarena.settings import load_settings

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

CONFIG = """
[evolution]
population_size = 12
elite_count = 2
tournament_size = 3
immigrant_count = 2
min_settled_trades = 1
seed = 42

[trading]
generation_duration_secs = 10800
settlement_wait_secs = 3600
"""
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A training day, a training run of two generations over it, and a later fresh day (9 h:
    two fixed evaluation windows of 3 h trading + 1 h settlement)."""
    root = tmp_path_factory.mktemp("evaluate")
    cfg = root / "small.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    train, test = root / "train.jsonl.gz", root / "test.jsonl.gz"
    generate_day(train, markets=50, hours=8, seed=3, start_ms=DEFAULT_START_MS)
    generate_day(test, markets=50, hours=9, seed=4, start_ms=DEFAULT_START_MS + 30 * DAY_MS)
    run = root / "run-a"
    settings = load_settings(cfg, {"state": {"dir": str(run)}})
    report = run_replay(train, settings, max_generations=2)
    assert [g.generation for g in report.generations] == [0, 1]
    return {"root": root, "cfg": cfg, "train": train, "test": test, "run": run}


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evoarena", *args],
        env=base_env(cwd),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _json(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def test_evaluate_hall_of_fame_on_a_fresh_day(world: dict[str, Path]) -> None:
    """The hall of fame's best 4, window by window on a later day: consistent figures, labelled
    out-of-sample, and the same genomes (gene hashes) the hall of fame holds, in its order."""
    proc = _cli(
        ["evaluate", str(world["test"]), "--genomes", str(world["run"]), "--top", "4",
         "--config", str(world["cfg"]), "--json"],
        world["root"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = orjson.loads(proc.stdout)
    hof = _json(world["run"] / "hall_of_fame.json")
    hashes: list[str] = []
    for e in hof["entries"]:
        h = Genome.from_dict(e["genome"]).gene_hash
        if h not in hashes:
            hashes.append(h)
    assert [g["gene_hash"] for g in out["genomes"]] == hashes[:4]
    assert out["sample"]["label"] == "out-of-sample"
    assert out["sample"]["training_windows"] == 2
    n_windows = len(out["windows"])
    assert n_windows == 2  # 8 h: two 3 h windows (+ settlement), the rest unfinished
    assert out["unfinished_window"] is not None
    traded = 0
    for g in out["genomes"]:
        roi = g["roi_bankroll_pct"]
        assert g["windows"] == n_windows == len(roi["per_window"])
        assert roi["mean"] == pytest.approx(statistics.fmean(roi["per_window"]), abs=1e-6)
        assert roi["worst"] == min(roi["per_window"])
        assert roi["ci95_low"] <= roi["mean"] <= roi["ci95_high"]
        assert g["pnl_usd"] == pytest.approx(sum(roi["per_window"]), abs=1e-4)  # $100 bankroll
        if g["stake_usd"] > 0:
            assert g["roi_stake_pct"] == pytest.approx(100 * g["pnl_usd"] / g["stake_usd"])
        traded += g["trades"]
    assert traded > 0


def test_evaluate_reproduces_the_training_generation(world: dict[str, Path]) -> None:
    """Generation 0's genomes evaluated on the training day: window 0 is generation 0 again, bot
    for bot (same machinery as replay), and the table says the figures are not a test."""
    gen0 = world["run"] / "gen_0000.json"
    proc = _cli(
        ["evaluate", str(world["train"]), "--genomes", str(gen0), "--config", str(world["cfg"]),
         "--json"],
        world["root"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = orjson.loads(proc.stdout)
    assert out["sample"]["label"] == "overlaps training"
    trained = {r["genome_id"]: r for r in _json(gen0)["results"]}
    assert len(out["genomes"]) == len(trained)
    for g in out["genomes"]:
        assert g["roi_bankroll_pct"]["per_window"][0] == trained[g["genome_id"]]["roi_bankroll_pct"]
    assert out["windows"][0]["trading_start"] == _json(gen0)["stats"]["trading_start"]

    table = _cli(
        ["evaluate", str(world["train"]), "--genomes", str(gen0), "--top", "3",
         "--config", str(world["cfg"])],
        world["root"],
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert "NOT A TEST" in table.stdout
    assert "ROI %/window" in table.stdout
    for g in out["genomes"][:3]:
        assert g["genome_id"] in table.stdout


def test_evaluate_on_a_recording_shorter_than_a_window_says_so(world: dict[str, Path]) -> None:
    """Default 24 h windows on a 1 h day: exit 2 and a message naming the setting."""
    short = world["root"] / "short.jsonl.gz"
    generate_day(short, markets=8, hours=1, seed=5, start_ms=DEFAULT_START_MS + 40 * DAY_MS)
    proc = _cli(["evaluate", str(short), "--genomes", str(world["run"])], world["root"])
    assert proc.returncode == 2
    assert "no complete window" in proc.stderr
    assert "generation_duration_secs" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_evaluate_bad_source_exits_2_naming_the_file(world: dict[str, Path]) -> None:
    """A genome file that is not one: exit 2, one line naming the file, no traceback."""
    bad = world["root"] / "bad.json"
    bad.write_text('{"genomes": [{"id": "zz"}]}', encoding="utf-8")
    proc = _cli(["evaluate", str(world["test"]), "--genomes", str(bad)], world["root"])
    assert proc.returncode == 2
    assert str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_seed_genomes_start_generation_0_and_refuse_a_used_state_dir(
    world: dict[str, Path],
) -> None:
    """`replay --seed-genomes`: generation 0 = the hall of fame's genomes, then random padding;
    the same command again resumes the state directory (nothing left to do here), while other
    seed genomes into the now used state directory are refused with exit 2."""
    state = world["root"] / "seeded"
    args = ["replay", str(world["test"]), "--config", str(world["cfg"]), "--state-dir",
            str(state), "--seed-genomes", str(world["run"]), "--generations", "1",
            "--no-progress"]  # fmt: skip
    proc = _cli(args, world["root"])
    assert proc.returncode == 0, proc.stderr
    hof = _json(world["run"] / "hall_of_fame.json")
    seeds: list[str] = []
    for e in hof["entries"]:
        g = Genome.from_dict(e["genome"])
        if g.gene_hash not in {Genome.from_dict(s).gene_hash for s in seeds}:  # type: ignore[arg-type]
            seeds.append(e["genome"])
    gen0 = _json(state / "gen_0000.json")
    assert len(gen0["genomes"]) == 12
    k = min(len(seeds), 12)
    assert gen0["genomes"][:k] == seeds[:k]
    assert len({g["id"] for g in gen0["genomes"]}) == 12

    before = (state / "gen_0000.json").read_bytes()
    again = _cli(args, world["root"])
    assert again.returncode == 0, again.stderr
    assert (state / "gen_0000.json").read_bytes() == before

    other = world["root"] / "other-seeds.json"
    stranger = Genome.random(random.Random(99)).to_dict()
    other.write_bytes(orjson.dumps({"genomes": [stranger]}))
    refused = _cli([*args[:-4], str(other), *args[-3:]], world["root"])
    assert refused.returncode == 2
    assert "already holds generations" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_hof_merge_of_two_runs_then_seed_from_it(world: dict[str, Path]) -> None:
    """`hof merge` writes one hall of fame (de-duplicated by genes, origins kept) that
    `hof` shows and `--seed-genomes` reads; an occupied --out is refused."""
    run_a = world["run"]
    hof_a = _json(run_a / "hall_of_fame.json")
    best = hof_a["entries"][0]
    twin = dict(best, fitness_roi_pct=best["fitness_roi_pct"] + 50.0, generation=7)
    twin["genome"] = dict(best["genome"], id="0000beef", parent_ids=[])
    run_b = world["root"] / "run-b"
    persistence.save_hall_of_fame(7, [twin], state_dir=run_b, now_ms=DEFAULT_START_MS)
    out = world["root"] / "merged"
    proc = _cli(["hof", "merge", str(run_a), str(run_b), "--out", str(out)], world["root"])
    assert proc.returncode == 0, proc.stderr
    merged = _json(out / "hall_of_fame.json")
    assert merged["entries"][0]["genome"]["id"] == "0000beef"
    assert merged["entries"][0]["origin_run"] == str(run_b)
    hashes = [Genome.from_dict(e["genome"]).gene_hash for e in merged["entries"]]
    assert len(hashes) == len(set(hashes))
    assert best["genome"]["id"] not in [e["genome"]["id"] for e in merged["entries"]]
    assert {e["origin_run"] for e in merged["entries"]} == {str(run_a), str(run_b)}
    shown = _cli(["hof", "--state-dir", str(out), "--top", "3"], world["root"])
    assert shown.returncode == 0, shown.stderr
    assert "0000beef" in shown.stdout

    again = _cli(["hof", "merge", str(run_a), "--out", str(out)], world["root"])
    assert again.returncode == 2
    assert "already exists" in again.stderr

    seeded = world["root"] / "seeded-from-merge"
    proc = _cli(
        ["replay", str(world["test"]), "--config", str(world["cfg"]), "--state-dir",
         str(seeded), "--seed-genomes", str(out), "--generations", "1", "--no-progress"],
        world["root"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert _json(seeded / "gen_0000.json")["genomes"][0]["id"] == "0000beef"


def test_a_genomes_figures_do_not_depend_on_what_is_evaluated_with_it(
    world: dict[str, Path],
) -> None:
    """Windows are fixed (trading + the whole settlement wait): two genomes evaluated alone get
    exactly the figures they get beside the whole population."""
    settings = load_settings(world["cfg"])
    gen0 = world["run"] / "gen_0000.json"
    everyone = evaluate_genomes([world["test"]], settings, load_genome_source(gen0))
    two = evaluate_genomes([world["test"]], settings, load_genome_source(gen0, 2))
    assert len(everyone["windows"]) == len(two["windows"]) >= 2
    assert everyone["windows"] == two["windows"]
    by_id = {g["genome_id"]: g for g in everyone["genomes"]}
    for g in two["genomes"]:
        mine = {k: v for k, v in g.items() if k != "rank"}
        assert mine == {k: v for k, v in by_id[g["genome_id"]].items() if k != "rank"}
