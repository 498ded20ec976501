"""``evoarena islands RECORDING... --islands K``: K populations with ring migration, on Ray.

Rules of the run in :mod:`evoarena.evolution.islands`; Ray in :mod:`evoarena.raypool`. Exit
codes: 0 done; 2 a bad flag, recording, settings file or state directory (also when a worker
cannot read a recording); 1 a worker lost.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evoarena.commands._args import (
    add_config_argument,
    add_state_dir_argument,
    positive_int,
)
from evoarena.commands._offline import print_warnings, quiet_logs
from evoarena.commands.replay import with_generation_hours
from evoarena.commands.report import print_hall_of_fame
from evoarena.errors import UserError
from evoarena.evolution import persistence
from evoarena.evolution.islands import (
    IslandsPlan,
    IslandsReport,
    SequentialPool,
    check_plan,
    island_name,
    island_specs,
    run_islands,
)
from evoarena.settings import Settings, load_settings
from evoarena.statedir import StopRequested, stop_on_signals


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``islands`` sub-command."""
    p = sub.add_parser(
        "islands",
        help="evolve K populations over the same recordings, with migration in a ring (Ray)",
        description="Island-model evolution: K independent populations (island k seeded from "
        "--seed and k) each replay the same recordings into DIR/island_NN (a complete state "
        "directory); every G generations, at a barrier, the M best genomes of each island "
        "replace the last-bred genomes of the next island in the ring. DIR gets one merged hall "
        "of fame. The result does not depend on --workers; rerunning the same command resumes. "
        "Runs on Ray (the evoarena[ray] extra): in-process by default, on a cluster with "
        "--ray-address; recordings and DIR must be at the same path on every node.",
    )
    p.add_argument(
        "recordings",
        type=Path,
        nargs="+",
        metavar="RECORDING",
        help="recording file(s), as for replay; every island replays all of them",
    )
    p.add_argument(
        "--islands", type=positive_int, required=True, metavar="K", help="number of populations"
    )
    p.add_argument(
        "--migrate-every",
        type=positive_int,
        default=1,
        metavar="G",
        help="generations between migrations",
    )
    p.add_argument(
        "--migrants",
        type=int,
        default=2,
        metavar="M",
        help="genomes each island sends to the next at a migration (0: independent islands)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="run seed; island k evolves with a seed derived from it and k "
        "(default: [evolution] seed)",
    )
    add_config_argument(p)
    p.add_argument(
        "--island-config",
        action="append",
        default=[],
        metavar="K=FILE",
        help="island K's own TOML settings, layered over the package defaults instead of "
        "--config (repeatable; default: every island uses --config)",
    )
    add_state_dir_argument(p)
    p.add_argument(
        "--generations",
        type=positive_int,
        default=None,
        metavar="N",
        help="stop once every island holds N generations (default: until the recordings end)",
    )
    p.add_argument(
        "--generation-hours",
        type=float,
        default=None,
        metavar="H",
        help="trading period of a generation in hours, every island (default: settings)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="join the Ray cluster at ADDR (host:port of `ray start --head`) (default: start Ray "
        "in this process on this machine's cores)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="Ray actors (one CPU each; island k runs on actor k mod N); 0: every island in "
        "this process, one after another, without Ray (default: min(K, available CPUs))",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="TICKS",
        help="as for replay (default: [trading] checkpoint_every_ticks)",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="count and skip bad recording lines (default: stop at the first, exit 2)",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="show info logs (default: warnings only)"
    )
    p.set_defaults(handler=_handle)


def island_configs(
    args: argparse.Namespace, settings: Settings
) -> list[tuple[Settings, str | None]]:
    """Each island's settings and the file they came from (``--island-config`` or ``--config``)."""
    own: dict[int, Path] = {}
    for item in args.island_config:
        index, sep, file = str(item).partition("=")
        if not sep or not index.strip().isdigit() or not file:
            raise UserError(f"--island-config {item!r}: expected K=FILE, e.g. 1=island1.toml")
        k = int(index)
        if k >= args.islands:
            raise UserError(
                f"--island-config {item!r}: island {k} does not exist (--islands "
                f"{args.islands} numbers them 0 to {args.islands - 1})"
            )
        if k in own:
            raise UserError(f"--island-config: island {k} is given twice")
        own[k] = Path(file)
    from evoarena.cli import settings_overrides  # late: the CLI imports this module

    overrides = settings_overrides(args)
    out: list[tuple[Settings, str | None]] = []
    for k in range(args.islands):
        if k in own:
            s = load_settings(own[k], overrides)  # ConfigError names the file and key
            source: str | None = str(own[k])
        else:
            s = settings
            source = None if args.config is None else str(args.config)
        out.append((with_generation_hours(s, args.generation_hours), source))
    return out


def build_plan(args: argparse.Namespace, settings: Settings) -> IslandsPlan:
    """The run the flags describe (:class:`UserError` for a bad flag)."""
    if args.migrants < 0:
        raise UserError("--migrants must be 0 or more")
    if args.workers is not None and args.workers < 0:
        raise UserError("--workers must be 0 or more")
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise UserError("--checkpoint-every must be 0 or more")
    if args.workers == 0 and args.ray_address is not None:
        raise UserError("--workers 0 runs without Ray; drop --ray-address or give --workers")
    recordings = tuple(p.absolute() for p in args.recordings)
    if args.ray_address is None:  # on a cluster, the workers check (the driver may not see them)
        for path in recordings:
            if not path.is_file():
                raise UserError(f"{path}: no such recording file")
    root = Path(settings.state.dir).absolute()
    seed = settings.evolution.seed
    return IslandsPlan(
        recordings=recordings,
        islands=island_specs(seed, root, island_configs(args, settings)),
        root=root,
        seed=seed,
        migrate_every=args.migrate_every,
        migrants=args.migrants,
        generations=args.generations,
        skip_bad=args.skip_bad,
        checkpoint_every_ticks=args.checkpoint_every,
        hall_of_fame_size=settings.evolution.hall_of_fame_size,
    )


def execute(plan: IslandsPlan, workers: int | None, ray_address: str | None) -> IslandsReport:
    """Run ``plan`` without Ray (``workers == 0``) or on Ray.

    The first SIGINT/SIGTERM raises :class:`~evoarena.statedir.StopRequested` (the islands are
    stopped first: every state file written is complete, so the same command resumes).
    """
    check_plan(plan)
    if workers == 0:
        pool = SequentialPool(plan)
        try:
            with stop_on_signals("islands"):
                return run_islands(plan, pool)
        finally:
            pool.close()
    from evoarena.raypool import (  # late: keeps Ray out of every other command
        RayIslandPool,
        cluster_cpus,
        ray_session,
    )

    with ray_session(ray_address, num_cpus=workers if ray_address is None else None) as ray:
        ray_pool = RayIslandPool(ray, plan, workers or cluster_cpus(ray))
        try:
            # Inside the session: ray.init installs its own SIGTERM handler (a crash dump).
            with stop_on_signals("islands"):
                return run_islands(plan, ray_pool)
        finally:
            ray_pool.close()


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    collector = quiet_logs(args, settings)
    plan = build_plan(args, settings)
    try:
        report = execute(plan, args.workers, args.ray_address)
    except StopRequested as stop:
        print(
            f"evoarena: islands {stop}; every state file written is complete — run the same "
            "command again to resume",
            file=sys.stderr,
        )
        return 0
    console = Console()
    print_summary(plan, report, console)
    print_hall_of_fame(plan.root, console, top=5, settings=settings)
    if collector is not None:  # expected when a rerun finds islands done
        collector.events = [e for e in collector.events if e.get("event") != "replay_nothing_to_do"]
    print_warnings(collector, console)
    if report.recordings_ended and not any(report.generations):
        print(
            "evoarena: error: the recordings ended before any island finished a generation "
            "(see `evoarena replay` for fitting --generation-hours to a recording)",
            file=sys.stderr,
        )
        return 2
    return 0


def print_summary(plan: IslandsPlan, report: IslandsReport, console: Console) -> None:
    """Per island: seed, generations, best fitness; then where the time and memory went."""
    table = Table(title=f"islands — {plan.root}", box=None, pad_edge=False)
    for col in ("island", "seed", "generations", "best fitness", "best genome"):
        table.add_column(col, justify="left" if col.startswith("island") else "right")
    for spec, held in zip(plan.islands, report.generations, strict=True):
        best: dict[str, Any] | None = None
        hof = persistence.load_hall_of_fame(state_dir=Path(spec.settings.state.dir))
        if hof is not None:
            best = hof.get("best_ever")
        table.add_row(
            island_name(spec.index),
            str(spec.settings.evolution.seed),
            str(held),
            "-" if best is None else f"{float(best['fitness_roi_pct']):+.2f}",
            "-" if best is None else str(best["genome"]["id"]),
        )
    console.print(table)
    if plan.generations is None:
        end = "ran until the recordings ended"
    elif report.recordings_ended:
        end = f"the recordings ended before {plan.generations} generations"
    else:
        end = "all generations done"

    print(
        f"{report.barriers} migration(s), every {plan.migrate_every} generation(s), "
        f"{plan.migrants} migrant(s) per island; {end}; {report.wall_secs:.1f} s wall"
    )
    for u in report.usage:
        print(
            f"worker {u['host']}: peak memory {u['peak_rss_kib'] / 1024:.0f} MiB, "
            f"CPU {u['cpu_secs']:.1f} s"
        )
