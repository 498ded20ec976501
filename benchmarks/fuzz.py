"""Fuzz the input path: mutated recording lines through reader, decoder, book, view and bots.

Writes a small synthetic day, takes its lines, and feeds ``--lines`` mutated copies (15 kinds
of mutation, seeded) one by one through the whole replay input path: the recording reader
(``--skip-bad`` semantics), the Kalshi decoder, the market book, and every ``--tick-every``
lines a full tick (price history, market view, a population of bots trading on a paper
exchange). Between mutated lines, clean lines keep the books alive so mutations land on real
state.

* **crash** — any exception escaping a line other than the reader's own ``file:line`` bad-line
  report (``RecordingError``), or any exception from a tick;
* **hang** — a line or tick that takes longer than ``--hang-secs`` (interrupted by SIGALRM).

Usage::

    .venv/bin/python benchmarks/fuzz.py [--lines 10000] [--seed 1]

Prints one JSON object: crashes, hangs, counts by mutation kind, bad lines and malformed frames
seen, and the first few crash messages.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from evoarena.engine.book import MarketBook
from evoarena.engine.paper import PaperExchange
from evoarena.engine.view import MarketView
from evoarena.errors import RecordingError
from evoarena.evolution.bot import GeneticBot, run_population_tick
from evoarena.evolution.genome import Genome
from evoarena.feeds.kalshi.decoder import KalshiDecoder
from evoarena.feeds.replay import ReplaySource
from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.logs import configure_logging

Obj = Any


class Hang(Exception):
    """Raised by SIGALRM when one step runs too long."""


def _paths(obj: Obj, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:8]):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _set(obj: Obj, path: tuple[Any, ...], value: Obj) -> Obj:
    if not path:
        return value
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return obj


def _leaf(rng: random.Random, obj: Obj) -> tuple[Any, ...]:
    paths = [p for p in _paths(obj) if p]
    return rng.choice(paths) if paths else ()


# -- the 15 mutations: (raw line bytes, parsed object, rng) -> new line bytes ----------------------


def m_truncate(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    return raw[: rng.randrange(1, max(2, len(raw)))]


def m_flip_byte(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    data = bytearray(raw)
    data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def m_insert_bytes(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    i = rng.randrange(len(raw))
    return raw[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))) + raw[i:]


def m_delete_span(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    i = rng.randrange(len(raw))
    return raw[:i] + raw[i + rng.randint(1, 40) :]


def m_deep_nesting(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    depth = rng.choice([200, 900, 1000, 5000])
    text = orjson.dumps(_set(obj, _leaf(rng, obj), "@@NEST@@")).decode()
    return text.replace('"@@NEST@@"', "[" * depth + "1" + "]" * depth, 1).encode()


def m_huge_number_string(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    return orjson.dumps(_set(obj, _leaf(rng, obj), "9" * rng.choice([20, 400, 5000])))


def m_huge_int(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    text = orjson.dumps(_set(obj, _leaf(rng, obj), 0)).decode()
    return text.replace(":0", ":" + "9" * rng.choice([19, 25, 400]), 1).encode()


def m_far_future_time(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    obj["t_ms"] = rng.choice([10**14, 253_402_300_800_000, 2**63 - 1, obj["t_ms"] + 10**12])
    return orjson.dumps(obj)


def m_negative_time(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    obj["t_ms"] = rng.choice([-1, -(10**15), -(2**63)])
    return orjson.dumps(obj)


def m_wrong_type(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    value = rng.choice([None, True, [], {}, "x", 1.5, -7, {"a": [1]}])
    return orjson.dumps(_set(obj, _leaf(rng, obj), value))


def m_drop_key(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    path = _leaf(rng, obj)
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    elif isinstance(parent, list) and parent:
        parent.pop(path[-1])
    return orjson.dumps(obj)


def m_seq_jump(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    ws = obj.get("ws")
    if isinstance(ws, dict) and isinstance(ws.get("seq"), int):
        ws["seq"] += rng.choice([10**9, 2, -5, 10**6])
    return orjson.dumps(obj)


def m_bad_rest_path(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    path = rng.choice(["http://[x]/m", "//[", "/markets/%ff%fe", "\x00/events", "?" * 5000])
    return orjson.dumps(
        {
            "t_ms": obj["t_ms"],
            "rest": {"method": "GET", "path": path, "params": {}, "status": 200, "body": {}},
        }
    )


def m_long_string(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    return orjson.dumps(_set(obj, _leaf(rng, obj), "A" * rng.choice([10_000, 1_000_000])))


def m_odd_tokens(raw: bytes, obj: Obj, rng: random.Random) -> bytes:
    text = orjson.dumps(_set(obj, _leaf(rng, obj), 0)).decode()
    token = rng.choice(["NaN", "Infinity", "-Infinity", "1e400", "-0", "1e-400", '"\\ud800"'])
    return text.replace(":0", ":" + token, 1).encode()


MUTATIONS: dict[str, Callable[[bytes, Obj, random.Random], bytes]] = {
    "truncate": m_truncate,
    "flip_byte": m_flip_byte,
    "insert_bytes": m_insert_bytes,
    "delete_span": m_delete_span,
    "deep_nesting": m_deep_nesting,
    "huge_number_string": m_huge_number_string,
    "huge_int": m_huge_int,
    "far_future_time": m_far_future_time,
    "negative_time": m_negative_time,
    "wrong_type": m_wrong_type,
    "drop_key": m_drop_key,
    "seq_jump": m_seq_jump,
    "bad_rest_path": m_bad_rest_path,
    "long_string": m_long_string,
    "odd_tokens": m_odd_tokens,
}


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hang


class Pipeline:
    """The replay input path over one growing recording, fed a line at a time."""

    def __init__(self, tmp: Path, header: bytes, bots: int, seed: int) -> None:
        self.path = tmp / "fuzz.jsonl"
        self.fh = self.path.open("wb")
        self.fh.write(header)
        self.fh.flush()
        self.source = ReplaySource(self.path, skip_bad=True, decoder=KalshiDecoder())
        self.items = iter(self.source)
        self.book = MarketBook(30)
        rng = random.Random(seed)
        self.bots = [GeneticBot(Genome.random(rng, 0), random.Random(i)) for i in range(bots)]
        self.exchange = PaperExchange(self.book, 100_000_000)
        for bot in self.bots:
            self.exchange.open_account(bot.bot_id)
        self.now_ms = DEFAULT_START_MS

    def feed(self, line: bytes) -> None:
        """Append one line and run it through reader, decoder and book."""
        self.fh.write(line.rstrip(b"\n").replace(b"\n", b" ") + b"\n")
        self.fh.flush()
        try:
            step = next(self.items)
        except StopIteration:  # the line was bad (counted) or blank: restart past it
            self.items = iter(self.source)
            return
        self.now_ms = max(self.now_ms, min(step.t_ms, DEFAULT_START_MS + 10 * 86_400_000))
        for ev in step.events:
            self.book.apply(ev)

    def tick(self) -> None:
        """A whole tick, as a generation runs it."""
        self.book.drain_determined()
        self.book.record_tick()
        view = MarketView.build(self.book, self.now_ms, self.book.categories(), [5, 10])
        run_population_tick(self.bots, view, self.exchange, self.now_ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tick-every", type=int, default=50)
    parser.add_argument("--bots", type=int, default=10)
    parser.add_argument("--hang-secs", type=float, default=5.0)
    args = parser.parse_args()
    configure_logging("error", "json")
    rng = random.Random(args.seed)
    signal.signal(signal.SIGALRM, _alarm)
    crashes: list[str] = []
    hangs: list[str] = []
    by_kind: Counter[str] = Counter()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp_name:
        tmp = Path(tmp_name)
        day = tmp / "day.jsonl.gz"
        generate_day(day, markets=20, hours=6, seed=args.seed, start_ms=DEFAULT_START_MS)
        header, *lines = gzip.decompress(day.read_bytes()).splitlines(keepends=True)
        pipe = Pipeline(tmp, header, args.bots, args.seed)
        clean = iter(lines)
        kinds = list(MUTATIONS)
        for n in range(args.lines):
            for _ in range(3):  # clean lines between mutations keep books and markets alive
                raw = next(clean, None)
                if raw is None:
                    clean = iter(lines)
                    raw = next(clean)
                try:
                    pipe.feed(raw)
                except Exception as e:  # damage a mutation left behind
                    tb = traceback.format_exception_only(type(e), e)[-1].strip()
                    crashes.append(f"clean line after a mutation: {tb[:300]}")
                    pipe.items = iter(pipe.source)
            kind = kinds[n % len(kinds)]
            base = rng.choice(lines)
            mutated = MUTATIONS[kind](base, orjson.loads(base), rng)
            by_kind[kind] += 1
            steps = (("line", lambda m=mutated: pipe.feed(m)), ("tick", pipe.tick))
            for what, step in steps:
                if what == "tick" and n % args.tick_every:
                    continue
                signal.setitimer(signal.ITIMER_REAL, args.hang_secs)
                try:
                    step()
                except Hang:
                    hangs.append(f"{kind} {what}: over {args.hang_secs:g} s")
                except RecordingError as e:  # a bad line's file:line report: expected
                    crashes.append(f"{kind} {what}: RecordingError escaped skip_bad: {e}")
                except Exception as e:
                    tb = traceback.format_exception_only(type(e), e)[-1].strip()
                    crashes.append(f"{kind} {what}: {tb[:300]}")
                    pipe.items = iter(pipe.source)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
        reader = pipe.source.reader
        decoder = pipe.source.decoder
        report = {
            "benchmark": "fuzz",
            "what": "mutated recording lines through reader, decoder, book, view and bots; "
            "crash = an exception escaping, hang = a step over hang_secs",
            "lines": args.lines,
            "mutation_kinds": len(MUTATIONS),
            "by_kind": dict(by_kind),
            "crashes": len(crashes),
            "hangs": len(hangs),
            "summary": f"{len(crashes)} crashes, {len(hangs)} hangs in {args.lines:,} lines",
            "bad_lines": reader.bad_count,
            "malformed_frames": decoder.counters.malformed,
            "seq_gaps": decoder.counters.gaps,
            "first_crashes": crashes[:10],
            "first_hangs": hangs[:10],
            "bad_line_examples": reader.bad_lines[:10],
            "hang_secs": args.hang_secs,
            "wall_secs": round(time.perf_counter() - started, 1),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
        }
        pipe.source.close()
        pipe.fh.close()
    print(json.dumps(report, indent=2))
    return 0 if not crashes and not hangs else 1


if __name__ == "__main__":
    sys.exit(main())
