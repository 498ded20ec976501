"""``evoarena evaluate RECORDING... --genomes SOURCE``: fixed genomes, window by window.

Nothing is bred and nothing is written to the state directory: the genomes trade the recording
as an unchanging population, each window one generation length (see
:mod:`evoarena.evolution.evaluate`). Prints an 80-column table, or one JSON object with
``--json``. Exit codes: 0 done; 2 a bad recording, genome source or flag.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from evoarena.commands._args import add_config_argument, positive_int
from evoarena.commands._offline import print_warnings, quiet_logs, replay_progress
from evoarena.commands.report import SHORT_SIGNAL
from evoarena.errors import UserError
from evoarena.evolution.evaluate import PartResult, evaluate_genomes, evaluate_part
from evoarena.evolution.genome_source import GenomeSource, load_genome_source
from evoarena.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``evaluate`` sub-command."""
    p = sub.add_parser(
        "evaluate",
        help="trade fixed genomes over a recording, window by window, without evolving",
        description="Run fixed genomes (a hall of fame, a generation file or a JSON file of "
        "genomes) over recordings on the same machinery as replay, one window per generation "
        "length, and report per genome: windows, trades, ROI on bankroll (mean ± 95% interval "
        "across windows, worst window), ROI on stake and win rate. Out-of-sample only if the "
        "genomes were not chosen on these recordings.",
    )
    p.add_argument(
        "recordings",
        type=Path,
        nargs="+",
        metavar="RECORDING",
        help="recording file(s); rotated segments of one recording in order",
    )
    p.add_argument(
        "--genomes",
        type=Path,
        required=True,
        metavar="SOURCE",
        help="a state directory (its hall of fame), a gen_NNNN.json (ranked by fitness) or "
        "a JSON file of genomes (the format `evoarena hof --json` prints)",
    )
    p.add_argument(
        "--top",
        type=positive_int,
        default=None,
        metavar="N",
        help="only the best N genomes (default: all)",
    )
    add_config_argument(p)
    p.add_argument(
        "--seed", type=int, default=None, help="seed of the bots' random draws (default: config)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (default: a table)")
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="count and skip bad recording lines (default: stop at the first, exit 2)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="fan the genomes out to the Ray cluster at ADDR (host:port of `ray start --head`; "
        "recordings must be at the same path on every node) (default: this process)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="split the genomes into N groups, one Ray task each; without --ray-address Ray "
        "starts in this process (default: one process without Ray; with --ray-address, the "
        "cluster's CPUs). Same figures either way",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the runner's info logs (default: warnings only, after the table)",
    )
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    collector = quiet_logs(args, settings)
    distributed = args.ray_address is not None or args.workers is not None
    if not distributed or args.ray_address is None:  # a cluster's workers check their paths
        for path in args.recordings:
            if not path.is_file():
                raise UserError(f"{path}: no such recording file")
    source = load_genome_source(args.genomes, args.top)
    if distributed:
        result = _evaluate_on_ray(args, settings, source)
    else:
        bar_console = Console(stderr=True)
        show = bar_console.is_terminal and not args.json
        with replay_progress(bar_console, args.recordings, show=show, label="evaluate") as update:
            result = evaluate_genomes(
                args.recordings, settings, source, skip_bad=args.skip_bad, on_progress=update
            )
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        print_table(result)
        print_warnings(collector, Console())
    return 0


def _evaluate_on_ray(
    args: argparse.Namespace, settings: Settings, source: GenomeSource
) -> dict[str, Any]:
    """The genomes in ``--workers`` groups (default: the cluster's CPUs), one Ray task each."""
    from evoarena.raypool import (  # late: keeps Ray out of every other command
        cluster_cpus,
        fan_out,
        ray_session,
    )

    recordings = [p.absolute() for p in args.recordings]
    local = args.workers if args.ray_address is None else None
    with ray_session(args.ray_address, num_cpus=local) as ray:
        parts = args.workers or cluster_cpus(ray)

        def run(calls: list[tuple[Any, ...]]) -> list[PartResult]:
            return fan_out(ray, evaluate_part, calls, "evaluate")

        return evaluate_genomes(
            recordings, settings, source, skip_bad=args.skip_bad, parts=parts, fan_out=run
        )


