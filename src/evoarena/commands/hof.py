"""``evoarena hof``: show the hall of fame from the state directory.

Exit codes: 0 shown; 1 no hall of fame yet; 2 the file is corrupt (the message names it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console, JustifyMethod
from rich.table import Table

from evoarena.commands._args import add_config_argument, add_state_dir_argument
from evoarena.commands.report import best_ever_line, roi_on_bankroll
from evoarena.errors import StateError, UserError
from evoarena.evolution.hall_of_fame import entry_genome_id
from evoarena.evolution.persistence import HALL_OF_FAME_FILE, load_hall_of_fame
from evoarena.settings import Settings


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a positive integer, was {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``hof`` sub-command."""
    p = sub.add_parser(
        "hof",
        help="show the hall of fame (the best genomes of all generations)",
        description="Show the hall of fame kept in the state directory.",
    )
    add_config_argument(p)
    add_state_dir_argument(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="print the whole hall_of_fame.json, ignoring --top (default: a table)",
    )
    p.add_argument(
        "--top", type=_positive_int, default=20, metavar="N", help="show the best N (default: 20)"
    )
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    state_dir = Path(settings.state.dir)
    try:
        hof = load_hall_of_fame(state_dir=state_dir)
    except StateError as e:
        raise UserError(str(e)) from e
    if hof is None:
        print(
            f"evoarena: no hall of fame in {state_dir} yet ({HALL_OF_FAME_FILE} is written "
            "at the end of each generation)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        sys.stdout.write(
            orjson.dumps(hof, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
        )
        sys.stdout.write("\n")
        return 0
    _print_table(hof, args.top, settings)
    return 0


def _row(rank: str, e: dict[str, Any], bankroll: float) -> list[str]:
    return [
        rank,
        entry_genome_id(e),
        str(e["generation"]),
        f"{e['fitness_roi_pct']:+.2f}",
        f"{roi_on_bankroll(e, bankroll):+.2f}",
        str(e["total_trades"]),
        f"{100 * e['win_rate']:.1f}%",
        f"{e['realized_pnl']:+.2f}",
        str(e["signal_type"]),
    ]


def _print_table(hof: dict[str, Any], top: int, settings: Settings) -> None:
    console = Console(highlight=False)
    entries: list[dict[str, Any]] = hof["entries"]
    console.print(
        f"Hall of fame — {len(entries)} entries, latest generation {hof['latest_generation']}, "
        f"updated {hof['updated_at']}"
    )
    table = Table(box=None, pad_edge=False)  # no box: nine columns fit 80 characters
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"),
        ("genome", "left"),
        ("gen", "right"),
        ("fitness", "right"),
        ("ROI %", "right"),
        ("trades", "right"),
        ("win", "right"),
        ("P&L $", "right"),
        ("signal", "left"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)
    for rank, entry in enumerate(entries[:top], start=1):
        table.add_row(*_row(str(rank), entry, float(settings.evolution.initial_bankroll_usd)))
    console.print(table)
    console.print(
        "fitness = ROI % for bots with enough settled trades, the inactive penalty otherwise; "
        "ROI % = realized P&L / starting bankroll (in-sample)",
        style="dim",
        markup=False,
    )
    best = hof["best_ever"]
    if best is not None:
        console.print(best_ever_line(best, settings))
