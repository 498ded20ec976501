"""The fused replay ingest: read, parse and apply the hot frame types in one loop.

A replay spends most of its time on three WebSocket frame types — ``orderbook_delta`` (about two
thirds of a day's lines), ``ticker`` and ``trade``. :class:`FusedIngest` reads the recording in
large decompressed chunks (``isal``'s gzip where installed, the standard library's otherwise);
:mod:`evoarena.feeds.hotscan` (compiled with numba) classifies and parses the lines of each chunk
in one call, and the lines of those three types in their exact common shape go straight from
its rows to the book's ladders and fields: no JSON object, no
:class:`~evoarena.feeds.recording.RecordItem`, no domain event, no per-frame call into the
decoder or the book. A line the scanner refuses is ``orjson``-parsed and classified as before
(the scanner accepts only what that classification would take alike, see
tests/unit/feeds/test_hotscan.py); without numba every line is. Everything else — snapshots,
lifecycle, command replies, REST bodies, marks, blank or bad lines, and any hot frame that is
not in the exact common shape (an out-of-order ``seq``, a legacy field, a wrong type) — takes
the general path (:meth:`~evoarena.feeds.replay.ReplaySource.step_of`), unchanged.

Contract: for every recording the book, the decoder's sequencing state and counters, and the
replay's schedule end up exactly as with the general path (a test compares the state files byte
for byte), with two deliberate omissions the fast path does not compute because nothing in a
replay reads them: a ticker's cumulative ``volume`` (:attr:`MarketState.volume` keeps its last
general-path value) and the taker side and size of a trade. Their strings are still checked for
shape, so a malformed one is still reported by the general path.

The sink (the replayer) is consulted for a hot frame only when its receive time reaches
:attr:`FusedSink.gate` (one integer comparison per frame).
"""

from __future__ import annotations

import gzip as stdlib_gzip
import re
from collections.abc import Iterator
from itertools import repeat
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
import orjson
import structlog

from evoarena.engine.book import MarketBook
from evoarena.engine.ladders import DELTA, TICKER, TRADE
from evoarena.feeds.bulk import apply_rows_loop
from evoarena.feeds.events import Side
from evoarena.feeds.guard import MAX_COUNT, MAX_LINE_BYTES, MAX_T_MS
from evoarena.feeds.kalshi.decoder import KalshiDecoder
from evoarena.feeds.kalshi.fields import _SIDES
from evoarena.feeds.kalshi.numbers import _PRICES, _fixed_point
from evoarena.feeds.replay import ReplaySource, ReplayStep

try:  # the isa-l gzip is about 1.5-2x faster than zlib's; optional
    from isal import igzip as _gzip
except ImportError:  # pragma: no cover - depends on the platform's wheels
    import gzip as _gzip  # type: ignore[no-redef]

log = structlog.get_logger(__name__)

GZIP_IMPLEMENTATION = "isal" if _gzip.__name__.startswith("isal") else "zlib"
"""Which gzip decoder the fused path reads with."""

CHUNK_BYTES = 1 << 20
NEVER = 1 << 62
"""A gate no receive time reaches."""

# The shape of a fixed-point count the general parser accepts (a subset is enough: anything else
# falls back to the general path, which decides).
_COUNT_SHAPE = re.compile(r"-?[0-9]{1,11}(?:\.[0-9]{1,2})?").fullmatch
"""At most 11 whole digits: always within :data:`~evoarena.feeds.guard.MAX_COUNT` (a longer
count takes the general path, which decides)."""


MEMO_LIMIT = 1 << 17
"""Distinct count strings the fused loop memoizes per run, in each of its two memos (beyond:
checked and parsed every time)."""

TOO_LONG = b"\x00 line over the length limit"
"""Stands for a line longer than :data:`~evoarena.feeds.guard.MAX_LINE_BYTES` (a bad line)."""


