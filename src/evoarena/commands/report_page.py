"""``evoarena report``: write one self-contained HTML page with the charts of a run."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from evoarena.commands._args import add_config_argument, add_state_dir_argument
from evoarena.errors import StateError, UserError
from evoarena.observe.history import load_history
from evoarena.observe.report_html import render_report
from evoarena.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` sub-command."""
    p = sub.add_parser(
        "report",
        help="write an HTML report (charts and tables) of a state directory",
        description="Write one self-contained HTML file (plotly.js inline, opens without a "
        "network): fitness per generation with the out-of-sample line and the luck test where "
        "recorded, activity, signal mix, gene distributions, the hall of fame.",
    )
    add_config_argument(p)
    add_state_dir_argument(p)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("report.html"),
        metavar="FILE",
        help="HTML file to write (default: report.html)",
    )
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    state_dir = Path(settings.state.dir)
    if not state_dir.is_dir():
        raise UserError(f"{state_dir}: no such state directory")
    try:
        hist = load_history(state_dir)
    except StateError as e:
        raise UserError(str(e)) from e
    page = render_report(hist, generated_at_ms=int(time.time() * 1000))
    try:
        args.out.write_text(page, encoding="utf-8")
    except OSError as e:
        raise UserError(f"{args.out}: cannot write the report: {e.strerror or e}") from e
    print(
        f"wrote {args.out} ({len(page) / 1e6:.1f} MB, {len(hist.generations)} generation(s)); "
        f"open it in a browser"
    )
    for problem in hist.problems:
        print(f"  warning: skipped {problem}")
    return 0
