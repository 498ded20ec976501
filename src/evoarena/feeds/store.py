"""Columnar recordings: ``evoarena compile`` writes a Parquet store beside a recording, and replay
reads it instead of the JSON when it is fresh.

A store is a directory ``<recording>.store/`` of Apache Parquet files (via ``pyarrow``):

* ``stream.parquet`` — one row per recorded item, in file order: ``line_no``, ``t_ms``, ``kind``
  (``delta``, ``ticker``, ``trade``, ``other``, ``error``), ``ticker`` (dictionary-encoded) and
  typed fields: deltas ``sid``, ``seq``, ``side`` (``yes``/``no``), ``price`` (µ$), ``size``
  (signed centi-contracts); tickers ``price`` (last), ``yes_bid``, ``yes_ask``, ``volume``,
  ``size`` (open interest); trades ``price`` (YES), ``size`` (count), ``taker_side``. Replay reads
  this file: typed rows go straight to the book, every ``other`` row (snapshots, lifecycle,
  command replies, REST, marks, anything not in the exact common shape) through the general path
  from its original line in ``general.parquet`` (``line_no``, ``raw``), so results are identical
  to the JSON path's, byte for byte.
* ``snapshots.parquet`` (one row per level: ``t_ms``, ``ticker``, ``side``, ``price``, ``size``),
  ``lifecycle.parquet`` (``t_ms``, ``ticker``, ``event_type``, ``result``), ``rest.parquet``
  (``t_ms``, ``method``, ``path``, ``status``) and ``marks.parquet`` (``t_ms``, ``kind``,
  ``now_ms``) — for other tools (DuckDB, polars, pandas); replay does not read them.

``stream.parquet``'s metadata holds the store version, the recording's header and the source's
size, modification time and SHA-256: a store is *fresh* when size and hash match (the hash is only
recomputed when the modification time changed). Prices are integer micro-dollars, sizes integer
centi-contracts, times integer milliseconds, as everywhere in evoarena.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from evoarena.engine.book import MarketBook
from evoarena.errors import UserError
from evoarena.feeds.events import Side
from evoarena.feeds.fused import (
    TOO_LONG,
    FusedSink,
    body_chunks,
    flush_fast_counters,
    open_recording,
)
from evoarena.feeds.guard import MAX_LINE_BYTES, MAX_T_MS, check_time
from evoarena.feeds.kalshi.decoder import KalshiDecoder
from evoarena.feeds.kalshi.numbers import parse_count, parse_price
from evoarena.feeds.kalshi.parse import MalformedFrame, parse_orderbook_snapshot
from evoarena.feeds.recording import RecordingReader
from evoarena.feeds.replay import ReplaySource, ReplayStep

if TYPE_CHECKING:
    import pyarrow as pa

log = structlog.get_logger(__name__)

STORE_VERSION = "1"
STORE_SUFFIX = ".store"
KINDS = ("other", "delta", "ticker", "trade", "error")
BATCH_ROWS = 1 << 17
"""Rows per Parquet row group; compile and replay hold one batch of rows in memory at a time."""
OTHER, DELTA, TICKER, TRADE, ERROR = range(5)
_SIDE_CODES = {"no": 0, "yes": 1}
_SIDES_BY_CODE = (Side.NO, Side.YES)


def store_path(recording: Path) -> Path:
    """Where the store of ``recording`` lives."""
    return recording.with_name(recording.name + STORE_SUFFIX)


def source_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# -- compiling ------------------------------------------------------------------------------------


@dataclass
class CompileReport:
    """What :func:`compile_recording` wrote."""

    recording: Path
    store: Path
    lines: int
    rows_by_kind: dict[str, int]
    wall_secs: float
    source_bytes: int
    store_bytes: int


@dataclass
class _Columns:
    line_no: list[int] = field(default_factory=list)
    t_ms: list[int] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    ticker: list[str | None] = field(default_factory=list)
    sid: list[int | None] = field(default_factory=list)
    seq: list[int | None] = field(default_factory=list)
    side: list[int | None] = field(default_factory=list)
    price: list[int | None] = field(default_factory=list)
    size: list[int | None] = field(default_factory=list)
    yes_bid: list[int | None] = field(default_factory=list)
    yes_ask: list[int | None] = field(default_factory=list)
    volume: list[int | None] = field(default_factory=list)
    taker_side: list[str | None] = field(default_factory=list)

    def add(self, line_no: int, t_ms: int, kind: int, ticker: str | None = None, **f: Any) -> None:
        self.line_no.append(line_no)
        self.t_ms.append(t_ms)
        self.kind.append(kind)
        self.ticker.append(ticker)
        for name in ("sid", "seq", "side", "price", "size", "yes_bid", "yes_ask", "volume"):
            getattr(self, name).append(f.get(name))
        self.taker_side.append(f.get("taker_side"))


def _price(v: object) -> int:
    if type(v) is not str or not v:
        raise ValueError(v)
    return parse_price(v)


def _count(v: object) -> int:
    if type(v) is not str or not v:
        raise ValueError(v)
    return parse_count(v)


def _typed(obj: Any) -> tuple[int, str, dict[str, Any]] | None:
    """(kind, ticker, fields) of a hot frame in its exact common shape, else ``None``.

    Accepts exactly what the decoder parses to the same values (anything else stays ``other``).
    """
    if type(obj) is not dict or len(obj) != 2 or type(obj.get("t_ms")) is not int:
        return None
    ws = obj.get("ws")
    if type(ws) is not dict:
        return None
    msg = ws.get("msg")
    kind = ws.get("type")
    if type(msg) is not dict:
        return None
    ticker = msg.get("market_ticker")
    if type(ticker) is not str or not ticker:
        return None
    try:
        fields: dict[str, Any]
        if kind == "orderbook_delta":
            sid, seq, side = ws.get("sid"), ws.get("seq"), msg.get("side")
            if type(sid) is not int or type(seq) is not int or side not in _SIDE_CODES:
                return None
            fields = {
                "sid": sid,
                "seq": seq,
                "side": _SIDE_CODES[side],
                "price": _price(msg.get("price_dollars")),
                "size": _count(msg.get("delta_fp")),
            }
            return DELTA, ticker, fields
        if ws.get("seq") is not None:
            return None
        if kind == "ticker":
            fields = {
                "price": _price(msg.get("price_dollars")),
                "yes_bid": _price(msg.get("yes_bid_dollars")),
                "yes_ask": _price(msg.get("yes_ask_dollars")),
                "volume": _count(msg.get("volume_fp")),
                "size": _count(msg.get("open_interest_fp")),
            }
            return TICKER, ticker, fields
        if kind == "trade":
            taker = msg.get("taker_outcome_side")
            fields = {
                "price": _price(msg.get("yes_price_dollars")),
                "size": _count(msg.get("count_fp")),
                "taker_side": taker if type(taker) is str else None,
            }
            return TRADE, ticker, fields
    except (ValueError, TypeError):
        return None
    return None


class _QueryTables:
    """The side tables for other tools (not read by replay)."""

    def __init__(self) -> None:
        self.snapshots: dict[str, list[Any]] = {
            k: [] for k in ("t_ms", "ticker", "side", "price", "size")
        }
        self.lifecycle: dict[str, list[Any]] = {
            k: [] for k in ("t_ms", "ticker", "event_type", "result")
        }
        self.rest: dict[str, list[Any]] = {k: [] for k in ("t_ms", "method", "path", "status")}
        self.marks: dict[str, list[Any]] = {k: [] for k in ("t_ms", "kind", "now_ms")}

    def add(self, obj: Any) -> None:
        if type(obj) is not dict or type(obj.get("t_ms")) is not int:
            return
        t = obj["t_ms"]
        ws, rest, mark = obj.get("ws"), obj.get("rest"), obj.get("mark")
        if type(ws) is dict and type(msg := ws.get("msg")) is dict:
            if ws.get("type") == "orderbook_snapshot":
                try:
                    snap = parse_orderbook_snapshot(msg, t)
                except MalformedFrame:
                    return
                for side, levels in (("yes", snap.yes_bids), ("no", snap.no_bids)):
                    for price, size in levels:
                        for k, v in zip(
                            self.snapshots, (t, snap.ticker, side, price, size), strict=True
                        ):
                            self.snapshots[k].append(v)
            elif ws.get("type") == "market_lifecycle_v2":
                row = (t, msg.get("market_ticker"), msg.get("event_type"), msg.get("result"))
                for k, v in zip(self.lifecycle, row, strict=True):
                    self.lifecycle[k].append(v if type(v) in (int, str) else None)
        elif type(rest) is dict:
            row = (t, rest.get("method"), rest.get("path"), rest.get("status"))
            for k, v in zip(self.rest, row, strict=True):
                self.rest[k].append(v if type(v) in (int, str) else None)
        elif type(mark) is dict:
            now = mark.get("now_ms")
            mark_row = (t, mark.get("kind"), now if type(now) is int else None)
            for k, v in zip(self.marks, mark_row, strict=True):
                self.marks[k].append(v if type(v) in (int, str) else None)


def compile_recording(path: Path) -> CompileReport:
    """Write (replace) the store of ``path``; raises :class:`UserError` for an unreadable file.

    Bad lines are kept as they are: replaying the store reports them as the JSON path would.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    started = time.perf_counter()
    with RecordingReader(path) as reader:
        header = reader.header
    stat = path.stat()
    target = store_path(path)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    meta = {
        b"evoarena_store": STORE_VERSION.encode(),
        b"source_name": path.name.encode(),
        b"source_size": str(stat.st_size).encode(),
        b"source_mtime_ns": str(stat.st_mtime_ns).encode(),
        b"source_sha256": source_sha256(path).encode(),
        b"header": orjson.dumps(header),
    }
    writer = pq.ParquetWriter(
        tmp / "stream.parquet", _stream_schema(pa).with_metadata(meta), compression="zstd"
    )
    counts = {k: 0 for k in KINDS}
    cols = _Columns()

    def flush() -> None:
        nonlocal cols
        for k in cols.kind:
            counts[KINDS[k]] += 1
        writer.write_table(_stream_table(pa, cols), row_group_size=BATCH_ROWS)
        cols = _Columns()

    general_lines: list[int] = []
    general_raw: list[bytes] = []
    query = _QueryTables()
    loads = orjson.loads
    line_no = 1
    raw_file, fh = open_recording(path)
    try:
        for lines, error in body_chunks(fh, path):
            if lines is None:
                cols.add(line_no + 1, cols.t_ms[-1] if cols.t_ms else 0, ERROR)
                general_lines.append(line_no + 1)
                general_raw.append((error or "cannot read").encode())
                break
            if len(cols.kind) >= BATCH_ROWS:
                flush()
            for raw in lines:
                line_no += 1
                if not raw.strip():
                    continue
                try:
                    obj = loads(raw)
                except orjson.JSONDecodeError:
                    obj = None
                typed = _typed(obj)
                if typed is not None:
                    kind, ticker, fields = typed
                    cols.add(line_no, obj["t_ms"], kind, ticker, **fields)
                    continue
                t = obj.get("t_ms") if type(obj) is dict else None
                cols.add(line_no, t if type(t) is int else 0, OTHER)
                general_lines.append(line_no)
                general_raw.append(raw)
                query.add(obj)
        flush()
    finally:
        fh.close()
        raw_file.close()
        writer.close()
    i64 = pa.int64()
    write = {"compression": "zstd"}
    general = pa.table(
        {"line_no": pa.array(general_lines, i64), "raw": pa.array(general_raw, pa.binary())}
    )
    pq.write_table(general, tmp / "general.parquet", **write)
    for name, data in (
        ("snapshots", query.snapshots),
        ("lifecycle", query.lifecycle),
        ("rest", query.rest),
        ("marks", query.marks),
    ):
        pq.write_table(
            pa.table(data) if data["t_ms"] else _empty(pa, data), tmp / f"{name}.parquet"
        )
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return CompileReport(
        recording=path,
        store=target,
        lines=line_no,
        rows_by_kind=counts,
        wall_secs=time.perf_counter() - started,
        source_bytes=stat.st_size,
        store_bytes=sum(p.stat().st_size for p in target.iterdir()),
    )


