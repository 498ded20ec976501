"""``evoarena demo``: the main job on an embedded default — a synthetic day, evolved over.

Synthesizes a sample day (seeded, so always the same day), then replays it with short
generations into ``DIR/state`` and prints the per-generation summary and the hall of fame.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from evoarena.commands._args import add_config_argument, command_name
from evoarena.commands._offline import (
    print_warnings,
    quiet_logs,
    replay_with_progress,
    synth_progress,
)
from evoarena.commands.replay import print_report
from evoarena.errors import UserError
from evoarena.feeds.synth import DEFAULT_START_MS, generate_day, validate_arguments
from evoarena.settings import Settings

_STATE_FILES = ("gen_*.json", "checkpoint_gen*.json", "latest.json", "hall_of_fame.json")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` sub-command."""
    p = sub.add_parser(
        "demo",
        help="synthesize a sample day and evolve over it (what `make demo` runs)",
        description="Synthesize a seeded sample day and replay it with 4 generations of 5 h "
        "(1 h settlement wait) into DIR/state; prints the summary and the hall of fame.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("demo-state"),
        metavar="DIR",
        help="directory for the recording and DIR/state (its state files are replaced)",
    )
    p.add_argument(
        "--markets", type=int, default=300, metavar="N", help="markets in the synthetic day"
    )
    p.add_argument(
        "--hours",
        type=float,
        default=None,
        help="length of the synthetic day (default: long enough for every "
        "generation and its settlement wait)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=7,
        help="seed of the synthetic day, not of the evolution (that is [evolution] seed)",
    )
    p.add_argument("--generations", type=int, default=4, metavar="N", help="generations to evolve")
    p.add_argument(
        "--generation-hours",
        type=float,
        default=5.0,
        metavar="H",
        help="trading period of each generation in hours (plus a 1 h settlement wait)",
    )
    add_config_argument(p)
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the runner's info logs (progress, generation summaries) as they happen "
        "(default: warnings only, summarized after the tables)",
    )
    p.set_defaults(handler=_handle, seed_is_evolution=False)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    if args.generations < 1 or args.generation_hours <= 0:
        raise UserError("--generations must be ≥ 1 and --generation-hours > 0")
    collector = quiet_logs(args, settings)
    console = Console()
    show = console.is_terminal
    wait_secs = 3600
    hours = args.hours
    if hours is None:  # every generation can finish: trading + the whole settlement wait
        hours = args.generations * (args.generation_hours + wait_secs / 3600) + 0.5
    validate_arguments(markets=args.markets, hours=hours, seed=args.seed, longshot_bias=0.0)
    out: Path = args.out
    state_dir = out / "state"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        for pattern in _STATE_FILES:  # a demo always starts from generation 0
            for f in state_dir.glob(pattern):
                f.unlink()
    except OSError as e:
        raise UserError(f"{out}: cannot use it as the demo directory: {e.strerror or e}") from e
    recording = out / "sample-day.jsonl.gz"
    console.print(
        f"[bold]1/2[/bold] synthesizing {args.markets} markets × {hours:g} h "
        f"(seed {args.seed}) → {recording}"
    )
    with synth_progress(console, show=show) as on_progress:
        summary = generate_day(
            recording,
            markets=args.markets,
            hours=hours,
            seed=args.seed,
            start_ms=DEFAULT_START_MS,
            on_progress=on_progress,
        )
    console.print(f"      {summary.describe()}")
    trading = settings.trading.model_copy(
        update={
            "generation_duration_secs": int(args.generation_hours * 3600),
            "settlement_wait_secs": wait_secs,
        }
    )
    demo_settings = settings.model_copy(
        update={
            "trading": trading,
            "state": settings.state.model_copy(update={"dir": state_dir}),
        }
    )
    console.print(
        f"[bold]2/2[/bold] replaying with {settings.evolution.population_size} bots, "
        f"{args.generations} generations of {args.generation_hours:g} h → {state_dir}"
    )
    report = replay_with_progress(
        [recording], demo_settings, console, show=show, max_generations=args.generations
    )
    code = print_report(report, demo_settings, console)
    print_warnings(collector, console)
    cmd = command_name()
    console.print(
        f"\nnext: `{cmd} report --state-dir {state_dir}` (HTML charts), "
        f"`{cmd} history --state-dir {state_dir}`, `{cmd} hof --state-dir {state_dir}`, "
        f"`{cmd} inspect {recording}`"
    )
    return code
