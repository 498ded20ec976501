"""Islands benchmark: K islands on local Ray actors against the same islands run sequentially.

Synthesizes a day (``--markets`` markets over ``--hours``), then runs ``evoarena islands``'s
library path over it into fresh directories, alternating, ``--repeat`` times each:

* ``sequential`` — ``--workers 0``: every island in this process, one after another;
* ``ray`` — one Ray actor (one CPU) per island on a local Ray instance of ``--islands`` CPUs,
  started once before the first ray run (its start-up is reported separately, ``ray_init_secs``,
  and is not part of ``ray``'s wall time, as on a cluster that is already up). The actors are
  started by each run and are part of its wall time (``actors_start_secs`` of it).

Reported per mode: wall seconds (best and all repeats), CPU seconds (this process for
``sequential``; each actor's own ``time.process_time`` for ``ray``) and peak resident memory
(``ru_maxrss``: this process for ``sequential``, each actor process for ``ray``). ``speedup`` is
the best sequential wall time over the best ray wall time; ``cpu_speedup`` the sequential CPU
time over the busiest actor's (what the wall-time ratio tends to on idle cores, Ray's start-up
aside: on a machine shared with other work, the two actors get less than two cores and the
wall-time ratio drops, which ``load`` shows); ``identical_state`` says whether every
run wrote byte-identical directories; ``per_island_generation`` divides the sequential CPU time
by islands × generations. ``load`` is ``os.getloadavg()`` before and after (the machine may be
shared). Prints one JSON object::

    .venv/bin/python benchmarks/islands.py [--islands 2] [--markets 500] [--hours 26] \\
        [--bots 100] [--generations 8] [--generation-hours 2] [--repeat 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import structlog

from evoarena.evolution.islands import (
    IslandsPlan,
    SequentialPool,
    island_specs,
    run_islands,
)
from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.raypool import RayIslandPool, ray_session
from evoarena.settings import load_settings


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".evoarena.lock"
    }


def main() -> int:
    """Run the benchmark; prints JSON on stdout."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--islands", type=int, default=2)
    p.add_argument("--markets", type=int, default=500)
    p.add_argument("--hours", type=float, default=26.0)
    p.add_argument("--bots", type=int, default=100)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--generation-hours", type=float, default=2.0)
    p.add_argument("--migrate-every", type=int, default=2)
    p.add_argument("--migrants", type=int, default=2)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="evoarena-bench-islands-"))
    try:
        day = tmp / "day.jsonl.gz"
        t0 = time.perf_counter()
        generate_day(
            day, markets=args.markets, hours=args.hours, seed=args.seed, start_ms=DEFAULT_START_MS
        )
        synth_secs = time.perf_counter() - t0
        settings = load_settings(
            None,
            {
                "evolution": {"population_size": args.bots, "seed": args.seed},
                "trading": {
                    "generation_duration_secs": round(args.generation_hours * 3600),
                    "settlement_wait_secs": 3600,
                },
            },
        )

        def plan(root: Path) -> IslandsPlan:
            return IslandsPlan(
                recordings=(day,),
                islands=island_specs(args.seed, root, [(settings, None)] * args.islands),
                root=root,
                seed=args.seed,
                migrate_every=args.migrate_every,
                migrants=args.migrants,
                generations=args.generations,
                checkpoint_every_ticks=0,
            )

        runs: dict[str, list[dict[str, Any]]] = {"sequential": [], "ray": []}
        trees: list[dict[str, bytes]] = []
        t0 = time.perf_counter()
        with ray_session(None, num_cpus=args.islands) as ray:
            ray_init = time.perf_counter() - t0
            for i in range(args.repeat):
                root = tmp / f"seq{i}"
                cpu, wall = time.process_time(), time.perf_counter()
                seq_pool = SequentialPool(plan(root))
                try:
                    report = run_islands(plan(root), seq_pool)
                finally:
                    seq_pool.close()
                runs["sequential"].append(
                    {
                        "wall_secs": round(time.perf_counter() - wall, 3),
                        "cpu_secs": round(time.process_time() - cpu, 3),
                        "peak_rss_mib": round(
                            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
                        ),
                        "generations": report.generations,
                    }
                )
                trees.append(_tree(root))
                shutil.rmtree(root)
                root = tmp / f"ray{i}"
                wall = time.perf_counter()
                pool = RayIslandPool(ray, plan(root), args.islands)
                started = time.perf_counter() - wall
                try:
                    report = run_islands(plan(root), pool)
                finally:
                    pool.close()
                runs["ray"].append(
                    {
                        "wall_secs": round(time.perf_counter() - wall, 3),
                        "actors_start_secs": round(started, 3),
                        "workers": [
                            {
                                "cpu_secs": u["cpu_secs"],
                                "peak_rss_mib": round(u["peak_rss_kib"] / 1024, 1),
                            }
                            for u in report.usage
                        ],
                        "generations": report.generations,
                    }
                )
                trees.append(_tree(root))
                shutil.rmtree(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    best_seq = min(r["wall_secs"] for r in runs["sequential"])
    best_ray = min(r["wall_secs"] for r in runs["ray"])
    seq_cpu = min(r["cpu_secs"] for r in runs["sequential"])
    island_generations = args.islands * args.generations
    print(
        orjson.dumps(
            {
                "benchmark": "islands",
                "params": vars(args),
                "cpus": os.cpu_count(),
                "load_before": [round(x, 2) for x in load_before],
                "load_after": [round(x, 2) for x in os.getloadavg()],
                "synth_secs": round(synth_secs, 2),
                "ray_init_secs": round(ray_init, 2),
                "sequential": runs["sequential"],
                "ray": runs["ray"],
                "speedup": round(best_seq / best_ray, 2),
                "cpu_speedup": round(
                    seq_cpu / min(max(w["cpu_secs"] for w in r["workers"]) for r in runs["ray"]),
                    2,
                ),
                "identical_state": all(t == trees[0] for t in trees),
                "per_island_generation": {
                    "cpu_secs": round(seq_cpu / island_generations, 3),
                    "worker_peak_rss_mib": max(
                        w["peak_rss_mib"] for r in runs["ray"] for w in r["workers"]
                    ),
                },
            },
            option=orjson.OPT_INDENT_2,
        ).decode()
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