def open_recording(path: Path) -> tuple[IO[bytes], Any]:
    """(raw file, decompressed stream) of a recording, through the fastest gzip available."""
    raw: IO[bytes] = open(path, "rb")  # noqa: SIM115 - the caller closes both
    if not path.name.endswith(".gz"):
        return raw, raw
    opener: Any = _gzip.GzipFile  # isal's is untyped
    return raw, opener(fileobj=raw, mode="rb")


def body_chunks(fh: Any, path: Path) -> Iterator[tuple[list[bytes], None] | tuple[None, str]]:
    """``(lines, None)`` lists of complete lines (without their newline), in order, after the
    header line; a read error ends the stream with ``(None, "cannot read: ...")``.

    Exactly the lines the general reader (:class:`RecordingReader`, standard-library gzip, line
    by line) yields, also for a damaged or truncated file: at a read error the rest is re-read
    from the same offset that way, so the last good lines and the error message are the same.
    """
    for lines, data, error in body_blocks(fh, path):
        if error:
            yield None, error
        elif data is not None:
            yield data[:-1].split(b"\n") if data else [], None
        else:
            yield lines or [], None


def body_blocks(fh: Any, path: Path) -> Iterator[tuple[list[bytes] | None, bytes | None, str]]:
    """:func:`body_chunks` as ``(lines, None, "")`` or ``(None, data, "")``, where ``data``
    holds complete lines, each ending in a newline and none over the length limit; a read error
    ends it with ``(None, None, "cannot read: ...")``."""
    offset = len(fh.readline())  # the header (validated by RecordingReader)
    tail = b""
    skipping = False  # inside a line longer than MAX_LINE_BYTES: dropped up to its newline
    while True:
        try:
            data = fh.read1(CHUNK_BYTES)
        except (OSError, EOFError):
            for lines, error in _slow_rest(path, offset, b"" if skipping else tail):
                yield lines, None, error or ""
            return
        if not data:
            if skipping:
                yield [TOO_LONG], None, ""
            elif tail:
                yield [TOO_LONG if len(tail) > MAX_LINE_BYTES else tail], None, ""
            return
        offset += len(data)
        if skipping:
            end = data.find(b"\n")
            if end < 0:
                continue
            skipping = False
            yield [TOO_LONG], None, ""
            data = data[end + 1 :]
        if tail:
            data = tail + data
        cut = data.rfind(b"\n") + 1
        data, tail = data[:cut], data[cut:]
        if len(tail) > MAX_LINE_BYTES:
            skipping, tail = True, b""
        if len(data) > MAX_LINE_BYTES:  # a complete line may be over the limit too
            lines = data[:-1].split(b"\n")
            yield [TOO_LONG if len(x) > MAX_LINE_BYTES else x for x in lines], None, ""
        else:
            yield None, data, ""


def _slow_rest(
    path: Path, offset: int, tail: bytes
) -> Iterator[tuple[list[bytes], None] | tuple[None, str]]:
    """The rest of a recording from decompressed ``offset``, read as the general reader does."""
    opener: Any = stdlib_gzip.GzipFile if path.name.endswith(".gz") else None
    with open(path, "rb") as raw:
        fh = opener(fileobj=raw, mode="rb") if opener is not None else raw
        try:
            fh.seek(offset)
            while True:
                line = fh.readline()
                if not line:
                    if tail:
                        yield [tail], None
                    return
                if tail:
                    line, tail = tail + line, b""
                if line.endswith(b"\n"):
                    line = line[:-1]
                    yield [TOO_LONG if len(line) > MAX_LINE_BYTES else line], None
                else:
                    tail = line
        except (OSError, EOFError, stdlib_gzip.BadGzipFile) as e:
            yield None, f"cannot read: {e}"


def _new_scanner() -> Any:
    """A :class:`~evoarena.feeds.hotscan.HotScanner`, or ``None`` (every line through orjson:
    the same results, slower) without numba or where it cannot compile or cache the scanner.
    Imported here: numba's import (about 0.2 s) is paid only by a replay that reads JSON."""
    try:
        from evoarena.feeds import hotscan

        if not hotscan.AVAILABLE:
            return None
        scanner = hotscan.HotScanner()
        scanner.scan(b"\n")  # compiles (first use after an install, a few s) or loads the cache
    except Exception as e:  # an environment problem, never a reason to fail a replay
        log.warning("hot_scanner_unavailable", error=f"{type(e).__name__}: {e}")
        return None
    return scanner