def _stream_schema(pa: Any) -> pa.Schema:
    i64, i8 = pa.int64(), pa.int8()
    text = pa.dictionary(pa.int32(), pa.string())
    return pa.schema(
        [
            ("line_no", i64),
            ("t_ms", i64),
            ("kind", i8),
            ("ticker", text),
            ("sid", i64),
            ("seq", i64),
            ("side", i8),
            ("price", i64),
            ("size", i64),
            ("yes_bid", i64),
            ("yes_ask", i64),
            ("volume", i64),
            ("taker_side", text),
        ]
    )


def _stream_table(pa: Any, cols: _Columns) -> pa.Table:
    schema = _stream_schema(pa)
    data = {
        f.name: pa.array(getattr(cols, f.name), f.type.value_type).dictionary_encode()
        if pa.types.is_dictionary(f.type)
        else pa.array(getattr(cols, f.name), f.type)
        for f in schema
    }
    return pa.table(data, schema=schema)


def _empty(pa: Any, data: dict[str, list[Any]]) -> pa.Table:
    return pa.table({k: pa.array([], pa.int64() if k == "t_ms" else pa.string()) for k in data})


# -- reading --------------------------------------------------------------------------------------


def fresh_store(recording: Path) -> Path | None:
    """The store of ``recording`` if it exists and matches the file (size and SHA-256)."""
    target = store_path(recording)
    stream = target / "stream.parquet"
    if not stream.is_file() or not (target / "general.parquet").is_file():
        return None
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(stream).metadata or {}
        stat = recording.stat()
    except (OSError, ValueError) as e:
        log.warning("store_unreadable", store=str(target), error=str(e))
        return None
    if meta.get(b"evoarena_store") != STORE_VERSION.encode():
        return None
    if meta.get(b"source_size") != str(stat.st_size).encode():
        return None
    if meta.get(b"source_mtime_ns") == str(stat.st_mtime_ns).encode():
        return target
    if meta.get(b"source_sha256") == source_sha256(recording).encode():
        return target
    return None


