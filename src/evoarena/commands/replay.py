"""``evoarena replay RECORDING``: evolve over a recorded (or synthetic) feed, fast and exactly."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import structlog
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from evoarena.clock import iso_ms
from evoarena.commands._args import (
    add_config_argument,
    add_seed_genomes_argument,
    add_state_dir_argument,
    seed_genomes,
)
from evoarena.commands.report import print_hall_of_fame, print_replay_summary
from evoarena.errors import UserError
from evoarena.logs import configure_logging
from evoarena.replayer import ReplayProgress, ReplayReport, run_replay
from evoarena.settings import Settings
from evoarena.statedir import StopRequested, stop_on_signals

log = structlog.get_logger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``replay`` sub-command."""
    p = sub.add_parser(
        "replay",
        help="run the evolution over a recording with a virtual clock",
        description="Replay a recording (from `evoarena run --record` or `evoarena synth`) "
        "through the same parser, book, bots and evolution as the live service. Same seed, "
        "config and recording give byte-identical state files.",
    )
    p.add_argument(
        "recordings",
        type=Path,
        nargs="+",
        metavar="RECORDING",
        help="recording file (.jsonl or .jsonl.gz); rotated segments of one recording in order",
    )
    add_config_argument(p)
    add_state_dir_argument(p)
    p.add_argument(
        "--seed", type=int, default=None, help="evolution seed (default: [evolution] seed)"
    )
    p.add_argument(
        "--generations",
        type=int,
        default=None,
        metavar="N",
        help="stop once the state directory holds N completed generations, counting those "
        "saved before (default: until the recording ends). A rerun of the same command into "
        "the same state directory resumes exactly where the last run stopped or was killed",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="count and skip bad recording lines instead of stopping",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="TICKS",
        help="checkpoint the generation in progress every TICKS ticks (default: [trading] "
        "checkpoint_every_ticks, as live, so a killed replay resumes close to where it was); "
        "0: only when the replay ends mid-generation (faster; a rerun after a kill then "
        "resumes from the generation's start)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="read the recording's JSON even when a fresh compiled store exists (evoarena compile)",
    )
    add_seed_genomes_argument(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the runner's info logs (progress, generation summaries)",
    )
    p.set_defaults(handler=_handle)


def quiet_logs(args: argparse.Namespace, settings: Settings) -> None:
    """Offline runs log warnings only (the tables say what happened) unless ``--verbose``."""
    if not args.verbose and settings.log.level in ("debug", "info"):
        configure_logging("warning", settings.log.format)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    quiet_logs(args, settings)
    if args.generations is not None and args.generations < 1:
        raise UserError("--generations must be at least 1")
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise UserError("--checkpoint-every must be 0 or more")
    for path in args.recordings:
        if not path.is_file():
            raise UserError(f"{path}: no such recording file")
    args.seeds = seed_genomes(args, settings)
    console = Console()
    show_progress = console.is_terminal and not args.no_progress
    try:
        with stop_on_signals("replay"):
            if show_progress:
                report = _with_progress(args, settings, console)
            else:
                report = run_replay(
                    args.recordings,
                    settings,
                    skip_bad=args.skip_bad,
                    max_generations=args.generations,
                    seed_genomes=args.seeds,
                    checkpoint_every_ticks=args.checkpoint_every,
                    use_cache=not args.no_cache,
                )
    except StopRequested as stop:
        log.info("stop_requested", signal=stop.signal, context="replay")
        print(
            f"evoarena: replay {stop}; every state file written is complete — run the same "
            "command again to resume exactly where the last checkpoint was taken",
            file=sys.stderr,
        )
        return 0
    print_report(report, settings, console)
    return 0


def _with_progress(args: argparse.Namespace, settings: Settings, console: Console) -> ReplayReport:
    total = sum(p.stat().st_size for p in args.recordings)
    with Progress(
        TextColumn("[bold]gen {task.fields[gen]}"),
        BarColumn(),
        TextColumn("{task.fields[vtime]}"),
        TextColumn("{task.fields[rate]} frames/s"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("replay", total=total, gen=0, vtime="", rate="-")

        def update(p: ReplayProgress) -> None:
            rate = f"{p.items / p.wall_secs:,.0f}" if p.wall_secs > 0 else "-"
            bar.update(
                task,
                completed=p.bytes_read,
                gen=p.generation,
                vtime=iso_ms(p.virtual_ms)[:19] + "Z",
                rate=rate,
            )

        return run_replay(
            args.recordings,
            settings,
            skip_bad=args.skip_bad,
            max_generations=args.generations,
            on_progress=update,
            checkpoint_every_ticks=args.checkpoint_every,
            use_cache=not args.no_cache,
            seed_genomes=args.seeds,
        )


def print_report(report: ReplayReport, settings: Settings, console: Console) -> None:
    for store in report.stores:
        print(f"read the compiled store {store} (evoarena compile; --no-cache reads the JSON)")
    print_replay_summary(report, console)
    print_hall_of_fame(Path(settings.state.dir), console, top=5)
    if report.bad_lines:
        print(f"skipped {report.bad_lines} bad line(s); first ones:", file=sys.stderr)
        for line in report.bad_examples[:5]:
            print(f"  {line}", file=sys.stderr)
