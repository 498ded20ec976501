"""`evoarena evaluate`, `--seed-genomes` and `hof merge` as a user meets them: real files, the
real CLI in a subprocess, a training run and a fresh synthetic day."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_run_cli import base_env

from evoarena.evolution.genome import Genome
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
    """A training day, a training run of two generations over it, and a later fresh day."""
    root = tmp_path_factory.mktemp("evaluate")
    cfg = root / "small.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    train, test = root / "train.jsonl.gz", root / "test.jsonl.gz"
    generate_day(train, markets=50, hours=8, seed=3, start_ms=DEFAULT_START_MS)
    generate_day(test, markets=50, hours=8, seed=4, start_ms=DEFAULT_START_MS + 30 * DAY_MS)
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
    the same command into the now used state directory is refused with exit 2."""
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

    again = _cli(args, world["root"])
    assert again.returncode == 2
    assert "already holds generations" in again.stderr
    assert "Traceback" not in again.stderr
