"""``evoarena compile``: convert recordings into columnar stores that replay reads faster."""

from __future__ import annotations

import argparse
from pathlib import Path

from evoarena.feeds.store import KINDS, compile_or_explain, store_path
from evoarena.settings import Settings

_DESCRIPTION = """\
Convert each recording once into a columnar store beside it (RECORDING.store/, Apache Parquet:
typed columns for book deltas, tickers and trades in stream order, the original line of every
other item, and query tables of snapshots, lifecycle, REST responses and marks). `evoarena
replay RECORDING` then reads the store whenever it matches the recording (size and SHA-256) and
says so; `--no-cache` forces the JSON path. State files are byte-identical either way.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``compile`` sub-command."""
    p = sub.add_parser(
        "compile",
        help="convert recordings into columnar stores (Parquet) that replay reads faster",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "recordings", type=Path, nargs="+", metavar="RECORDING", help="recording file(s)"
    )
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    for path in args.recordings:
        report = compile_or_explain(path)
        rows = ", ".join(f"{report.rows_by_kind[k]:,} {k}" for k in KINDS if report.rows_by_kind[k])
        ratio = report.store_bytes / report.source_bytes if report.source_bytes else 0.0
        print(
            f"{path} → {store_path(path)}: {report.lines:,} lines ({rows}) in "
            f"{report.wall_secs:.1f} s; store {report.store_bytes / 1e6:.1f} MB = "
            f"{ratio:.2f}× the recording's {report.source_bytes / 1e6:.1f} MB"
        )
    return 0
