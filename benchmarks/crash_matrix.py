"""Crash matrix: kill -9 a replay at many points, rerun the same command, compare the state.

Writes a synthetic day (``--markets`` × ``--hours``, seeded), replays it once uninterrupted into
a reference state directory, counts the state writes (``os.replace`` calls) that run makes, then
for each of ``--points`` kill points spread over those writes — alternately just *before* a
rename (the temp file is written and fsynced, the target not yet replaced) and just *after* it —
runs the same ``evoarena replay`` command in a fresh state directory as a real subprocess that
SIGKILLs itself at that point, runs the same command again to completion, and compares every
file of the state directory byte for byte with the reference (the lock file aside).

Usage::

    .venv/bin/python benchmarks/crash_matrix.py [--points 20] [--markets 100] [--hours 8]
        [--population 50] [--seed 11]

Prints one JSON object: ``identical`` / ``total``, the kill points and, for any that differ,
which files differ.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from evoarena.testing import KILL_AT_RENAME

LOCK_NAMES = frozenset({".evoarena.lock"})

CONFIG = """
[evolution]
population_size = {population}
min_settled_trades = 1
seed = 3
[trading]
generation_duration_secs = 3600
settlement_wait_secs = 3600
checkpoint_every_ticks = 20
market_close_window_secs = 7200
"""


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One ``evoarena`` subprocess under the instrumented wrapper."""
    full_env = {**os.environ, "EVOARENA_LOG__LEVEL": "error", **env}
    return subprocess.run(
        [sys.executable, "-c", KILL_AT_RENAME, *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def snapshot(state: Path) -> dict[str, bytes]:
    """Every file of a state directory (the lock file aside), by name."""
    return {p.name: p.read_bytes() for p in sorted(state.iterdir()) if p.name not in LOCK_NAMES}


def kill_points(total: int, points: int) -> list[tuple[int, str]]:
    """``points`` (rename index, phase) pairs spread evenly over ``1..total``."""
    out = []
    for i in range(points):
        index = 1 + (i * (total - 1)) // max(1, points - 1)
        out.append((index, "before" if i % 2 == 0 else "after"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--markets", type=int, default=100)
    parser.add_argument("--hours", type=int, default=8)
    parser.add_argument("--population", type=int, default=50)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="crash-matrix-") as tmp_name:
        tmp = Path(tmp_name)
        day = tmp / "day.jsonl.gz"
        synth = ["synth", "--out", str(day), "--markets", str(args.markets)]
        synth += ["--hours", str(args.hours), "--seed", str(args.seed)]
        done = run_cli(synth, {})
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        config = tmp / "config.toml"
        config.write_text(CONFIG.format(population=args.population))

        def replay_args(state: Path) -> list[str]:
            return ["replay", str(day), "--config", str(config), "--state-dir", str(state)]

        reference = tmp / "reference"
        count_file = tmp / "count"
        done = run_cli(replay_args(reference), {"COUNT_FILE": str(count_file)})
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
        total_renames = int(count_file.read_text())
        expected = snapshot(reference)
        results: list[dict[str, Any]] = []
        for n, (index, phase) in enumerate(kill_points(total_renames, args.points)):
            state = tmp / f"state{n}"
            killed = run_cli(replay_args(state), {"KILL_AT": str(index), "KILL_PHASE": phase})
            rerun = run_cli(replay_args(state), {})
            got = snapshot(state)
            differ = sorted(
                name for name in set(got) | set(expected) if got.get(name) != expected.get(name)
            )
            results.append(
                {
                    "rename": index,
                    "phase": phase,
                    "killed_rc": killed.returncode,
                    "rerun_rc": rerun.returncode,
                    "identical": not differ and rerun.returncode == 0,
                    "differing_files": differ,
                    "rerun_error": rerun.stderr.strip().splitlines()[-1:]
                    if rerun.returncode
                    else [],
                }
            )
    identical = sum(r["identical"] for r in results)
    print(
        json.dumps(
            {
                "benchmark": "crash_matrix",
                "what": "kill -9 a replay at a state-write boundary, rerun the same command, "
                "compare every state file byte for byte with an uninterrupted run",
                "recording": {"markets": args.markets, "hours": args.hours, "seed": args.seed},
                "population": args.population,
                "renames_in_uninterrupted_run": total_renames,
                "identical": identical,
                "total": len(results),
                "summary": f"{identical}/{len(results)} identical",
                "wall_secs": round(time.perf_counter() - started, 1),
                "points": results,
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
            },
            indent=2,
        )
    )
    return 0 if identical == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