class StoreIngest:
    """Replay one recording from its compiled store; same interface and results as
    :class:`~evoarena.feeds.fused.FusedIngest`."""

    def __init__(self, source: ReplaySource, book: MarketBook, store: Path) -> None:
        self.source = source
        self.book = book
        self.store = store
        self.decoder: KalshiDecoder = source.decoder
        self._size = source.path.stat().st_size
        self._done = 0.0

    def bytes_read(self) -> int:
        """Progress, as the share of the source file's bytes the rows read so far stand for."""
        return int(self._size * self._done)

    def close(self) -> None:
        """Nothing to close (the store is read whole)."""

    def __enter__(self) -> StoreIngest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _batches(self) -> Iterator[tuple[list[Any], ...]]:
        """The stream's rows, a row group at a time, as Python lists per column."""
        import pyarrow.parquet as pq

        cols = ["t_ms", "kind", "ticker", "sid", "seq", "side", "price", "size", "line_no"]
        stream = pq.ParquetFile(self.store / "stream.parquet")
        for batch in stream.iter_batches(batch_size=BATCH_ROWS, columns=cols, use_threads=False):
            out: list[list[Any]] = []
            for name in cols:
                col = batch.column(name)
                if name == "ticker":
                    names = col.dictionary.to_pylist()
                    idx = col.indices.fill_null(0).to_numpy().tolist()
                    out.append([names[i] for i in idx] if names else [None] * len(idx))
                else:
                    out.append(col.fill_null(0).to_numpy().tolist())
            yield tuple(out)

    def _general(self) -> tuple[list[int], list[bytes]]:
        import pyarrow.parquet as pq

        general = pq.read_table(self.store / "general.parquet", use_threads=False)
        return general.column("line_no").to_pylist(), general.column("raw").to_pylist()

    def run(self, sink: FusedSink) -> bool:  # noqa: C901 - one flat hot loop, on purpose
        """Feed the whole store; returns True if the sink asked to stop."""
        gl, gr = self._general()
        n_rows = pq_rows(self.store / "stream.parquet")
        done_rows = 0
        source = self.source
        reader = source.reader
        step_of = source.step_of
        book = self.book
        markets = book.markets
        dirty = book.dirty
        market = book.market
        dec = self.decoder
        positions = dec._positions
        sid_tickers = dec._sid_tickers
        decode_ws = dec.decode_ws
        sides = _SIDES_BY_CODE

        items = sink.items
        events = sink.events
        first = sink.first_ms
        last = sink.last_ms
        applied = sink.applied
        last_line = sink.last_line
        applied_t = sink.applied_t
        gate = sink.gate
        n_delta = n_ticker = n_trade = 0
        without_book = impossible = 0
        unapplied = 0
        stopped = read_error = False
        g = 0  # next general row
        line_no = 0
        # The reader's time checks (feeds.guard.check_time), kept in step with it: a typed row
        # whose time it would refuse is the same bad line as on the other paths.
        max_jump = reader.max_time_jump_ms
        high_water: Any = reader._last_t_ms
        limit = MAX_T_MS if high_water is None else min(MAX_T_MS, high_water + max_jump)

        def sync_out() -> None:
            sink.items = items
            sink.events = events
            sink.first_ms = first
            sink.last_ms = last
            sink.applied = applied
            sink.last_line = last_line
            sink.applied_t = applied_t

        for batch in self._batches():
            rows = zip(*batch, strict=True)
            for t, kind, ticker, sid, seq, side, price, size, line in rows:
                if kind != OTHER and kind != ERROR:
                    if t > limit or t < 0:
                        sync_out()
                        reader._bad(line, check_time(t, high_water, max_jump) or "bad 't_ms'")
                        continue
                    if high_water is None or t > high_water:
                        high_water = t
                        limit = min(MAX_T_MS, t + max_jump)
                if kind == DELTA and positions.get(sid) != seq - 1:
                    # Out of order: the decoder decides (stale, gap), from the same values.
                    frame = _delta_frame(sid, seq, ticker, side, price, size)
                    sync_out()
                    stop = sink.general(ReplayStep(t, decode_ws(frame, t), None, line))
                    items, events, first, last = (
                        sink.items,
                        sink.events,
                        sink.first_ms,
                        sink.last_ms,
                    )
                    applied, last_line, applied_t = sink.applied, sink.last_line, sink.applied_t
                    gate = sink.gate
                    if stop:
                        stopped = True
                        break
                    continue
                if kind in (OTHER, ERROR):
                    line_no, raw = gl[g], gr[g]
                    g += 1
                    if kind == ERROR:  # always the last row: the recording ends here
                        sync_out()
                        reader._bad(line_no, raw.decode())
                        read_error = True
                        break
                    if raw == TOO_LONG:
                        reader._bad(line_no, f"line longer than {MAX_LINE_BYTES:,} bytes")
                        continue
                    reader._last_t_ms = high_water
                    item = reader._parse(line_no, raw)
                    high_water = reader._last_t_ms
                    if high_water is not None:
                        limit = min(MAX_T_MS, high_water + max_jump)
                    if item is None:
                        continue
                    sync_out()
                    stop = sink.general(step_of(item))
                    items, events, first, last = (
                        sink.items,
                        sink.events,
                        sink.first_ms,
                        sink.last_ms,
                    )
                    applied, last_line, applied_t = sink.applied, sink.last_line, sink.applied_t
                    gate = sink.gate
                    if stop:
                        stopped = True
                        break
                    if g % 64 == 0:
                        self._done = (done_rows + g) / max(n_rows, 1)
                        sink.chunk_done(t)
                    continue
                items += 1
                last = t
                if first is None:
                    first = t
                if t >= gate:
                    sync_out()
                    stop = sink.at_gate(t)
                    gate = sink.gate
                    if stop:
                        unapplied = kind
                        if kind == DELTA:
                            positions[sid] = seq
                            sid_tickers.setdefault(sid, set()).add(ticker)
                        stopped = True
                        break
                events += 1
                applied += 1
                last_line = line
                applied_t = t
                if kind == DELTA:
                    positions[sid] = seq
                    known = sid_tickers.get(sid)
                    if known is None:
                        known = sid_tickers[sid] = set()
                    known.add(ticker)
                    n_delta += 1
                    m = markets.get(ticker)
                    if m is None or not m.has_book or m.stale:
                        without_book += 1
                    elif not m._apply_delta(sides[side], price, size):
                        impossible += 1
                        m.stale = True
                        dirty.add(m)
                else:
                    m = markets.get(ticker)
                    if m is None:
                        m = market(ticker)
                    m.last_price = price
                    if kind == TICKER:
                        n_ticker += 1
                        m.open_interest = size
                        dirty.add(m)
                    else:
                        n_trade += 1
            if stopped or read_error:
                break
            done_rows += len(batch[0])
            self._done = done_rows / max(n_rows, 1)
        sync_out()
        self._done = 1.0
        reader._last_t_ms = high_water
        reader.lines_read = max(reader.lines_read, line_no)
        flush_fast_counters(
            dec, book, n_delta, n_ticker, n_trade, without_book, impossible, unapplied
        )
        return stopped


def pq_rows(path: Path) -> int:
    """Rows of a Parquet file (from its footer)."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def _delta_frame(sid: int, seq: int, ticker: str, side: int, price: int, size: int) -> Any:
    """An ``orderbook_delta`` frame that parses to exactly these values."""
    sign = "-" if size < 0 else ""
    mag = -size if size < 0 else size
    return {
        "type": "orderbook_delta",
        "sid": sid,
        "seq": seq,
        "msg": {
            "market_ticker": ticker,
            "side": "yes" if side else "no",
            "price_dollars": f"{price // 1_000_000}.{price % 1_000_000:06d}",
            "delta_fp": f"{sign}{mag // 100}.{mag % 100:02d}",
        },
    }


def compile_or_explain(path: Path) -> CompileReport:
    """:func:`compile_recording` with a one-line :class:`UserError` for a missing file."""
    if not path.is_file():
        raise UserError(f"{path}: no such recording file")
    try:
        return compile_recording(path)
    except OSError as e:
        raise UserError(f"{path}: cannot compile: {e.strerror or e}") from e
