"""Replay benchmark: the JSON parse floor, inspect, compile, cold and warm replay, in one run.

Synthesizes a day (``--markets`` markets over ``--hours`` of trading plus the settlement wait;
timed separately, reused with ``--keep DIR`` when already there), then measures on that file, in
this one process, one after the other:

* ``floor`` — gzip + ``orjson.loads`` of every line and nothing else, with the fastest gzip
  available (``isal`` when installed) and, for reference, the standard library's;
* ``inspect`` — ``evoarena inspect``'s summary (the general per-line path into a book);
* ``compile`` — ``evoarena compile`` (wall time, store size against the ``.jsonl.gz``);
* ``cold`` — ``evoarena replay --checkpoint-every 0`` from the JSON (the fused path), one
  generation of ``--bots`` bots with 30 s ticks;
* ``warm`` — the same replay from the compiled store;
* ``ingest_cold``, ``ingest_warm`` — the ingest of those replays alone, as with no bots: the
  fused loop over the JSON and over the store into a book, nothing scheduled (no ticks, no
  state files);
* ``general`` (with ``--with-general``) — the same replay through the general per-line path.

Each phase reports CPU seconds (``time.process_time``, all threads) and wall seconds, and its
ratio to the floor's CPU seconds; replays add ticks/s, the CPU seconds spent inside the
population's ticks (``tick_cpu_secs``: settling, price history, market view, bots, fills) and the
rest, ``ingest_cpu_secs`` (reading, decoding, the book, the schedule, imports, state files), each
also as a ratio to the floor. ``--only`` runs a subset of the phases (the floor always runs).
``identical_state`` says whether every replay wrote byte-identical state files. Prints one JSON
object. Run with ``make bench`` or::

    .venv/bin/python benchmarks/replay.py [--markets 500] [--hours 24] [--bots 100] [--seed 1]
"""

from __future__ import annotations

import argparse
import gzip
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import structlog

from evoarena.commands.inspect import summarize
from evoarena.engine.book import MarketBook
from evoarena.evolution.generation import GenerationRun
from evoarena.feeds.fused import GZIP_IMPLEMENTATION, NEVER, FusedIngest, open_recording
from evoarena.feeds.replay import ReplaySource
from evoarena.feeds.store import StoreIngest, compile_recording, store_path
from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.replayer import run_replay
from evoarena.settings import load_settings
from evoarena.testing import TickingSink

SETTLE_HOURS = 2.0


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - cpu, time.perf_counter() - wall


class _TickClock:
    """Accumulates the CPU seconds spent in :meth:`GenerationRun.tick` while installed."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self._orig = GenerationRun.tick

    def __enter__(self) -> _TickClock:
        orig, clock = self._orig, self

        def timed_tick(run: GenerationRun, now_ms: int) -> Any:
            t0 = time.process_time()
            try:
                return orig(run, now_ms)
            finally:
                clock.cpu += time.process_time() - t0

        GenerationRun.tick = timed_tick  # type: ignore[method-assign]  # benchmark-only probe
        return self

    def __exit__(self, *exc: object) -> None:
        GenerationRun.tick = self._orig  # type: ignore[method-assign]


def _ingest_only(path: Path, warm: bool) -> int:
    """The replay's ingest alone (no bots, no ticks, no schedule): events applied."""
    book = MarketBook(120)
    sink = TickingSink(book, start_ms=NEVER, tick_ms=1)  # a gate never reached: no ticks
    with ReplaySource(path) as source:
        ingest = StoreIngest(source, book, store_path(path)) if warm else FusedIngest(source, book)
        with ingest:
            ingest.run(sink)
    return book.counters.events


def _floor(path: Path, fastest: bool) -> int:
    """Lines parsed: gzip + orjson.loads of every line, nothing else."""
    loads = orjson.loads
    n = 0
    if fastest:
        raw, fh = open_recording(path)
        with raw, fh:
            for line in fh:
                loads(line)
                n += 1
    else:
        with gzip.open(path, "rb") as f:
            for line in f:
                loads(line)
                n += 1
    return n


