"""``evoarena hof merge DIR... --out DIR``: one hall of fame from several independent runs.

The result is a ``hall_of_fame.json`` in the usual format (each entry tagged with its
``origin_run``; rules in :mod:`evoarena.evolution.hof_merge`), written atomically into ``--out``,
which must not already hold one. ``evaluate --genomes`` and ``--seed-genomes`` read it like any
state directory. Exit codes: 0 written; 2 a missing or corrupt input, or an occupied ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from evoarena.commands._args import add_config_argument, positive_int
from evoarena.errors import UserError
from evoarena.evolution import persistence
from evoarena.evolution.hof_merge import merge_halls
from evoarena.settings import Settings


def register(hof_parser: argparse.ArgumentParser) -> None:
    """Add ``merge`` as a sub-command of ``hof`` (plain ``evoarena hof`` still shows the table)."""
    sub = hof_parser.add_subparsers(dest="hof_command", metavar="{merge}")
    p = sub.add_parser(
        "merge",
        help="merge the halls of fame of independent runs",
        description="Merge the halls of fame of several state directories into one, "
        "de-duplicated by gene hash (the best entry of a genome is kept), best N by fitness, "
        "each entry tagged with its origin_run.",
    )
    p.add_argument("dirs", type=Path, nargs="+", metavar="DIR", help="state directories")
    p.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="where to write hall_of_fame.json"
    )
    p.add_argument(
        "--top",
        type=positive_int,
        default=None,
        metavar="N",
        help="keep the best N (default: [evolution] hall_of_fame_size)",
    )
    add_config_argument(p)
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    out: Path = args.out
    target = out / persistence.HALL_OF_FAME_FILE
    if target.exists():
        raise UserError(f"{target}: already exists; merge into a new directory")
    halls = []
    for d in args.dirs:
        if not d.is_dir():
            raise UserError(f"{d}: no such state directory")
        hof = persistence.load_hall_of_fame(state_dir=d)  # StateError names a corrupt file
        if hof is None:
            raise UserError(f"{d}: no {persistence.HALL_OF_FAME_FILE} in this state directory")
        halls.append((str(d), hof))
    top = args.top if args.top is not None else settings.evolution.hall_of_fame_size
    merged = merge_halls(halls, max_entries=top)
    persistence.ensure_state_dir(out)
    persistence.write_hall_of_fame(merged, state_dir=out)
    n = len(merged["entries"])
    print(f"wrote {target}: {n} entries from {len(halls)} run(s), de-duplicated by gene hash")
    return 0
