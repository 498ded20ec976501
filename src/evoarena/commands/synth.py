"""``evoarena synth``: write a realistic, seeded synthetic Kalshi day as a recording."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from evoarena.commands._offline import synth_progress
from evoarena.feeds.synth import (
    DEFAULT_START_MS,
    MAX_LONGSHOT_BIAS,
    generate_day,
    parse_start_ms,
)
from evoarena.settings import Settings

_DESCRIPTION = """\
Write a synthetic Kalshi day as a recording (JSON Lines; gzip when FILE ends in .gz) in
Kalshi's current wire shapes: hourly REST discovery (markets, events, series) and WebSocket
order-book snapshots and deltas, tickers, trades and market lifecycle messages (created,
close_date_updated, deactivated/activated, determined, settled). Markets of several categories
open and close throughout the window; prices follow a latent probability that resolves toward
the outcome, and the outcome is drawn from it, so quotes are calibrated (no free edge).
Same arguments give a byte-identical file. Replay it with `evoarena replay FILE` or summarize
it with `evoarena inspect FILE`.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``synth`` sub-command."""
    p = sub.add_parser(
        "synth",
        help="write a realistic synthetic Kalshi day (a recording) from a seed",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="recording to write")
    p.add_argument("--markets", type=int, required=True, metavar="N", help="number of markets")
    p.add_argument("--hours", type=float, required=True, metavar="H", help="length of the window")
    p.add_argument(
        "--seed",
        type=int,
        required=True,
        metavar="S",
        help="seed of the synthetic day (markets, prices, outcomes); the evolution's seed is "
        "`replay --seed`",
    )
    p.add_argument(
        "--start",
        default=None,
        metavar="ISO-8601",
        help="first instant, with a timezone (default 2026-03-02T00:00:00Z)",
    )
    p.add_argument(
        "--longshot-bias",
        type=float,
        default=0.0,
        metavar="B",
        help=(
            f"favourite-longshot bias, 0 <= B < {MAX_LONGSHOT_BIAS} (default 0: calibrated). "
            "Quotes become q = sigmoid((1 - 2B) * logit p) for true probability p; outcomes do "
            "not change. B = 0.1 quotes a true 5%% at 8.7c and 80%% at 75.2c; B = 0.2 at 14.6c "
            "and 69.7c"
        ),
    )
    # --seed seeds the synthetic day, not the evolution settings.
    p.set_defaults(handler=_handle, seed_is_evolution=False)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    start_ms = DEFAULT_START_MS if args.start is None else parse_start_ms(args.start)
    began = time.perf_counter()
    console = Console(stderr=True)
    with synth_progress(console, show=console.is_terminal) as on_progress:
        summary = generate_day(
            args.out,
            markets=args.markets,
            hours=args.hours,
            seed=args.seed,
            start_ms=start_ms,
            longshot_bias=args.longshot_bias,
            on_progress=on_progress,
        )
    print(f"wrote {args.out} in {time.perf_counter() - began:.1f} s")
    print(summary.describe())
    return 0