def main() -> int:
    """Run the benchmark; prints JSON on stdout."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--markets", type=int, default=500)
    p.add_argument("--hours", type=float, default=24.0, help="trading period (one generation)")
    p.add_argument("--bots", type=int, default=100)
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic day")
    p.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="write (or reuse) the recording here instead of a temporary directory",
    )
    p.add_argument(
        "--with-general", action="store_true", help="also replay through the general path"
    )
    p.add_argument(
        "--only",
        default="inspect,compile,ingest_cold,ingest_warm,cold,warm",
        help="comma-separated phases to run besides the floor (default: all)",
    )
    args = p.parse_args()
    only = set(args.only.split(","))
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep if args.keep is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        hours = args.hours + SETTLE_HOURS + 0.5
        recording = work / f"bench-{args.markets}m-{hours:g}h-seed{args.seed}.jsonl.gz"
        synth_secs = None
        if not recording.exists():
            t0 = time.perf_counter()
            generate_day(
                recording,
                markets=args.markets,
                hours=hours,
                seed=args.seed,
                start_ms=DEFAULT_START_MS,
            )
            synth_secs = round(time.perf_counter() - t0, 2)
        size = recording.stat().st_size

        def settings(name: str) -> Any:
            state = work / f"state-{name}"
            shutil.rmtree(state, ignore_errors=True)
            return load_settings(
                None,
                {
                    "evolution": {"population_size": args.bots},
                    "trading": {
                        "generation_duration_secs": int(args.hours * 3600),
                        "tick_interval_secs": 30,
                        "settlement_wait_secs": int(SETTLE_HOURS * 3600),
                    },
                    "state": {"dir": str(state)},
                },
            )

        phases: dict[str, dict[str, Any]] = {}
        lines, cpu, wall = _timed(lambda: _floor(recording, fastest=True))
        floor_cpu = cpu
        phases["floor"] = {"gzip": GZIP_IMPLEMENTATION, "lines": lines}
        phases["floor"].update(cpu_secs=round(cpu, 2), wall_secs=round(wall, 2))
        if "stdlib" in only:
            _, cpu, wall = _timed(lambda: _floor(recording, fastest=False))
            phases["floor_stdlib_gzip"] = {"cpu_secs": round(cpu, 2), "wall_secs": round(wall, 2)}
        if "inspect" in only:
            _, cpu, wall = _timed(lambda: summarize(recording))
            phases["inspect"] = {"cpu_secs": round(cpu, 2), "wall_secs": round(wall, 2)}
        if "compile" in only or "warm" in only:
            compiled, cpu, wall = _timed(lambda: compile_recording(recording))
            phases["compile"] = {
                "cpu_secs": round(cpu, 2),
                "wall_secs": round(wall, 2),
                "store_bytes": compiled.store_bytes,
                "store_vs_recording": round(compiled.store_bytes / size, 3),
            }
        for name, warm in (("ingest_cold", False), ("ingest_warm", True)):
            if name in only and (not warm or "compile" in phases):
                _, cpu, wall = _timed(lambda warm=warm: _ingest_only(recording, warm))
                phases[name] = {"cpu_secs": round(cpu, 2), "wall_secs": round(wall, 2)}
        runs = [("cold", {"use_cache": False}), ("warm", {"use_cache": True})]
        if args.with_general:
            runs.append(("general", {"fused": False}))
        runs = [(n, kw) for n, kw in runs if n in only or n == "general"]
        reports = {}
        for name, kw in runs:
            s = settings(name)
            with _TickClock() as ticks:
                report, cpu, wall = _timed(
                    lambda s=s, kw=kw: run_replay(
                        recording, s, max_generations=1, checkpoint_every_ticks=0, **kw
                    )
                )
            reports[name] = report
            phases[name] = {
                "cpu_secs": round(cpu, 2),
                "wall_secs": round(wall, 2),
                "tick_cpu_secs": round(ticks.cpu, 2),
                "ingest_cpu_secs": round(cpu - ticks.cpu, 2),
                "x_floor_ingest_cpu": round((cpu - ticks.cpu) / floor_cpu, 2),
                "ticks": report.ticks,
                "ticks_per_sec": round(report.ticks / wall, 1),
                "frames_per_sec": round(report.items / wall),
                "read_store": bool(report.stores),
                "peak_rss_mb_so_far": _rss_mb(),
            }
        for name, ph in phases.items():
            if "cpu_secs" in ph and name != "floor":
                ph["x_floor_cpu"] = round(ph["cpu_secs"] / floor_cpu, 2)

        def state_bytes(name: str) -> dict[str, bytes]:
            d = work / f"state-{name}"
            return {f.name: f.read_bytes() for f in sorted(d.iterdir())}

        identical = all(state_bytes(n) == state_bytes(runs[0][0]) for n, _ in runs)
        cold = reports[runs[0][0]] if runs else None
        result = {
            "benchmark": "replay",
            "markets": args.markets,
            "bots": args.bots,
            "trading_hours": args.hours,
            "seed": args.seed,
            "recording": {
                "lines": lines,
                "bytes": size,
                "synth_secs": synth_secs,
                "frames": cold.items if cold else None,
            },
            "generations_completed": len(cold.generations) if cold else None,
            "trades": sum(g.stats["total_trades"] for g in cold.generations) if cold else None,
            "phases": phases,
            "identical_state": identical,
            "checkpoints": "only when a replay ends mid-generation (--checkpoint-every 0)",
            "peak_rss_mb": _rss_mb(),
            "python": sys.version.split()[0],
            "command": " ".join(["benchmarks/replay.py", *sys.argv[1:]]),
        }
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