def _pct(x: float | None, width: int, signed: bool = True) -> str:
    if x is None:
        return "-".rjust(width)
    return f"{x:+.1f}".rjust(width) if signed else f"{x:.1f}".rjust(width)


def _hours(secs: int) -> str:
    return f"{secs / 3600:g} h"


def describe_sample(sample: dict[str, Any], source: str) -> str:
    """One line saying whether the figures are out-of-sample, as far as the files tell."""
    label = sample["label"]
    n = sample["training_windows"]
    if label == "out-of-sample":
        return (
            f"OUT-OF-SAMPLE: the recording's time span overlaps none of the {n} windows "
            f"{source} was trained on."
        )
    if label == "overlaps training":
        k = sample["overlapping_training_windows"]
        return (
            f"NOT A TEST: the recording's time span overlaps {k} of the {n} windows {source} "
            "was trained on; on the same data these figures are in-sample."
        )
    return (
        f"In- or out-of-sample unknown: {source} records no training windows. The figures are "
        "out-of-sample only if these genomes were not chosen on these recordings."
    )


def _say(text: str) -> None:
    print(textwrap.fill(text, width=80, break_on_hyphens=False))


def print_table(result: dict[str, Any]) -> None:
    """The human view of an evaluation (fits 80 columns)."""
    src = result["source"]["path"]
    windows = result["windows"]
    intro = (
        f"evaluate: {len(result['genomes'])} genome(s) from {src} ({result['source']['kind']}) "
        f"on {', '.join(result['recordings'])}: {len(windows)} window(s) of "
        f"{_hours(result['window_secs'])} + {_hours(result['settlement_wait_secs'])} "
        "settlement (fixed windows: each genome's figures do not depend on the others')."
    )
    _say(intro)
    unfinished = result["unfinished_window"]
    if unfinished is not None:
        _say(f"The unfinished window {unfinished['window']} is not counted.")
    _say(describe_sample(result["sample"], src))
    print()
    header = (
        f"{'#':>3} {'genome':<8} {'signal':<6} {'win':>3} {'trades':>6} "
        f"{'ROI %/window (95% CI)':>21} {'worst':>6} {'stake%':>6} {'win%':>5} {'IS fit':>7}"
    )
    print(header)
    print("-" * len(header))
    for g in result["genomes"]:
        roi = g["roi_bankroll_pct"]
        if roi["ci95_low"] is None:
            ci = f"{roi['mean']:+.1f}".rjust(21)
        else:
            ci = f"{roi['mean']:+.1f} [{roi['ci95_low']:+.1f},{roi['ci95_high']:+.1f}]".rjust(21)
        win_rate = None if g["win_rate"] is None else 100 * g["win_rate"]
        print(
            f"{g['rank']:>3} {g['genome_id']:<8} "
            f"{SHORT_SIGNAL.get(g['signal_type'], g['signal_type'][:6]):<6} "
            f"{g['windows']:>3} {g['trades']:>6} {ci} {_pct(roi['worst'], 6)} "
            f"{_pct(g['roi_stake_pct'], 6)} {_pct(win_rate, 5, signed=False)} "
            f"{_pct(g['in_sample_fitness'], 7)}"
        )
    print()
    _say(
        "ROI %/window: P&L on the starting bankroll in each window, mean and 95% interval "
        "across windows; worst: the worst window; stake%: total P&L / total stake (ROI on "
        "stake); win%: winning / closed positions; IS fit: the in-sample fitness the source "
        "recorded when it chose the genome (not a result on these recordings)."
    )
