"""``evoarena inspect RECORDING``: decode a recording into a real market book and summarize it.

Every line goes through the same :class:`~evoarena.feeds.kalshi.decoder.KalshiDecoder` and
:class:`~evoarena.engine.book.MarketBook` a live run uses, so the summary (frames per type,
markets and their results, sequence gaps, stale books, unknown and malformed frames, bad lines,
time span, throughput) describes what a replay of the file would see. ``--book TICKER`` adds that
market's final ladders; ``--json`` prints everything as one JSON object.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import orjson

from evoarena.clock import iso_ms
from evoarena.engine.book import MarketBook, MarketState
from evoarena.errors import UserError
from evoarena.feeds.events import COUNT_ONE, PRICE_ONE, Side
from evoarena.feeds.fused import NEVER, FusedIngest
from evoarena.feeds.replay import ReplaySource, ReplayStep
from evoarena.settings import Settings

_EXAMPLES = 5
_BAD_LINES_SHOWN = 5


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``inspect`` sub-command."""
    p = sub.add_parser(
        "inspect",
        help="summarize a recording (frames, markets, results, gaps, bad lines)",
        description="Decode a recording with the live decoder into a market book and summarize it.",
    )
    p.add_argument("recording", type=Path, metavar="RECORDING", help="a .jsonl or .jsonl.gz file")
    p.add_argument(
        "--json",
        action="store_true",
        dest="as_json",
        help="print one JSON object (default: a summary)",
    )
    p.add_argument(
        "--book", metavar="TICKER", help="also show this market's final order book (default: none)"
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="count and skip unreadable lines (default: stop at the first)",
    )
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.recording
    if not path.is_file():
        raise UserError(f"{path}: no such recording file")
    summary, book = summarize(
        path, skip_bad=args.skip_bad, history_len=settings.trading.price_history_ticks
    )
    if args.book is not None:
        market = book.get(args.book)
        if market is None:
            raise UserError(
                f"market {args.book!r} does not appear in {path} "
                f"({summary['markets']['seen']} markets seen)"
            )
        summary["book"] = book_view(book, market)
    if args.as_json:
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_text(summary))
    return 0


# -- summary --------------------------------------------------------------------------------------


def summarize(
    path: Path, *, skip_bad: bool = False, history_len: int = 120, fused: bool = True
) -> tuple[dict[str, Any], MarketBook]:
    """Replay ``path`` into a fresh book; return (JSON-ready summary, the final book).

    ``fused`` reads through :mod:`evoarena.feeds.fused` (the same summary and book, faster;
    a test compares them); ``False`` takes the general per-line path.
    Raises :class:`~evoarena.errors.RecordingError` on the first bad line unless ``skip_bad``.
    """
    started = time.perf_counter()
    book = MarketBook(history_len)
    sink = _Summary(book)
    with ReplaySource(path, skip_bad=skip_bad) as source:
        if fused:
            with FusedIngest(source, book) as ingest:
                ingest.run(sink)
            if ingest.fast_span is not None:
                sink.span(*ingest.fast_span)
        else:
            for step in source:
                sink.general(step)
        wall = time.perf_counter() - started
        reader, dc, header = source.reader, source.decoder.counters, source.header
    marks, first_ms, last_ms = sink.marks, sink.low_ms, sink.high_ms
    bc = book.counters
    frames = dc.ws_frames + dc.rest_responses
    stale = book.stale_tickers()
    created = header.get("created_ms")
    summary: dict[str, Any] = {
        "file": str(path),
        "source": header.get("source"),
        "created": iso_ms(created) if isinstance(created, int) else None,
        "lines": reader.lines_read,
        "ws_frames": dc.ws_frames,
        "rest_responses": dc.rest_responses,
        "marks": dict(sorted(marks.items())),
        "frames_by_type": dict(sorted(dc.frames_by_type.items())),
        "rest_by_kind": dict(sorted(dc.rest_by_kind.items())),
        "rest_failed_by_kind": dict(sorted(dc.rest_failed_by_kind.items())),
        "lifecycle_by_event_type": dict(sorted(dc.lifecycle_by_event_type.items())),
        "markets": {
            "seen": len(book.markets),
            "with_book": sum(1 for m in book.markets.values() if m.has_book),
        },
        "determined": _determined(book),
        "sequencing": {
            "gaps": dc.gaps,
            "stale_frames": dc.stale_frames,
            "invalidations": bc.invalidations,
            "impossible_deltas": bc.impossible_deltas,
            "deltas_without_book": bc.deltas_without_book,
            "stale_books": len(stale),
            "stale_examples": stale[:_EXAMPLES],
        },
        "unknown_types": dict(sorted(dc.unknown_types.items())),
        "malformed": {"count": dc.malformed, "by_type": dict(sorted(dc.malformed_by_type.items()))},
        "command_errors": dc.command_errors,
        "bad_lines": {"count": reader.bad_count, "first": reader.bad_lines[:_BAD_LINES_SHOWN]},
        "time_span": None
        if first_ms is None or last_ms is None
        else {
            "start": iso_ms(first_ms),
            "end": iso_ms(last_ms),
            "duration_secs": (last_ms - first_ms) / 1000,
        },
        "processing": {
            "wall_secs": round(wall, 3),
            "frames": frames,
            "frames_per_sec": round(frames / wall) if wall > 0 else None,
        },
    }
    return summary, book


