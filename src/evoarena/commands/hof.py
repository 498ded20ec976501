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
from evoarena.commands._args import add_config_argument, add_state_dir_argument, positive_int
from evoarena.commands.report import SHORT_SIGNAL, best_ever_line, roi_on_bankroll
from evoarena.errors import StateError, UserError
from evoarena.evolution.hall_of_fame import entry_genome_id
from evoarena.evolution.persistence import HALL_OF_FAME_FILE, load_hall_of_fame
from evoarena.settings import Settings


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
        "--top", type=positive_int, default=20, metavar="N", help="show the best N (default: 20)"
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
    _print_table(hof, args.top, settings)
    return 0


def _num(value: object, fmt: str) -> str:
    return "-" if not isinstance(value, int | float) else format(value, fmt)


def _row(rank: str, e: dict[str, Any], bankroll: float) -> list[str]:
    oos = e.get("out_of_sample") or {}
    n = int(oos.get("n_windows", 0) or 0)
    return [
        rank,
        entry_genome_id(e),
        str(e["generation"]),
        f"{e['fitness_roi_pct']:+.2f}",
        f"{roi_on_bankroll(e, bankroll):+.2f}",
        _num(e.get("roi_stake_pct"), "+.2f"),
        str(e["total_trades"]),
        str(n),
        _num(oos.get("mean_fitness") if n else None, "+.2f"),
        _num(oos.get("mean_roi_stake_pct") if n else None, "+.2f"),
        SHORT_SIGNAL.get(str(e["signal_type"]), str(e["signal_type"])),
    ]


def _print_table(hof: dict[str, Any], top: int, settings: Settings) -> None:
    console = Console(highlight=False)
    entries: list[dict[str, Any]] = hof["entries"]
    console.print(
        f"Hall of fame — {len(entries)} entries, latest generation {hof['latest_generation']}, "
        f"updated {hof['updated_at']}",
        markup=False,
    )
    # no box, one space between columns: eleven columns fit 80 characters
    table = Table(box=None, pad_edge=False, padding=(0, 1), collapse_padding=True)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"),
        ("genome", "left"),
        ("gen", "right"),
        ("IS\nfitness", "right"),
        ("IS ROI%\nbankroll", "right"),
        ("IS ROI%\nstake", "right"),
        ("IS\ntrades", "right"),
        ("OOS\nn", "right"),
        ("OOS\nfitness", "right"),
        ("OOS ROI%\nstake", "right"),
        ("signal", "left"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify, no_wrap=True)
    bankroll = float(settings.evolution.initial_bankroll_usd)
    for rank, entry in enumerate(entries[:top], start=1):
        table.add_row(*_row(str(rank), entry, bankroll))
    console.print(table)
    legend = (
        "IS = in-sample: the window (gen) that chose the genome; it flatters the genome.",
        "OOS = out-of-sample: the n later windows it traded unchanged (means over them).",
        "fitness = ROI on bankroll if enough trades settled, else the inactive penalty.",
        "ROI on bankroll = P&L / starting bankroll; ROI on stake = P&L / money staked.",
        "Win rate, P&L and every window: --json.",
    )
    for line in legend:
        console.print(line, style="dim", markup=False)
    best = hof["best_ever"]
    if best is not None:
        console.print(best_ever_line(best, settings), markup=False)
