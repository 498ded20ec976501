"""``evoarena replay RECORDING``: evolve over a recorded (or synthetic) feed, fast and exactly."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import structlog
from rich.console import Console

from evoarena.commands._args import (
    add_config_argument,
    add_seed_genomes_argument,
    add_state_dir_argument,
    seed_genomes,
)
from evoarena.commands._offline import print_warnings, quiet_logs, replay_with_progress
from evoarena.commands.report import print_hall_of_fame, print_replay_summary
from evoarena.errors import UserError
from evoarena.replayer import ReplayReport
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
        "--seed",
        type=int,
        default=None,
        help="seed of the evolution (first population and breeding), not of a synthetic day "
        "(default: [evolution] seed)",
    )
    p.add_argument(
        "--generation-hours",
        type=float,
        default=None,
        metavar="H",
        help="trading period of a generation in hours; a generation also needs "
        "[trading] settlement_wait_secs after it (default: [trading] "
        "generation_duration_secs, 24 h)",
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
        help="count and skip bad recording lines (default: stop at the first, exit 2)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="read the recording's JSON even when a fresh compiled store exists "
        "(default: use it; see evoarena compile)",
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
        "--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)"
    )
    add_seed_genomes_argument(p)
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the runner's info logs (progress, generation summaries) as they happen "
        "(default: warnings only, summarized after the tables)",
    )
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    collector = quiet_logs(args, settings)
    if args.generations is not None and args.generations < 1:
        raise UserError("--generations must be at least 1")
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise UserError("--checkpoint-every must be 0 or more")
    for path in args.recordings:
        if not path.is_file():
            raise UserError(f"{path}: no such recording file")
    settings = with_generation_hours(settings, args.generation_hours)
    seeds = seed_genomes(args, settings)
    console = Console()
    try:
        with stop_on_signals("replay"):
            report = replay_with_progress(
                args.recordings,
                settings,
                console,
                show=console.is_terminal and not args.no_progress,
                skip_bad=args.skip_bad,
                max_generations=args.generations,
                seed_genomes=seeds,
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
    code = print_report(report, settings, console)
    print_warnings(collector, console)
    return code


def with_generation_hours(settings: Settings, hours: float | None) -> Settings:
    """``settings`` with ``--generation-hours`` applied (validated like the setting)."""
    if hours is None:
        return settings
    if not hours > 0:
        raise UserError(f"--generation-hours must be positive, was {hours:g}")
    secs = round(hours * 3600)
    if secs < settings.trading.tick_interval_secs:
        raise UserError(
            f"--generation-hours {hours:g} is shorter than one tick "
            f"([trading] tick_interval_secs = {settings.trading.tick_interval_secs})"
        )
    trading = settings.trading.model_copy(update={"generation_duration_secs": secs})
    return settings.model_copy(update={"trading": trading})


def too_short_message(report: ReplayReport, settings: Settings) -> str | None:
    """Why no generation finished, when the recording is shorter than one generation."""
    if report.generations or report.first_ms is None or report.last_ms is None:
        return None
    t = settings.trading
    have_h = (report.last_ms - report.first_ms) / 3_600_000
    gen_h, wait_h = t.generation_duration_secs / 3600, t.settlement_wait_secs / 3600
    need_h = gen_h + wait_h
    if have_h >= need_h:
        return None
    msg = (
        f"{report.path}: the recording covers {have_h:.1f} h but a generation needs "
        f"{need_h:g} h ({gen_h:g} h of trading + {wait_h:g} h of settlement wait), so no "
        "generation finished"
    )
    if report.incomplete_generation is not None:
        msg += f" (generation {report.incomplete_generation} was saved as a checkpoint)"
    room = have_h - wait_h
    if room >= 0.1:
        suggest = max(0.1, round(room * 0.9, 1))
        msg += f". Use --generation-hours {suggest:g} (or less) to fit a generation in it"
    else:
        msg += (
            ". The settlement wait alone is longer than the recording: lower it with "
            "EVOARENA_TRADING__SETTLEMENT_WAIT_SECS (or [trading] settlement_wait_secs) and "
            "use --generation-hours"
        )
    return msg


def print_report(report: ReplayReport, settings: Settings, console: Console) -> int:
    """Tables and figures of a replay; exit code 2 when the recording was too short."""
    short = too_short_message(report, settings)
    if short is not None:
        print(f"evoarena: error: {short}", file=sys.stderr)
        return 2
    for store in report.stores:
        print(f"read the compiled store {store} (evoarena compile; --no-cache reads the JSON)")
    print_replay_summary(report, console)
    print_hall_of_fame(Path(settings.state.dir), console, top=5, settings=settings)
    if report.bad_lines:
        print(f"skipped {report.bad_lines} bad line(s); first ones:", file=sys.stderr)
        for line in report.bad_examples[:5]:
            print(f"  {line}", file=sys.stderr)
    return 0