class _Summary:
    """What the summary needs from every line: a :class:`~evoarena.feeds.fused.FusedSink`
    that never stops the fused loop, and the general path's step handler."""

    gate = NEVER

    def __init__(self, book: MarketBook) -> None:
        self.apply = book.apply
        self.marks: dict[str, int] = {}
        self.low_ms: int | None = None
        self.high_ms: int | None = None
        self.items = self.events = self.applied = self.last_line = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.applied_t: int | None = None

    def span(self, low: int, high: int) -> None:
        """Widen the time span to ``[low, high]``."""
        if self.low_ms is None or low < self.low_ms:
            self.low_ms = low
        if self.high_ms is None or high > self.high_ms:
            self.high_ms = high

    def general(self, step: ReplayStep) -> bool:
        apply = self.apply
        for ev in step.events:
            apply(ev)
        self.span(step.t_ms, step.t_ms)
        if step.mark is not None:
            kind = str(step.mark.get("kind"))
            self.marks[kind] = self.marks.get(kind, 0) + 1
        return False

    def at_gate(self, t_ms: int) -> bool:
        return False  # pragma: no cover - the gate is never reached

    def chunk_done(self, t_ms: int) -> None:
        pass


def _determined(book: MarketBook) -> dict[str, Any]:
    done = sorted(
        (m for m in book.markets.values() if m.settlement_value is not None),
        key=lambda m: m.ticker,
    )
    counts = {"yes": 0, "no": 0, "scalar": 0}
    for m in done:
        counts[m.result.value if m.result is not None else "scalar"] += 1
    examples = [
        {
            "ticker": m.ticker,
            "result": m.result.value if m.result is not None else "scalar",
            "settlement_value": format_dollars(m.settlement_value),
        }
        for m in done[:_EXAMPLES]
    ]
    return {"count": len(done), **counts, "examples": examples}


def book_view(book: MarketBook, m: MarketState) -> dict[str, Any]:
    """One market's final state: ladders best first (dollars, contracts) and best prices."""

    def price(v: int | None) -> str | None:
        return None if v is None else format_dollars(v)

    return {
        "ticker": m.ticker,
        "event_ticker": m.event_ticker,
        "category": book.category(m.ticker),
        "status": m.status.value,
        "has_book": m.has_book,
        "stale": m.stale,
        "result": None if m.result is None else m.result.value,
        "settlement_value": price(m.settlement_value),
        "last_price": price(m.last_price),
        "best_yes_bid": price(m.best_yes_bid),
        "best_yes_ask": price(m.best_yes_ask),
        "best_no_bid": price(m.best_no_bid),
        "best_no_ask": price(m.best_no_ask),
        "yes_bids": [[format_dollars(p), format_count(s)] for p, s in m.bid_levels(Side.YES)],
        "no_bids": [[format_dollars(p), format_count(s)] for p, s in m.bid_levels(Side.NO)],
    }


def format_dollars(micros: int | None) -> str:
    """Micro-dollars as a dollar string with 4 to 6 decimals (``560_000`` → ``"0.5600"``)."""
    if micros is None:
        return "-"
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), PRICE_ONE)
    digits = f"{frac:06d}".rstrip("0").ljust(4, "0")
    return f"{sign}{whole}.{digits}"


def format_count(centi: int) -> str:
    """Centi-contracts as a contract count with 2 decimals (``1067`` → ``"10.67"``)."""
    sign = "-" if centi < 0 else ""
    whole, frac = divmod(abs(centi), COUNT_ONE)
    return f"{sign}{whole}.{frac:02d}"


# -- text rendering -------------------------------------------------------------------------------


def _n(v: int) -> str:
    return f"{v:,}"


def _counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {_n(v)}" for k, v in d.items()) if d else "none"


def _duration(secs: float) -> str:
    total = int(secs)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s"


