"""``evoarena history``: the per-generation table of a state directory (``--csv``, ``--json``)."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from evoarena.commands._args import add_config_argument, add_state_dir_argument
from evoarena.errors import StateError, UserError
from evoarena.observe.history import GenerationRecord, load_history
from evoarena.settings import Settings

_LEGEND = (
    "fitness = ROI % on bankroll of bots with enough settled trades, the inactive penalty for "
    "the others; ROI = P&L / starting bankroll; OOS = out-of-sample mean ROI % of the carried "
    "elites; luck p = luck test p-value; - = not recorded"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``history`` sub-command."""
    p = sub.add_parser(
        "history",
        help="print the per-generation figures of a state directory",
        description="One row per finished generation (gen_NNNN.json): fitness, ROI, activity, "
        "fees, and the out-of-sample and luck-test figures where recorded.",
    )
    add_config_argument(p)
    add_state_dir_argument(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV on stdout (default: a table)")
    fmt.add_argument("--json", action="store_true", help="a JSON list on stdout (default: a table)")
    p.set_defaults(handler=_handle)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    state_dir = Path(settings.state.dir)
    if not state_dir.is_dir():
        raise UserError(f"{state_dir}: no such state directory")
    try:
        hist = load_history(state_dir)
    except StateError as e:
        raise UserError(str(e)) from e
    rows = [g.row() for g in hist.generations]
    if args.json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif args.csv:
        fields = list(rows[0]) if rows else list(GenerationRecord.__slots__)
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    else:
        _print_table(hist.generations, state_dir)
    for problem in hist.problems:
        print(f"evoarena: warning: skipped {problem}", file=sys.stderr)
    if not rows:
        print(f"evoarena: no finished generation in {state_dir} yet", file=sys.stderr)
        return 1
    return 0


def _print_table(gens: list[GenerationRecord], state_dir: Path) -> None:
    console = Console(highlight=False)
    # No box and two-line headers: ten columns fit 80 characters.
    table = Table(title=f"generations — {state_dir}", box=None, pad_edge=False)
    columns = ["gen", "best\nfitness", "median\nfitness", "best\nROI %", "active\nbots"]
    columns += ["trades", "fees\n$", "force-\nclosed"]
    extra = any(g.oos_mean_roi_pct is not None or g.luck_p_value is not None for g in gens)
    if extra:
        columns += ["OOS\nROI %", "luck\np"]
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True, header_style="bold")
    for g in gens:
        cells = [
            str(g.generation),
            f"{g.best_fitness:+.2f}",
            f"{g.median_fitness:+.2f}",
            f"{g.best_roi:+.2f}",
            f"{g.active_bots}/{g.population}",
            str(g.total_trades),
            f"{g.fees_usd:.2f}",
            "-" if g.force_closed is None else str(g.force_closed),
        ]
        if extra:
            cells += [_fmt(g.oos_mean_roi_pct, "+.2f"), _fmt(g.luck_p_value, ".3f")]
        table.add_row(*cells)
    console.print(table)
    console.print(_LEGEND, style="dim")
