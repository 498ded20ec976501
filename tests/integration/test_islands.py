"""`evoarena islands` on a real local Ray instance against the in-process reference (--workers 0):
the same bytes whatever the workers, migrants where the ring says, a kill-and-rerun that ends in
the uninterrupted state, and clear errors (unreadable recording on a worker, another run's
directory, a missing extra)."""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import ray

from evoarena.cli import main
from evoarena.errors import UserError
from evoarena.evolution import persistence
from evoarena.evolution.genome import Genome
from evoarena.evolution.islands import (
    IslandsPlan,
    island_seed,
    island_specs,
    run_islands,
    top_genomes,
)
from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.raypool import RayIslandPool
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
luck_simulations = 50
[trading]
generation_duration_secs = 1800
settlement_wait_secs = 1800
checkpoint_every_ticks = 20
market_close_window_secs = 7200
"""
GENERATIONS, EVERY, MIGRANTS, SEED = 5, 2, 2, 7


def _args(tmp: Path, state: Path, *more: str) -> list[str]:
    return [
        "islands",
        str(tmp / "day.jsonl.gz"),
        "--islands",
        "2",
        "--migrate-every",
        str(EVERY),
        "--migrants",
        str(MIGRANTS),
        "--seed",
        str(SEED),
        "--generations",
        str(GENERATIONS),
        "--config",
        str(tmp / "cfg.toml"),
        "--state-dir",
        str(state),
        *more,
    ]


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path → bytes), lock files aside."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".evoarena.lock"
    }


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[str]:
    """One local Ray instance (2 CPUs) for the module, on loopback only; yields its address."""
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    address = str(ray.get_runtime_context().gcs_address)
    assert address.startswith("127.0.0.1:"), f"local Ray is not on loopback: {address}"
    yield address
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic day, and the islands run over it in this process without Ray."""
    tmp = tmp_path_factory.mktemp("islands")
    generate_day(tmp / "day.jsonl.gz", markets=20, hours=4, seed=3, start_ms=DEFAULT_START_MS)
    (tmp / "cfg.toml").write_text(CONFIG)
    assert main(_args(tmp, tmp / "reference", "--workers", "0")) == 0
    return tmp


@pytest.mark.parametrize("workers", [2, 1])
def test_ray_run_is_byte_identical_to_the_sequential_run(
    reference: Path, ray_instance: str, workers: int, tmp_path: Path
) -> None:
    """Two islands on Ray actors (one each, or both on one) write exactly the reference."""
    state = tmp_path / "ray"
    assert main(_args(reference, state, "--workers", str(workers))) == 0
    expected = _tree(reference / "reference")
    assert sorted(_tree(state)) == sorted(expected)
    assert _tree(state) == expected
    assert {"islands.json", "hall_of_fame.json", "island_00/gen_0004.json"} <= set(expected)


def test_migrants_arrive_in_the_next_island_of_the_ring(reference: Path) -> None:
    """At each barrier, the 2 best genomes of each island replace the last genomes bred for the
    next one; the log in islands.json names them; the merged hall of fame tags its origins."""
    root = reference / "reference"
    log = orjson.loads((root / "islands.json").read_bytes())
    assert [m["generation"] for m in log["migrations"]] == [2, 4]
    assert log["generations"] == [GENERATIONS, GENERATIONS]
    for barrier, migration in zip((2, 4), log["migrations"], strict=True):
        for sender, receiver in (("island_00", "island_01"), ("island_01", "island_00")):
            sent = top_genomes(root / sender, barrier - 1, MIGRANTS)
            assert len(sent) == MIGRANTS
            doc = persistence.load_generation(barrier, state_dir=root / receiver)
            assert doc is not None
            arrived = [Genome.from_dict(g) for g in doc["genomes"][-MIGRANTS:]]
            assert [g.gene_hash for g in arrived] == [
                Genome.from_dict(m["genome"]).gene_hash for m in sent
            ]
            assert [g.parent_ids for g in arrived] == [[m["genome"]["id"]] for m in sent]
            move = next(m for m in migration["moves"] if m["to"] == receiver)
            assert move["from"] == sender
            assert [g["id"] for g in move["genomes"]] == [m["genome"]["id"] for m in sent]
    merged = orjson.loads((root / "hall_of_fame.json").read_bytes())
    assert {e["origin_run"] for e in merged["entries"]} <= {"island_00", "island_01"}


