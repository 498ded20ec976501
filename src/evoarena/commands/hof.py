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

from evoarena.commands import hof_merge
from evoarena.commands._args import add_config_argument, add_state_dir_argument
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
        "--json", action="store_true", help="print the whole hall_of_fame.json (ignores --top)"
    )
    p.add_argument(
        "--top", type=_positive_int, default=20, metavar="N", help="show the best N (default 20)"
    )
    p.set_defaults(handler=_handle)
    hof_merge.register(p)


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
    _print_table(hof, args.top)
    return 0


def _num(value: object, fmt: str) -> str:
    return "-" if not isinstance(value, int | float) else format(value, fmt)


def _row(rank: str, e: dict[str, Any]) -> list[str]:
    oos = e.get("out_of_sample") or {}
    n = int(oos.get("n_windows", 0) or 0)
    return [
        rank,
        entry_genome_id(e),
        str(e["generation"]),
        f"{e['fitness_roi_pct']:+.2f}",
        _num(e.get("roi_bankroll_pct"), "+.2f"),
        _num(e.get("roi_stake_pct"), "+.2f"),
        str(e["total_trades"]),
        f"{100 * e['win_rate']:.1f}%",
        f"{e['realized_pnl']:+.2f}",
        str(n),
        _num(oos.get("mean_fitness"), "+.2f") if n else "-",
        _num(oos.get("mean_roi_bankroll_pct"), "+.2f") if n else "-",
        _num(oos.get("mean_roi_stake_pct"), "+.2f") if n else "-",
        str(e["signal_type"]),
    ]


TABLE_WIDTH = 140
"""The table's width: its columns are never squeezed into ellipses (a narrow terminal wraps)."""


def _print_table(hof: dict[str, Any], top: int) -> None:
    console = Console(highlight=False, soft_wrap=True, width=TABLE_WIDTH)
    entries: list[dict[str, Any]] = hof["entries"]
    console.print(
        f"Hall of fame — {len(entries)} entries, latest generation {hof['latest_generation']}, "
        f"updated {hof['updated_at']}"
    )
    console.print(
        "IS = in-sample: the window (gen) that chose the genome, which flatters it.\n"
        "OOS = out-of-sample: the n later windows it traded unchanged; means over them.\n"
        "ROI on bankroll = P&L / starting bankroll; ROI on stake = P&L / money staked."
    )
    table = Table(show_edge=False, pad_edge=False)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"),
        ("genome", "left"),
        ("gen", "right"),
        ("IS\nfitness", "right"),
        ("IS ROI %\nbankroll", "right"),
        ("IS ROI %\nstake", "right"),
        ("IS\ntrades", "right"),
        ("IS win\nrate", "right"),
        ("IS\nP&L $", "right"),
        ("OOS\nn", "right"),
        ("OOS\nfitness", "right"),
        ("OOS ROI %\nbankroll", "right"),
        ("OOS ROI %\nstake", "right"),
        ("signal", "left"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)
    for rank, entry in enumerate(entries[:top], start=1):
        table.add_row(*_row(str(rank), entry))
    console.print(table)
    best = hof["best_ever"]
    if best is not None:
        console.print(
            f"Best ever: {entry_genome_id(best)} in-sample fitness {best['fitness_roi_pct']:+.2f} "
            f"(generation {best['generation']}, {best['signal_type']})"
        )