def render_text(s: dict[str, Any]) -> str:
    """The summary as an aligned, human-readable report."""
    lines: list[str] = []

    def row(label: str, text: str) -> None:
        lines.append(f"{label:<13}{text}")

    created = f", created {s['created']}" if s["created"] else ""
    row("Recording", f"{s['file']} (source: {s['source']}{created})")
    row("Lines", f"{_n(s['lines'])} (bad: {_n(s['bad_lines']['count'])})")
    span = s["time_span"]
    if span is None:
        row("Time span", "empty recording")
    else:
        row("Time span", f"{span['start']} → {span['end']} ({_duration(span['duration_secs'])})")
    row(
        "Items",
        f"{_n(s['ws_frames'])} WebSocket frames, {_n(s['rest_responses'])} REST responses, "
        f"{_n(sum(s['marks'].values()))} marks",
    )
    width = max((len(k) for k in s["frames_by_type"]), default=0)
    for k, v in s["frames_by_type"].items():
        lines.append(f"  {k:<{width}}  {_n(v):>12}")
    if s["lifecycle_by_event_type"]:
        row("Lifecycle", _counts(s["lifecycle_by_event_type"]))
    row("REST", _counts(s["rest_by_kind"]))
    if s["rest_failed_by_kind"]:
        row("REST failed", _counts(s["rest_failed_by_kind"]))
    if s["marks"]:
        row("Marks", _counts(s["marks"]))
    mk, det = s["markets"], s["determined"]
    row("Markets", f"{_n(mk['seen'])} seen, {_n(mk['with_book'])} with an order book")
    row(
        "Determined",
        f"{_n(det['count'])} (yes {_n(det['yes'])}, no {_n(det['no'])}, "
        f"scalar {_n(det['scalar'])})",
    )
    lines.extend(
        f"  {ex['ticker']}: {ex['result']} (pays {ex['settlement_value']})"
        for ex in det["examples"]
    )
    sq = s["sequencing"]
    row(
        "Sequencing",
        f"{_n(sq['gaps'])} gaps, {_n(sq['stale_frames'])} stale frames dropped, "
        f"{_n(sq['invalidations'])} book invalidations, "
        f"{_n(sq['impossible_deltas'])} impossible deltas",
    )
    stale_eg = f" (e.g. {', '.join(sq['stale_examples'])})" if sq["stale_examples"] else ""
    row("Stale books", f"{_n(sq['stale_books'])} at the end{stale_eg}")
    row("Unknown", _counts(s["unknown_types"]))
    mal = s["malformed"]
    row(
        "Malformed",
        f"{_n(mal['count'])}" + (f" ({_counts(mal['by_type'])})" if mal["count"] else ""),
    )
    if s["command_errors"]:
        row("Cmd errors", _n(s["command_errors"]))
    bad = s["bad_lines"]
    row("Bad lines", _n(bad["count"]))
    lines.extend(f"  {b}" for b in bad["first"])
    proc = s["processing"]
    rate = f" ({_n(proc['frames_per_sec'])} frames/s)" if proc["frames_per_sec"] else ""
    row("Processed", f"{_n(proc['frames'])} frames in {proc['wall_secs']:.3f} s{rate}")
    if "book" in s:
        lines.append("")
        lines.extend(_render_book(s["book"]))
    return "\n".join(lines)


def _render_book(b: dict[str, Any]) -> list[str]:
    flags = [b["status"]]
    if b["stale"]:
        flags.append("STALE")
    if not b["has_book"]:
        flags.append("no book")
    if b["result"] is not None or b["settlement_value"] is not None:
        flags.append(f"result {b['result'] or 'scalar'} pays {b['settlement_value']}")
    out = [
        f"Book {b['ticker']} ({', '.join(flags)})",
        f"  best YES bid {b['best_yes_bid'] or '-'}  ask {b['best_yes_ask'] or '-'}   "
        f"best NO bid {b['best_no_bid'] or '-'}  ask {b['best_no_ask'] or '-'}   "
        f"last {b['last_price'] or '-'}",
        f"  {'YES bids':<22}{'NO bids':<22}",
        f"  {'price':>8} {'contracts':>12} {'price':>8} {'contracts':>12}",
    ]
    yes, no = b["yes_bids"], b["no_bids"]
    for i in range(max(len(yes), len(no))):
        y = f"{yes[i][0]:>8} {yes[i][1]:>12}" if i < len(yes) else " " * 21
        n = f"{no[i][0]:>8} {no[i][1]:>12}" if i < len(no) else ""
        out.append(f"  {y} {n}".rstrip())
    if not yes and not no:
        out.append("  (both ladders empty)")
    return out
