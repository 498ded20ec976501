"""Differential fuzz of the three replay read paths: general (per line), fused, compiled store.

Writes a small synthetic day, then ``--trials`` times splices up to ``--mutations`` mutated
copies of its lines (the mutations of ``benchmarks/fuzz.py``, and now and then a reconnect mark
or an unsubscription) into it, compiles the result and reads it through each path into a book,
with a tick every 30 s that records and clears the book's dirty set (as a replay's view does).
Every path must end with the same markets (ladders in order, best prices, flags, lifecycle,
prices, titles), the same book and decoder counters, the same bad-line reports and the same
dirty sets at every tick; ``evoarena compile`` must not fail. A divergence or crash stops the
run and keeps the recording (``--keep``).

Usage::

    .venv/bin/python benchmarks/fuzz_paths.py [--trials 100] [--seed 1] [--mutations 200]

Prints one JSON object: trials run, mutated lines, and the first divergence if any.
"""

from __future__ import annotations

import argparse
import gzip
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson
import structlog

from evoarena.feeds.store import compile_recording
from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.testing import read_through
from fuzz import MUTATIONS

TICK_MS = 30_000


def _read(path: Path, how: str) -> dict[str, Any]:
    return read_through(path, how, start_ms=DEFAULT_START_MS, tick_ms=TICK_MS, skip_bad=True)


def _session_line(raw: bytes, obj: Any, rng: random.Random) -> bytes:
    """A line that makes the decoder forget subscriptions, at this line's time: a reconnect
    mark (all of them) or an unsubscription (this line's)."""
    t = obj["t_ms"]
    if rng.random() < 0.5:
        return orjson.dumps({"t_ms": t, "mark": {"kind": "ws_reconnect"}})
    return orjson.dumps({"t_ms": t, "ws": {"type": "unsubscribed", "sid": obj["ws"]["sid"]}})


def _mutated(body: list[bytes], rng: random.Random, most: int) -> tuple[list[bytes], int]:
    out = list(body)
    done = 0
    names = sorted(MUTATIONS)
    for _ in range(rng.randint(1, most)):
        i = rng.randrange(len(out))
        raw = out[i]
        try:
            obj = orjson.loads(raw)
            if rng.random() < 0.02:
                new = _session_line(raw, obj, rng)
            else:
                new = MUTATIONS[rng.choice(names)](raw, obj, rng)
        except Exception:  # noqa: S112 - a mutation that does not apply: try another line
            continue
        if b"\n" in new:
            continue
        out.insert(i + rng.randint(0, 1), new)
        done += 1
    return out, done


def main() -> int:
    """Run the fuzz; prints JSON on stdout, exit status 1 on a divergence or crash."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mutations", type=int, default=200, help="at most this many per trial")
    p.add_argument("--keep", type=Path, default=Path("fuzz-paths-failure.jsonl"))
    args = p.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(50))
    rng = random.Random(args.seed)
    result: dict[str, Any] = {"benchmark": "fuzz_paths", "seed": args.seed, "trials": 0}
    mutated = 0
    with tempfile.TemporaryDirectory() as tmp:
        day = Path(tmp) / "day.jsonl.gz"
        generate_day(day, markets=8, hours=1.0, seed=args.seed, start_ms=DEFAULT_START_MS)
        header, *body = [x for x in gzip.decompress(day.read_bytes()).split(b"\n") if x]
        for trial in range(args.trials):
            lines, n = _mutated(body, rng, args.mutations)
            mutated += n
            path = Path(tmp) / "trial.jsonl"
            path.write_bytes(b"\n".join([header, *lines]) + b"\n")
            try:
                compile_recording(path)
                general = _read(path, "general")
                diverged = [
                    (how, k)
                    for how in ("fused", "orjson", "store")
                    for k, v in _read(path, how).items()
                    if v != general[k]
                ]
            except Exception as e:  # a crash is a finding: report it, keep the recording
                diverged = [("crash", f"{type(e).__name__}: {e}")]
            result["trials"] = trial + 1
            if diverged:
                shutil.copy(path, args.keep)
                result["divergence"] = {"trial": trial, "what": diverged, "kept": str(args.keep)}
                break
    result["mutated_lines"] = mutated
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 1 if "divergence" in result else 0


if __name__ == "__main__":
    raise SystemExit(main())