def test_without_migrants_an_island_is_a_plain_replay(reference: Path, tmp_path: Path) -> None:
    """--migrants 0: island k's files are `replay --generations N` with island k's seed."""
    state = tmp_path / "islands"
    assert main([*_args(reference, state, "--workers", "0"), "--migrants", "0"]) == 0
    settings = load_settings(
        reference / "cfg.toml",
        {"state": {"dir": str(tmp_path / "replay")}, "evolution": {"seed": island_seed(SEED, 1)}},
    )
    run_replay(reference / "day.jsonl.gz", settings, max_generations=GENERATIONS)
    assert _tree(state / "island_01") == _tree(tmp_path / "replay")


def _killable(
    tmp: Path, state: Path, env: dict[str, str], *more: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", KILL_AT_RENAME, *_args(tmp, state, *more)],
        env={**os.environ, "EVOARENA_LOG__LEVEL": "error", **env},
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )


@pytest.mark.parametrize(
    ("label", "kill_at", "phase", "workers"),
    [
        # the driver on the shared Ray instance, killed just after its 4th write (the log of
        # the second barrier), while both islands replay on in the actors
        ("ray-after-a-barrier", 4, "after", "ray"),
        # one process, killed inside an island's replay
        ("in-process-mid-island", 30, "after", "0"),
        # one process, killed with the driver's second write half done (a stray temp file)
        ("in-process-root-temp", 2, "before", "0"),
    ],
)
def test_kill_9_then_rerun_gives_the_uninterrupted_state(
    reference: Path,
    ray_instance: str,
    tmp_path: Path,
    label: str,
    kill_at: int,
    phase: str,
    workers: str,
) -> None:
    """A real subprocess SIGKILLed mid-run; the same command again ends in the reference bytes."""
    state = tmp_path / label
    more = ("--ray-address", ray_instance) if workers == "ray" else ("--workers", workers)
    killed = _killable(reference, state, {"KILL_AT": str(kill_at), "KILL_PHASE": phase}, *more)
    assert killed.returncode == -9, killed.stderr
    partial = _tree(state)
    assert partial != _tree(reference / "reference")
    if phase == "before":
        assert any(name.endswith(".tmp") for name in partial), "the kill left a temp file"
    rerun = _killable(reference, state, {}, *more)
    assert rerun.returncode == 0, rerun.stderr
    assert _tree(state) == _tree(reference / "reference")


def test_a_worker_that_cannot_read_a_recording_names_it(
    reference: Path, ray_instance: str, tmp_path: Path
) -> None:
    """Recordings reach workers by path: a path the worker cannot open is one clear error."""
    _ = ray_instance
    missing = tmp_path / "elsewhere" / "day.jsonl.gz"
    settings = load_settings(reference / "cfg.toml")
    root = tmp_path / "run"
    plan = IslandsPlan(
        recordings=(missing,),
        islands=island_specs(SEED, root, [(settings, None), (settings, None)]),
        root=root,
        seed=SEED,
        migrate_every=EVERY,
        migrants=MIGRANTS,
        generations=2,
    )
    with pytest.raises(UserError, match=r"day\.jsonl\.gz: cannot read this recording on worker"):
        run_islands(plan, RayIslandPool(ray, plan, 2))


def test_another_runs_directory_is_refused(reference: Path, tmp_path: Path) -> None:
    """Resuming needs the same flags: other migrants into the same directory is exit 2."""
    state = tmp_path / "s"
    shutil.copytree(reference / "reference", state)
    args = [*_args(reference, state, "--workers", "0"), "--migrants", "1"]
    assert main(args) == 2
    assert _tree(state) == _tree(reference / "reference")