class FusedSink(Protocol):
    """What the fused loop needs from the replay driving it."""

    gate: int
    """A hot frame received at ``t >= gate`` is passed to :meth:`at_gate` before it is applied."""
    items: int
    events: int
    first_ms: int | None
    last_ms: int | None
    applied: int
    """Items whose events are applied (the replay's resume position counts these)."""
    last_line: int
    applied_t: int | None

    def at_gate(self, t_ms: int) -> bool:
        """Scheduled work before a frame at ``t_ms`` (the frame is already counted); True = stop
        without applying it."""
        ...

    def general(self, step: ReplayStep) -> bool:
        """One line on the general path, handled exactly as a :class:`ReplaySource` step
        (counting included); True = stop."""
        ...

    def chunk_done(self, t_ms: int) -> None:
        """Called after each chunk of lines (progress display)."""
        ...


class FusedIngest:
    """One recording file through the fused loop (see the module docstring).

    Wraps a :class:`ReplaySource` (which validates the header and owns the bad-line bookkeeping)
    and reads the body through a second handle.
    """

    def __init__(self, source: ReplaySource, book: MarketBook) -> None:
        self.source = source
        self.book = book
        self.decoder: KalshiDecoder = source.decoder
        self._raw, self._fh = open_recording(source.path)
        self._bytes_read = 0
        self.use_scanner = True
        """Whether hot lines are classified and parsed in bulk by :mod:`evoarena.feeds.hotscan`
        (when numba is installed) before ``orjson`` is asked; the results are the same."""
        self.fast_span: tuple[int, int] | None = None
        """(earliest, latest) receive time of the lines taken on the fast path, after
        :meth:`run` (``None``: none); the sink sees every other line's."""

    @property
    def path(self) -> Path:
        """The recording."""
        return self.source.path

    def bytes_read(self) -> int:
        """Bytes of the file (compressed, for ``.gz``) consumed so far."""
        if not self._raw.closed:
            self._bytes_read = self._raw.tell()
        return self._bytes_read

    def close(self) -> None:
        """Close the second handle (the source is closed by its owner)."""
        if not self._raw.closed:
            self._bytes_read = self._raw.tell()
        self._fh.close()
        self._raw.close()

    def __enter__(self) -> FusedIngest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _chunks(self) -> Iterator[tuple[list[bytes] | None, bytes | None, str]]:
        return body_blocks(self._fh, self.source.path)

    def run(self, sink: FusedSink) -> bool:  # noqa: C901 - one flat hot loop, on purpose
        """Feed the whole file; returns True if the sink asked to stop."""
        source = self.source
        reader = source.reader
        step_of = source.step_of
        parse_obj = reader._parse_obj
        book = self.book
        markets = book.markets
        market = book.market
        dec = self.decoder
        positions: dict[Any, int] = dec._positions
        sid_tickers: dict[Any, set[str]] = dec._sid_tickers
        loads = orjson.loads
        json_error = orjson.JSONDecodeError
        sides: dict[Any, Any] = _SIDES
        prices: dict[Any, Any] = _PRICES
        count_shape = _COUNT_SHAPE
        # Count strings repeat (deltas 7 %, open interests 20 % distinct), but the cumulative
        # volumes crowd the shared memo (numbers._COUNTS): memoized here, per run — values in
        # count_memo, strings only checked for shape (volumes, trade counts) in shaped.
        count_memo: dict[Any, int] = {}
        shaped: set[Any] = set()
        yes_side = Side.YES
        scanner = _new_scanner() if self.use_scanner else None
        tickers = scanner.tickers if scanner is not None else []
        no_rows = [repeat(0)] * 6
        delta_yes, delta_no = 1, 2  # the scanner's kinds of deltas (hotscan.DELTA_YES, _NO)
        fixed_point = _fixed_point
        # The reader's time checks (feeds.guard.check_time), kept in step with it: a line whose
        # time it would refuse takes the general path, which refuses it the same way.
        high_water: Any = reader._last_t_ms
        max_jump = reader.max_time_jump_ms
        # The latest time a line may have: t - high_water <= max_jump, and at most MAX_T_MS.
        limit = MAX_T_MS if high_water is None else min(MAX_T_MS, high_water + max_jump)

        line_no = 1
        items = sink.items
        events = sink.events
        first = sink.first_ms
        last = sink.last_ms
        applied = sink.applied
        last_line = sink.last_line
        applied_t = sink.applied_t
        gate = sink.gate
        low, high = NEVER, -1
        stopped = False
        unapplied = 0
        t: Any = 0
        obj: Any
        ws: Any
        msg: Any
        ticker: Any = None
        sid: Any = None
        seq: Any = None
        side: Any = None
        price: Any = None
        delta: Any = None
        delta_s: Any = None
        oi: Any = None
        mtype: Any = None

        # The fast lines' book changes, applied by flush() (kind, market row + 1, side, price,
        # size: ladders.apply_rows' columns).
        pending: list[list[Any]] = [[], [], [], [], []]
        p_kind, p_row, p_side, p_price, p_size = (col.append for col in pending)
        tally = np.zeros(5, dtype=np.int64)
        apply = apply_rows_loop()

        def flush() -> None:
            kind_, row_, side_, price_, size_ = (np.array(col, dtype=np.int64) for col in pending)
            for col in pending:
                col.clear()
            rows = np.arange(-1, book.columns.n, dtype=np.int64)  # row + 1 → row (0: none)
            columns = (kind_, rows, row_, side_, price_, size_)
            book.columns.apply(apply, columns, 0, len(kind_), tally, _no_market)

        def sync_out() -> None:
            if pending[0]:
                flush()
            sink.items = items
            sink.events = events
            sink.first_ms = first
            sink.last_ms = last
            sink.applied = applied
            sink.last_line = last_line
            sink.applied_t = applied_t

        for lines, data, error in self._chunks():
            if error:
                sync_out()
                reader._bad(line_no + 1, error)
                break
            # The lines as a buffer the scanner has read (line i starts at starts[i]), else as a
            # list (no scanner, or the rare pieces body_blocks hands out as a list).
            rows: Any
            block: list[bytes] = [] if lines is None else lines
            if data is not None and scanner is not None:
                rows = scanner.scan(data)
                starts = scanner.starts
            else:
                if data is not None:
                    block, data = data[:-1].split(b"\n") if data else [], None
                rows = [repeat(0, len(block)), *no_rows]
            first_line = line_no + 1
            for kind, scan_t, tid, sid, seq, price, delta in zip(*rows, strict=False):
                line_no += 1
                # The scanner's verdict (see feeds.hotscan) settles the shape and the values;
                # the time and the sequence depend on what came before, checked here. Kinds:
                # 1 and 2 deltas on the yes and no side, 3 a ticker (its open interest in seq),
                # 4 a trade; 0 the general path.
                if kind and scan_t <= limit and (kind > delta_no or positions.get(sid) == seq - 1):
                    t = scan_t
                    ticker = tickers[tid]
                else:
                    kind = 0
                    if data is None:
                        raw = block[line_no - first_line]
                    else:
                        at = int(starts[line_no - first_line])
                        raw = data[at : data.index(b"\n", at)]
                    try:
                        obj = loads(raw)
                    except json_error:
                        obj = None
                    # Classify: only exact common shapes take the fast path; nothing mutates here. A
                    # missing key (KeyError) or an unhashable value where a string belongs
                    # (TypeError) leaves the line to the general path, which decides.
                    try:
                        if type(obj) is dict and len(obj) == 2:
                            t = obj["t_ms"]
                            ws = obj["ws"]
                            if type(t) is int and type(ws) is dict and 0 <= t <= limit:
                                mtype = ws["type"]
                                msg = ws["msg"]
                                if mtype == "orderbook_delta" and type(msg) is dict:
                                    sid = ws["sid"]
                                    seq = ws["seq"]
                                    ticker = msg["market_ticker"]
                                    side = sides[msg["side"]]
                                    price = prices[msg["price_dollars"]]
                                    delta_s = msg["delta_fp"]
                                    delta = count_memo.get(delta_s)
                                    if (
                                        delta is None
                                        and type(delta_s) is str
                                        and count_shape(delta_s) is not None
                                    ):
                                        # Not memoized yet: the general parser's exact value.
                                        delta = (
                                            int(delta_s[:-3] + delta_s[-2:])
                                            if delta_s[-3:-2] == "."
                                            else fixed_point(delta_s, 2, "contract count")
                                        )
                                        if len(count_memo) < MEMO_LIMIT:
                                            count_memo[delta_s] = delta
                                    if (
                                        type(seq) is int
                                        and type(sid) is int
                                        and positions.get(sid) == seq - 1
                                        and type(ticker) is str
                                        and ticker
                                        and delta is not None
                                    ):
                                        kind = delta_yes if side is yes_side else delta_no
                                elif mtype == "ticker" and type(msg) is dict and "seq" not in ws:
                                    ticker = msg["market_ticker"]
                                    price = prices.get(msg["price_dollars"])
                                    oi_s = msg["open_interest_fp"]
                                    vol_s = msg["volume_fp"]
                                    if (
                                        type(ticker) is str
                                        and ticker
                                        and price is not None
                                        and msg["yes_bid_dollars"] in prices
                                        and msg["yes_ask_dollars"] in prices
                                    ):
                                        shape_ok = vol_s in shaped
                                        if (
                                            not shape_ok
                                            and type(vol_s) is str
                                            and count_shape(vol_s) is not None
                                        ):
                                            shape_ok = True
                                            if len(shaped) < MEMO_LIMIT:
                                                shaped.add(vol_s)
                                        oi = count_memo.get(oi_s)
                                        if (
                                            oi is None
                                            and type(oi_s) is str
                                            and count_shape(oi_s) is not None
                                        ):
                                            # Shape checked: "<digits>.dd" is its digits.
                                            oi = (
                                                int(oi_s[:-3] + oi_s[-2:])
                                                if oi_s[-3:-2] == "."
                                                else fixed_point(oi_s, 2, "contract count")
                                            )
                                            if not -MAX_COUNT <= oi <= MAX_COUNT:
                                                oi = None
                                            elif len(count_memo) < MEMO_LIMIT:
                                                count_memo[oi_s] = oi
                                        if shape_ok and oi is not None:
                                            kind = 3
                                            seq = oi
                                elif mtype == "trade" and type(msg) is dict and "seq" not in ws:
                                    ticker = msg["market_ticker"]
                                    price = prices.get(msg["yes_price_dollars"])
                                    count_s = msg["count_fp"]
                                    if type(ticker) is str and ticker and price is not None:
                                        if count_s in shaped:
                                            kind = 4
                                        elif (
                                            type(count_s) is str
                                            and count_shape(count_s) is not None
                                        ):
                                            kind = 4
                                            if len(shaped) < MEMO_LIMIT:
                                                shaped.add(count_s)
                    except (KeyError, TypeError):
                        kind = 0
                if kind:
                    # high <= high_water (every fast line raises both): only a new high can
                    # be a new high-water mark.
                    if t > high:
                        if low == NEVER:
                            low = t
                        high = t
                        if high_water is None or t > high_water:
                            high_water = t
                            limit = t + max_jump
                            if limit > MAX_T_MS:
                                limit = MAX_T_MS
                    elif t < low:
                        low = t
                    items += 1
                    last = t
                    if first is None:
                        first = t
                    if t >= gate:
                        sync_out()
                        stop = sink.at_gate(t)
                        gate = sink.gate
                        if stop:
                            # The general path decodes a frame before the schedule says stop.
                            unapplied = 1 if kind <= delta_no else kind - 1
                            if kind <= delta_no:
                                positions[sid] = seq
                                sid_tickers.setdefault(sid, set()).add(ticker)
                            stopped = True
                            break
                    events += 1
                    applied += 1
                    last_line = line_no
                    applied_t = t
                    m = markets.get(ticker)
                    if kind <= delta_no:
                        positions[sid] = seq
                        known = sid_tickers.get(sid)
                        if known is None:
                            known = sid_tickers[sid] = set()
                        known.add(ticker)
                        # Applied in order, in bulk, before the sink next sees the book.
                        p_kind(DELTA)
                        p_row(0 if m is None else m.row + 1)
                        p_side(kind == delta_yes)
                        p_price(price)
                        p_size(delta)
                    else:
                        if m is None:
                            m = market(ticker)
                        p_kind(TICKER if kind == 3 else TRADE)
                        p_row(m.row + 1)
                        p_side(0)
                        p_price(price)
                        p_size(seq)  # (a ticker's open interest rides in seq)
                    continue
                # -- the general path ----------------------------------------------------------
                if pending[0]:
                    flush()
                if obj is None and not raw.strip():
                    continue
                if raw is TOO_LONG:
                    reader._bad(line_no, f"line longer than {MAX_LINE_BYTES:,} bytes")
                    continue
                reader._last_t_ms = high_water
                # A line that decoded is not decoded twice (REST bodies can be large).
                item = reader._parse(line_no, raw) if obj is None else parse_obj(line_no, obj)
                high_water = reader._last_t_ms
                if high_water is not None:
                    limit = min(MAX_T_MS, high_water + max_jump)
                if item is None:
                    continue
                sync_out()
                stop = sink.general(step_of(item))
                items, events, first, last = sink.items, sink.events, sink.first_ms, sink.last_ms
                applied, last_line, applied_t = sink.applied, sink.last_line, sink.applied_t
                gate = sink.gate
                if stop:
                    stopped = True
                    break
            if stopped:
                break
            sync_out()
            sink.chunk_done(t if type(t) is int else 0)
        sync_out()
        if high >= 0:
            self.fast_span = (low, high)
        reader._last_t_ms = high_water
        reader.lines_read = line_no
        n_delta, without_book, impossible, n_ticker, n_trade = tally.tolist()
        flush_fast_counters(
            self.decoder, book, n_delta, n_ticker, n_trade, without_book, impossible, unapplied
        )
        return stopped


