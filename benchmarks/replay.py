"""Replay benchmark: one 24 h generation of 100 bots over a synthetic 500-market day.

Synthesizes the day (timed separately), then replays it through the real decoder, book, bots and
evolution with 30 s ticks and prints one JSON object: wall seconds, frames/s, ticks/s, virtual
to wall speed-up and peak RSS. Run with ``make bench`` or::

    .venv/bin/python benchmarks/replay.py [--markets 500] [--hours 24] [--bots 100]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson
import structlog

from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.replayer import run_replay
from evoarena.settings import load_settings


def main() -> int:
    """Run the benchmark; prints JSON on stdout."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--markets", type=int, default=500)
    p.add_argument("--hours", type=float, default=24.0, help="trading period (one generation)")
    p.add_argument("--bots", type=int, default=100)
    p.add_argument("--seed", type=int, default=11, help="seed of the synthetic day")
    p.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the recording and state here instead of a temporary directory",
    )
    args = p.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep if args.keep is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        recording = work / "bench-day.jsonl.gz"
        settle_h = 2.0
        t0 = time.perf_counter()
        summary = generate_day(
            recording,
            markets=args.markets,
            hours=args.hours + settle_h + 0.5,
            seed=args.seed,
            start_ms=DEFAULT_START_MS,
        )
        synth_secs = time.perf_counter() - t0

        settings = load_settings(
            None,
            {
                "evolution": {"population_size": args.bots},
                "trading": {
                    "generation_duration_secs": int(args.hours * 3600),
                    "tick_interval_secs": 30,
                    "settlement_wait_secs": int(settle_h * 3600),
                },
                "state": {"dir": str(work / "state")},
            },
        )
        report = run_replay(recording, settings, max_generations=1)

    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    virtual_secs = ((report.last_ms or 0) - (report.first_ms or 0)) / 1000
    result = {
        "benchmark": "replay",
        "markets": args.markets,
        "bots": args.bots,
        "trading_hours": args.hours,
        "recording": {
            "lines": summary.lines,
            "ws_frames": summary.ws_frames,
            "bytes": summary.bytes,
            "synth_secs": round(synth_secs, 2),
        },
        "generations_completed": len(report.generations),
        "wall_secs": round(report.wall_secs, 2),
        "frames": report.items,
        "events": report.events,
        "frames_per_sec": round(report.items / report.wall_secs),
        "ticks": report.ticks,
        "ticks_per_sec": round(report.ticks / report.wall_secs, 1),
        "virtual_secs": virtual_secs,
        "speedup": round(virtual_secs / report.wall_secs),
        "peak_rss_mb": round(rss_kb / 1024, 1),
        "trades": sum(g.stats["total_trades"] for g in report.generations),
        "python": sys.version.split()[0],
    }
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