def test_an_island_can_have_its_own_settings(reference: Path, tmp_path: Path) -> None:
    """--island-config 1=FILE: island 1 evolves a population of 12, island 0 the --config one."""
    own = tmp_path / "own.toml"
    own.write_text(CONFIG.replace("population_size = 10", "population_size = 12"))
    state = tmp_path / "s"
    args = [*_args(reference, state, "--workers", "0"), "--island-config", f"1={own}"]
    args[args.index("--generations") + 1] = "2"
    assert main(args) == 0
    sizes = []
    for island in ("island_00", "island_01"):
        doc = persistence.load_generation(1, state_dir=state / island)
        assert doc is not None
        sizes.append(len(doc["genomes"]))
    assert sizes == [10, 12]
    bad = [*_args(reference, tmp_path / "t", "--workers", "0"), "--island-config", f"2={own}"]
    assert main(bad) == 2


def test_without_the_extra_a_clear_error(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """Ray missing: exit 2 naming the extra (and the base service never imports Ray)."""
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(_args(reference, tmp_path / "s", "--workers", "2")) == 2
    assert "evoarena[ray]" in capsys.readouterr().err
    probe = (
        "import sys, evoarena.cli, evoarena.supervisor, evoarena.replayer; "
        "evoarena.cli.build_parser(); assert 'ray' not in sys.modules, 'ray imported'"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)


def test_evaluate_on_ray_gives_the_same_figures(
    ray_instance: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`evaluate --ray-address`: the genomes in 3 Ray tasks, the same JSON as one process."""
    day = tmp_path / "day.jsonl.gz"
    generate_day(day, markets=50, hours=8, seed=3, start_ms=DEFAULT_START_MS)
    rng = random.Random(1)
    genomes = tmp_path / "genomes.json"
    genomes.write_bytes(orjson.dumps([Genome.random(rng).to_dict() for _ in range(12)]))
    cfg = tmp_path / "ev.toml"
    cfg.write_text(
        "[evolution]\npopulation_size = 12\n"
        "[trading]\ngeneration_duration_secs = 10800\nsettlement_wait_secs = 3600\n"
    )
    args = ["evaluate", str(day), "--genomes", str(genomes), "--config", str(cfg), "--json"]
    capsys.readouterr()  # generate_day's debug log
    assert main(args) == 0
    alone = orjson.loads(capsys.readouterr().out)
    assert main([*args, "--ray-address", ray_instance, "--workers", "3"]) == 0
    fanned = orjson.loads(capsys.readouterr().out)
    assert fanned == alone
    assert sum(g["trades"] for g in alone["genomes"]) > 0  # not a comparison of empty rows


def test_recordings_that_end_first_stop_every_island_like_replay(
    reference: Path, tmp_path: Path
) -> None:
    """More generations than the day holds: every island stops where a replay would (the last
    epoch short, its generation checkpointed); the same command again changes nothing."""
    state = tmp_path / "s"
    args = _args(reference, state, "--workers", "0")
    args[args.index("--generations") + 1] = "40"
    assert main(args) == 0
    held = orjson.loads((state / "islands.json").read_bytes())["generations"]
    assert held[0] < 40
    alone = tmp_path / "replay"
    settings = load_settings(
        reference / "cfg.toml",
        {"state": {"dir": str(alone)}, "evolution": {"seed": island_seed(SEED, 0)}},
    )
    assert held[0] == len(run_replay(reference / "day.jsonl.gz", settings).generations)
    before = _tree(state)
    assert main(args) == 0
    assert _tree(state) == before


def test_more_generations_later_extend_the_run_exactly(reference: Path, tmp_path: Path) -> None:
    """--generations 3, then the same command with 5: the bytes of a run of 5 from the start."""
    state = tmp_path / "s"
    args = _args(reference, state, "--workers", "0")
    args[args.index("--generations") + 1] = "3"
    assert main(args) == 0
    assert main(_args(reference, state, "--workers", "0")) == 0
    assert _tree(state) == _tree(reference / "reference")


def test_an_island_that_fails_stops_the_run_with_its_message(
    reference: Path, ray_instance: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Island 1 cannot start (its only generation file is corrupt): exit 2 naming the file, the
    other island is not left waiting at the barrier, and the actors' CPUs are free again."""
    state = tmp_path / "s"
    on_ray = ("--ray-address", ray_instance, "--workers", "2")
    first = _args(reference, state, *on_ray)
    first[first.index("--generations") + 1] = "1"
    assert main(first) == 0
    (state / "island_01" / "gen_0000.json").write_text('{"garbage": ')
    (state / "island_01" / "latest.json").unlink()
    capsys.readouterr()
    assert main(_args(reference, state, *on_ray)) == 2
    assert "island_01/gen_0000.json: not valid JSON" in capsys.readouterr().err
    assert main(_args(reference, tmp_path / "again", *on_ray)) == 0
    assert _tree(tmp_path / "again") == _tree(reference / "reference")


def test_a_stop_signal_exits_cleanly_with_a_resume_hint(
    reference: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SIGINT/SIGTERM of the driver at a barrier: exit 0 saying how to resume (as replay does);
    the same command again ends in the reference bytes."""
    from evoarena.evolution.islands import SequentialPool

    original = SequentialPool.release

    def stop_then_release(self: SequentialPool, generation: int, incoming: Any) -> None:
        signal.raise_signal(signal.SIGINT)
        original(self, generation, incoming)

    state = tmp_path / "s"
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with monkeypatch.context() as m:
            m.setattr(SequentialPool, "release", stop_then_release)
            assert main(_args(reference, state, "--workers", "0")) == 0
    finally:  # after a stop the command ignores further signals; the test process must not
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    err = capsys.readouterr().err
    assert "islands stopped by SIGINT" in err
    assert "run the same command again to resume" in err
    assert main(_args(reference, state, "--workers", "0")) == 0
    assert _tree(state) == _tree(reference / "reference")


def test_an_unreachable_ray_address_is_a_clear_error_not_a_hang(
    reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--ray-address where no Ray cluster listens: exit 2 naming the flag, at once."""
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    assert main(_args(reference, tmp_path / "s", "--ray-address", address)) == 2
    err = capsys.readouterr().err
    assert f"--ray-address {address}: cannot reach" in err
    assert not (tmp_path / "s").exists()


def test_a_rerun_with_fewer_generations_changes_nothing(reference: Path, tmp_path: Path) -> None:
    """A finished run of 5, then the same command with --generations 3: the directory keeps
    every file as it was (islands.json still logs the migrations its islands received)."""
    state = tmp_path / "s"
    shutil.copytree(reference / "reference", state)
    args = _args(reference, state, "--workers", "0")
    args[args.index("--generations") + 1] = "3"
    assert main(args) == 0
    assert _tree(state) == _tree(reference / "reference")


def test_a_replay_state_directory_is_refused_not_overwritten(
    reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--state-dir (default: [state] dir) pointing at a replay's or the service's directory: exit
    2 naming it, its hall of fame untouched (the merged one would replace it)."""
    state = tmp_path / "s"
    state.mkdir()
    shutil.copy(reference / "reference" / "island_00" / "hall_of_fame.json", state)
    shutil.copy(reference / "reference" / "island_00" / "latest.json", state)
    before = _tree(state)
    assert main(_args(reference, state, "--workers", "0")) == 2
    assert f"{state}: holds the state of a replay or the service" in capsys.readouterr().err
    assert _tree(state) == before


def test_the_same_settings_file_by_another_path_resumes(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--config given relative on the rerun (absolute the first time): the same file, the same
    run; islands.json keeps what the first run wrote."""
    state = tmp_path / "s"
    shutil.copytree(reference / "reference", state)
    monkeypatch.chdir(reference)
    args = _args(reference, state, "--workers", "0")
    args[args.index("--config") + 1] = "cfg.toml"
    assert main(args) == 0
    assert _tree(state) == _tree(reference / "reference")