def _no_market(x: int) -> int:
    """The fused loop adds a market before its row is queued: never called."""
    msg = f"row of market {x} queued before the market was added"
    raise AssertionError(msg)


def flush_fast_counters(
    dec: KalshiDecoder,
    book: MarketBook,
    n_delta: int,
    n_ticker: int,
    n_trade: int,
    without_book: int,
    impossible: int,
    unapplied: int,
) -> None:
    """Add a fast loop's counts to the decoder's and the book's, as the general path would
    have counted them frame by frame; ``unapplied`` is the kind (1 delta, 2 ticker, 3 trade) of a
    frame decoded but not applied because the schedule stopped first, else 0."""
    dc = dec.counters
    frames = dc.frames_by_type
    bc = book.counters
    by_type = bc.by_type
    for kind, mtype, ename, n in (
        (1, "orderbook_delta", "BookDelta", n_delta),
        (2, "ticker", "TickerUpdate", n_ticker),
        (3, "trade", "TradePrint", n_trade),
    ):
        decoded = n + (kind == unapplied)
        if decoded:
            frames[mtype] = frames.get(mtype, 0) + decoded
        if n:
            by_type[ename] = by_type.get(ename, 0) + n
    total = n_delta + n_ticker + n_trade
    dc.ws_frames += total + (unapplied != 0)
    bc.events += total
    bc.deltas += n_delta
    bc.deltas_without_book += without_book
    bc.impossible_deltas += impossible
