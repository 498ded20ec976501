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
  to the JSON path's, byte for byte. ``line_no``, ``t_ms`` and ``seq`` are delta-encoded. A
  market listing (``GET /markets``) the decoder reads without a complaint is decoded at compile
  time instead: its line is kept without the body, its ``MarketInfo`` events in
  ``rest_events.parquet`` (``general.parquet``'s ``rest_first``/``rest_count`` point to them).

Replay reads a row group at a time as numpy columns. A compiled loop
(:func:`~evoarena.feeds.bulk.scan_rows`) takes the typed rows in order (receive-time guard, delta
sequence per ``sid``, the schedule's gate, the counters) up to the first row that needs the
per-row loop (the JSON path's logic, row by row): an ``other`` row, a refused time, a delta out of
sequence, a row at a tick. The rows it took are applied to the book by another
(:func:`~evoarena.engine.ladders.apply_rows`). A row group on more than :data:`MAX_BATCH_SIDS`
subscriptions takes the per-row loop whole.
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

import numpy as np
import numpy.typing as npt
import orjson
import structlog

from evoarena.engine.book import MarketBook
from evoarena.errors import UserError
from evoarena.feeds import bulk
from evoarena.feeds.events import MarketEvent, MarketInfo, MarketStatus, Side
from evoarena.feeds.fused import (
    _COUNT_SHAPE,
    TOO_LONG,
    FusedSink,
    body_chunks,
    flush_fast_counters,
    open_recording,
)
from evoarena.feeds.guard import MAX_LINE_BYTES, MAX_T_MS, check_time
from evoarena.feeds.kalshi.decoder import KalshiDecoder
from evoarena.feeds.kalshi.numbers import parse_count, parse_price
from evoarena.feeds.kalshi.parse import parse_orderbook_snapshot
from evoarena.feeds.kalshi.parse_rest import parse_rest, rest_route
from evoarena.feeds.recording import RecordingReader, RecordItem
from evoarena.feeds.replay import ReplaySource, ReplayStep

if TYPE_CHECKING:
    import pyarrow as pa

log = structlog.get_logger(__name__)

IntArray = npt.NDArray[np.int64]

STORE_VERSION = "3"
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
        get = f.get
        self.sid.append(get("sid"))
        self.seq.append(get("seq"))
        self.side.append(get("side"))
        self.price.append(get("price"))
        self.size.append(get("size"))
        self.yes_bid.append(get("yes_bid"))
        self.yes_ask.append(get("yes_ask"))
        self.volume.append(get("volume"))
        self.taker_side.append(get("taker_side"))


def _price(v: object) -> int:
    if type(v) is not str or not v:
        raise ValueError(v)
    return parse_price(v)


def _count(v: object) -> int:
    if type(v) is not str or not v:
        raise ValueError(v)
    if v[-3:-2] == "." and _COUNT_SHAPE(v) is not None:  # most cumulative volumes: unmemoized
        return int(v[:-3] + v[-2:])
    return parse_count(v)


def _typed(obj: Any) -> tuple[int, str, dict[str, Any]] | None:
    """(kind, ticker, fields) of a hot frame in its exact common shape, else ``None``.

    Accepts exactly what the decoder parses to the same values (anything else stays ``other``),
    with a receive time in the guard's range (:data:`~evoarena.feeds.guard.MAX_T_MS`) and
    sequence numbers that fit the int64 columns (the general path judges any other).
    """
    if type(obj) is not dict or len(obj) != 2 or type(t := obj.get("t_ms")) is not int:
        return None
    if not 0 <= t <= MAX_T_MS:
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
            if not (INT64_MIN <= sid <= INT64_MAX and INT64_MIN <= seq <= INT64_MAX):
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


_INFO_INTS = (
    "open_ms",
    "close_ms",
    "settlement_value",
    "volume_24h",
    "open_interest",
    "yes_bid",
    "yes_ask",
    "ts_ms",
)
_INFO_TEXTS = ("ticker", "event_ticker", "status", "title", "result")


class _RestEvents:
    """Market listings (``GET /markets`` responses) decoded once, at compile time: replay reads
    their :class:`MarketInfo` events from typed columns instead of parsing the (large) bodies.

    Only a response the decoder turns into market events without a complaint is kept this
    way; its line in ``general.parquet`` becomes the same line without the body, which the
    reader checks exactly as the original (time, shape). Anything else keeps its line.
    """

    def __init__(self) -> None:
        self.cols: dict[str, list[Any]] = {k: [] for k in (*_INFO_TEXTS, *_INFO_INTS)}
        self.first: list[int] = []
        self.count: list[int] = []

    def add(self, obj: Any) -> bytes | None:
        """The line without its body if ``obj`` is such a response (events kept), else None."""
        if type(obj) is not dict or "ws" in obj or "mark" in obj:
            return None
        t, rest = obj.get("t_ms"), obj.get("rest")
        if type(t) is not int or type(rest) is not dict:
            return None
        path, status = rest.get("path"), rest.get("status")
        if type(path) is not str or type(status) is not int or not 200 <= status < 300:
            return None
        try:
            if rest_route(path)[0] != REST_MARKETS:
                return None
            result = parse_rest(path, rest.get("body"), t)
        except Exception:  # whatever it is, the general path reports it at replay
            return None
        events = result.events
        if result.errors or any(type(e) is not MarketInfo for e in events):
            return None
        rows = [_info_row(e) for e in events]  # type: ignore[arg-type]  # all MarketInfo
        if any(type(v) is int and not INT64_MIN <= v <= INT64_MAX for row in rows for v in row):
            return None
        self.first.append(len(self.cols["ticker"]))
        self.count.append(len(rows))
        for row in rows:
            for col, v in zip(self.cols.values(), row, strict=True):
                col.append(v)
        return orjson.dumps({"t_ms": t, "rest": {"path": path, "status": status}})

    def table(self, pa: Any) -> pa.Table:
        i64, text = pa.int64(), pa.string()
        return pa.table(
            {k: pa.array(v, text if k in _INFO_TEXTS else i64) for k, v in self.cols.items()}
        )


def _info_row(e: MarketInfo) -> tuple[Any, ...]:
    """``e``'s fields in the order of :attr:`_RestEvents.cols` (enums by value)."""
    return (
        e.ticker,
        e.event_ticker,
        None if e.status is None else e.status.value,
        e.title,
        None if e.result is None else e.result.value,
        *(getattr(e, k) for k in _INFO_INTS),
    )


def _info_events(cols: dict[str, list[Any]], first: int, count: int) -> list[MarketEvent]:
    """The :class:`MarketInfo` events of rows ``[first, first + count)``."""
    out: list[MarketEvent] = []
    for i in range(first, first + count):
        status, result = cols["status"][i], cols["result"][i]
        out.append(
            MarketInfo(
                ticker=cols["ticker"][i],
                event_ticker=cols["event_ticker"][i],
                status=None if status is None else MarketStatus(status),
                open_ms=cols["open_ms"][i],
                close_ms=cols["close_ms"][i],
                title=cols["title"][i],
                result=None if result is None else Side(result),
                settlement_value=cols["settlement_value"][i],
                volume_24h=cols["volume_24h"][i],
                open_interest=cols["open_interest"][i],
                yes_bid=cols["yes_bid"][i],
                yes_ask=cols["yes_ask"][i],
                ts_ms=cols["ts_ms"][i],
            )
        )
    return out


REST_MARKETS = "markets"


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
        """One line's rows, if any: values of another type than their column's are left out
        (``None``), lines with a time replay refuses are skipped."""
        if type(obj) is not dict or type(t := obj.get("t_ms")) is not int:
            return
        if not 0 <= t <= MAX_T_MS:
            return
        ws, rest, mark = obj.get("ws"), obj.get("rest"), obj.get("mark")
        if type(ws) is dict and type(msg := ws.get("msg")) is dict:
            if ws.get("type") == "orderbook_snapshot":
                try:
                    snap = parse_orderbook_snapshot(msg, t)
                except Exception:  # malformed, nested too deeply ...: the decoder reports it
                    return
                for side, levels in (("yes", snap.yes_bids), ("no", snap.no_bids)):
                    for price, size in levels:
                        for k, v in zip(
                            self.snapshots, (t, snap.ticker, side, price, size), strict=True
                        ):
                            self.snapshots[k].append(v)
            elif ws.get("type") == "market_lifecycle_v2":
                row = (t, *(_text(msg.get(k)) for k in ("market_ticker", "event_type", "result")))
                for k, v in zip(self.lifecycle, row, strict=True):
                    self.lifecycle[k].append(v)
        elif type(rest) is dict:
            row = (t, _text(rest.get("method")), _text(rest.get("path")), _int(rest.get("status")))
            for k, v in zip(self.rest, row, strict=True):
                self.rest[k].append(v)
        elif type(mark) is dict:
            mark_row = (t, _text(mark.get("kind")), _int(mark.get("now_ms")))
            for k, v in zip(self.marks, mark_row, strict=True):
                self.marks[k].append(v)


def _text(v: object) -> str | None:
    return v if type(v) is str else None


def _int(v: object) -> int | None:
    return v if type(v) is int and INT64_MIN <= v <= INT64_MAX else None


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
    schema = _stream_schema(pa)
    # Times, sequence numbers and line numbers mostly step by small amounts: delta-encoded they
    # take a third of the space and decode twice as fast as dictionary-encoded.
    writer = pq.ParquetWriter(
        tmp / "stream.parquet",
        schema.with_metadata(meta),
        compression="zstd",
        use_dictionary=[n for n in schema.names if n not in _DELTA_ENCODED],
        column_encoding=dict.fromkeys(_DELTA_ENCODED, "DELTA_BINARY_PACKED"),
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
    general_events: list[int] = []  # index into rest_events.first/count, -1: none
    rest_events = _RestEvents()
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
                general_events.append(-1)
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
                # (informative only: replay takes an ``other`` row's time from its line)
                cols.add(line_no, t if type(t) is int and 0 <= t <= MAX_T_MS else 0, OTHER)
                general_lines.append(line_no)
                compiled = rest_events.add(obj)
                general_raw.append(raw if compiled is None else compiled)
                general_events.append(-1 if compiled is None else len(rest_events.first) - 1)
                query.add(obj)
        flush()
    finally:
        fh.close()
        raw_file.close()
        writer.close()
    i64 = pa.int64()
    write = {"compression": "zstd"}
    general = pa.table(
        {
            "line_no": pa.array(general_lines, i64),
            "raw": pa.array(general_raw, pa.binary()),
            "rest_first": pa.array(
                [rest_events.first[k] if k >= 0 else -1 for k in general_events], i64
            ),
            "rest_count": pa.array(
                [rest_events.count[k] if k >= 0 else 0 for k in general_events], i64
            ),
        }
    )
    pq.write_table(general, tmp / "general.parquet", **write)
    pq.write_table(rest_events.table(pa), tmp / "rest_events.parquet", **write)
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


_DELTA_ENCODED = ("line_no", "t_ms", "seq")


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
        why = "written by another evoarena version"
    elif meta.get(b"source_size") != str(stat.st_size).encode():
        why = "the recording changed (size)"
    elif (
        meta.get(b"source_mtime_ns") == str(stat.st_mtime_ns).encode()
        or meta.get(b"source_sha256") == source_sha256(recording).encode()
    ):  # the hash is only recomputed when the modification time changed
        return target
    else:
        why = "the recording changed (SHA-256)"
    log.warning(
        "compiled_store_stale",
        store=str(target),
        reason=why,
        note="reading the JSON; run evoarena compile again to use a store",
    )
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
        self._max_jump = source.reader.max_time_jump_ms
        self._gl: list[int] = []
        self._gr: list[bytes] = []
        self._gf: list[int] = []
        self._gn: list[int] = []
        self._rest_cols: dict[str, list[Any]] | None = None
        self._rows_total = 0

    def bytes_read(self) -> int:
        """Progress, as the share of the source file's bytes the rows read so far stand for."""
        return int(self._size * self._done)

    def close(self) -> None:
        """Nothing to close (the store is read whole)."""

    def __enter__(self) -> StoreIngest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _batches(self) -> Iterator[_Batch]:
        """The stream's rows, a row group at a time, as numpy columns."""
        import pyarrow.parquet as pq

        cols = ["t_ms", "kind", "ticker", "sid", "seq", "side", "price", "size", "line_no"]
        stream = pq.ParquetFile(self.store / "stream.parquet")
        self._rows_total = int(stream.metadata.num_rows)
        for batch in stream.iter_batches(batch_size=BATCH_ROWS, columns=cols, use_threads=False):
            tickers = batch.column("ticker")
            names = tickers.dictionary.to_pylist()

            def col(name: str, batch: Any = batch) -> IntArray:
                return np.asarray(batch.column(name).fill_null(0).to_numpy(), dtype=np.int64)

            yield _Batch(
                names if names else [None],
                np.asarray(tickers.indices.fill_null(0).to_numpy(), dtype=np.int64),
                col("t_ms"),
                col("kind"),
                col("sid"),
                col("seq"),
                col("side"),
                col("price"),
                col("size"),
                col("line_no"),
            )

    def _general(self) -> None:
        import pyarrow.parquet as pq

        general = pq.read_table(self.store / "general.parquet", use_threads=False)
        self._gl = general.column("line_no").to_pylist()
        self._gr = general.column("raw").to_pylist()
        self._gf = general.column("rest_first").to_pylist()
        self._gn = general.column("rest_count").to_pylist()

    def _rest_step(self, item: RecordItem, first: int, count: int) -> ReplayStep:
        """:meth:`ReplaySource.step_of` for a compiled market listing: its events from the
        columns, counted by the decoder as it counts a decoded response."""
        if self._rest_cols is None:
            import pyarrow.parquet as pq

            table = pq.read_table(self.store / "rest_events.parquet", use_threads=False)
            self._rest_cols = table.to_pydict()
        c = self.decoder.counters
        c.rest_responses += 1
        c.rest_by_kind[REST_MARKETS] = c.rest_by_kind.get(REST_MARKETS, 0) + 1
        events = _info_events(self._rest_cols, first, count)
        return ReplayStep(item.t_ms, events, None, item.line_no)

    def run(self, sink: FusedSink) -> bool:
        """Feed the whole store; returns True if the sink asked to stop.

        Rows between two general rows are checked as a whole (receive-time guard, delta
        sequence) and applied in bulk up to the first row that needs the per-row path; a row
        that reaches the sink's gate is handled exactly where the per-row loop would.
        """
        self._general()
        reader = self.source.reader
        cur = _Cursor(sink, reader._last_t_ms)
        done_rows = 0
        for b in self._batches():
            self._batch(cur, b, sink)
            if cur.stopped or cur.read_error:
                break
            done_rows += len(b.t)
            self._done = done_rows / max(self._rows_total, 1)
            cur.sync_out(sink)
            sink.chunk_done(cur.last if cur.last is not None else 0)
        cur.sync_out(sink)
        self._done = 1.0
        reader._last_t_ms = cur.high_water
        reader.lines_read = max(reader.lines_read, cur.line_no)
        n_delta, without, impossible, n_ticker, n_trade = cur.tally.tolist()
        flush_fast_counters(
            self.decoder,
            self.book,
            cur.n_delta + n_delta,
            cur.n_ticker + n_ticker,
            cur.n_trade + n_trade,
            cur.without_book + without,
            cur.impossible + impossible,
            cur.unapplied,
        )
        return cur.stopped

    def _batch(self, cur: _Cursor, b: _Batch, sink: FusedSink) -> None:
        """One batch: typed rows in bulk, general and problem rows one by one."""
        n = len(b.t)
        d = b.kind == DELTA
        sids, inverse = np.unique(b.sid[d], return_inverse=True)
        if len(sids) > MAX_BATCH_SIDS:  # hostile or unusual: the per-row loop, linear
            self._rows(cur, b, 0, n, sink)
            return
        sid_list: list[int] = sids.tolist()
        sidx = np.zeros(n, dtype=np.int64)
        sidx[d] = inverse
        n_names = len(b.names)
        seen = np.zeros((len(sids), n_names), dtype=np.bool_)
        pairs = np.empty(max(1, min(len(sids) * n_names, int(np.count_nonzero(d)))), np.int64)
        st = np.empty(bulk.STATE_LEN, dtype=np.int64)
        scan = bulk.scan_rows_loop()
        # Every time lies in [0, MAX_T_MS]: a longer jump allows no more, and in the int64 scan
        # it must neither overflow the argument nor the sum with the high-water mark.
        max_jump = min(self._max_jump, MAX_T_MS)
        positions = self.decoder._positions
        sid_tickers = self.decoder._sid_tickers
        names = b.names
        i = 0
        at_gate = -1  # a row at the gate, counted and the schedule run: taken next
        # The decoder's set of markets per subscription that ``seen`` stands for: a general row
        # can drop one (a reconnect mark, an unsubscription), and a pair seen before must then
        # be recorded again.
        sets: list[set[str] | None] = [sid_tickers.get(u) for u in sid_list]
        while i < n and not (cur.stopped or cur.read_error):
            for j, u in enumerate(sid_list):
                now = sid_tickers.get(u)
                if now is not sets[j]:
                    seen[j] = False
                    sets[j] = now
            before = np.array([_int64_or_none(positions.get(u)) for u in sid_list], np.int64)
            pos = before.copy()
            st[:] = (
                cur.items, cur.events, cur.applied, _none(cur.first), _none(cur.last),
                cur.last_line, _none(cur.applied_t), _none(cur.high_water), 0, 0,
            )  # fmt: skip
            z, gate, counted = n, cur.gate, 0
            if i == at_gate:
                counted = 1
                t = int(b.t[i])
                if gate <= t:  # the schedule left its gate at or before this row: it alone
                    z, gate = i + 1, t + 1
            k = scan(
                b.t, b.kind, sidx, b.seq, b.tick, b.line, i, z, gate,
                max_jump, MAX_T_MS, pos, seen, pairs, st, counted,
            )  # fmt: skip
            if k > i:
                items, events, applied, first, last, last_line, applied_t, hw, n_pairs, _ = (
                    st.tolist()
                )
                cur.items, cur.events, cur.applied = items, events, applied
                cur.last_line = last_line
                cur.first, cur.last = _opt(first), _opt(last)
                cur.applied_t, cur.high_water = _opt(applied_t), _opt(hw)
                for j in np.flatnonzero(pos != before).tolist():
                    positions[sid_list[j]] = int(pos[j])
                for q in pairs[:n_pairs].tolist():
                    j, x = divmod(q, n_names)
                    known = sid_tickers.get(sid_list[j])
                    if known is None:
                        known = sid_tickers[sid_list[j]] = sets[j] = set()
                    known.add(names[x])
                self._apply(cur, b, i, k)
            if k == n:
                return
            if k == z:  # the row after a lone gate row
                i = k
            elif st[bulk.WHY] == bulk.GATE:
                if self._gate(cur, b, k, sink):
                    return
                i = at_gate = k
            else:
                self._rows(cur, b, k, k + 1, sink)
                i = k + 1

    def _gate(self, cur: _Cursor, b: _Batch, k: int, sink: FusedSink) -> bool:
        """Row ``k`` (typed, in sequence, within the time guard) reached the gate: count it and
        run the schedule, as the per-row loop does; True when the sink asked to stop (a delta is
        then decoded, not applied)."""
        t = int(b.t[k])
        if cur.high_water is None or t > cur.high_water:
            cur.high_water = t
        cur.items += 1
        cur.last = t
        if cur.first is None:
            cur.first = t
        cur.sync_out(sink)
        stop = sink.at_gate(t)
        cur.gate = sink.gate
        if not stop:
            return False
        kind = int(b.kind[k])
        cur.unapplied = kind
        if kind == DELTA:
            sid = int(b.sid[k])
            self.decoder._positions[sid] = int(b.seq[k])
            name = b.names[int(b.tick[k])]
            self.decoder._sid_tickers.setdefault(sid, set()).add(name)  # type: ignore[arg-type]
        cur.stopped = True
        return True

    def _apply(self, cur: _Cursor, b: _Batch, a: int, z: int) -> None:
        """Apply typed rows ``[a, z)`` (taken by ``scan_rows``) to the book, in
        :func:`~evoarena.engine.ladders.apply_rows` (compiled where numba is available)."""
        book = self.book
        names = b.names

        def add_market(x: int) -> int:
            return book.market(names[x]).row  # type: ignore[arg-type]

        rows = (b.kind, b.rows_in(book), b.tick, b.side, b.price, b.size)
        book.columns.apply(bulk.apply_rows_loop(), rows, a, z, cur.tally, add_market)

    def _rows(  # noqa: C901 - the per-row loop kept flat, as the JSON path's
        self, cur: _Cursor, b: _Batch, a: int, z: int, sink: FusedSink
    ) -> None:
        """Rows ``[a, z)`` one by one, exactly as every row used to be read."""
        source = self.source
        reader = source.reader
        step_of = source.step_of
        book = self.book
        markets = book.markets
        dirty = book.dirty
        dec = self.decoder
        positions = dec._positions
        sid_tickers = dec._sid_tickers
        decode_ws = dec.decode_ws
        sides = _SIDES_BY_CODE
        max_jump = self._max_jump
        gl, gr, gf = self._gl, self._gr, self._gf
        names = b.names
        rows = zip(
            b.t[a:z].tolist(),
            b.kind[a:z].tolist(),
            [names[x] for x in b.tick[a:z].tolist()],
            b.sid[a:z].tolist(),
            b.seq[a:z].tolist(),
            b.side[a:z].tolist(),
            b.price[a:z].tolist(),
            b.size[a:z].tolist(),
            b.line[a:z].tolist(),
            strict=True,
        )
        for t, kind, ticker, sid, seq, side, price, size, line in rows:
            hw = cur.high_water
            if kind != OTHER and kind != ERROR:
                limit = MAX_T_MS if hw is None else min(MAX_T_MS, hw + max_jump)
                if t > limit or t < 0:
                    cur.sync_out(sink)
                    reader._bad(line, check_time(t, hw, max_jump) or "bad 't_ms'")
                    continue
                if hw is None or t > hw:
                    cur.high_water = t
            if kind == DELTA and positions.get(sid) != seq - 1:
                # Out of order: the decoder decides (stale, gap), from the same values.
                frame = _delta_frame(sid, seq, ticker, side, price, size)
                cur.sync_out(sink)
                stop = sink.general(ReplayStep(t, decode_ws(frame, t), None, line))
                cur.sync_in(sink)
                if stop:
                    cur.stopped = True
                    return
                continue
            if kind in (OTHER, ERROR):
                g = cur.g
                line_no, raw = gl[g], gr[g]
                cur.g += 1
                cur.line_no = line_no
                if kind == ERROR:  # always the last row: the recording ends here
                    cur.sync_out(sink)
                    reader._bad(line_no, raw.decode())
                    cur.read_error = True
                    return
                if raw == TOO_LONG:
                    reader._bad(line_no, f"line longer than {MAX_LINE_BYTES:,} bytes")
                    continue
                reader._last_t_ms = cur.high_water
                item = reader._parse(line_no, raw)
                cur.high_water = reader._last_t_ms
                if item is None:
                    continue
                step = step_of(item) if gf[g] < 0 else self._rest_step(item, gf[g], self._gn[g])
                cur.sync_out(sink)
                stop = sink.general(step)
                cur.sync_in(sink)
                if stop:
                    cur.stopped = True
                    return
                continue
            cur.items += 1
            cur.last = t
            if cur.first is None:
                cur.first = t
            if t >= cur.gate:
                cur.sync_out(sink)
                stop = sink.at_gate(t)
                cur.gate = sink.gate
                if stop:
                    cur.unapplied = kind
                    if kind == DELTA:
                        positions[sid] = seq
                        sid_tickers.setdefault(sid, set()).add(ticker)
                    cur.stopped = True
                    return
            cur.events += 1
            cur.applied += 1
            cur.last_line = line
            cur.applied_t = t
            if kind == DELTA:
                positions[sid] = seq
                sid_tickers.setdefault(sid, set()).add(ticker)
                cur.n_delta += 1
                m = markets.get(ticker)
                if m is None or not m.has_book or m.stale:
                    cur.without_book += 1
                elif not m._apply_delta(sides[side], price, size):
                    cur.impossible += 1
                    m.stale = True
                    dirty.add(m)
            else:
                m = markets.get(ticker)
                if m is None:
                    m = book.market(ticker)
                m.last_price = price
                if kind == TICKER:
                    cur.n_ticker += 1
                    m.open_interest = size
                    dirty.add(m)
                else:
                    cur.n_trade += 1


MAX_BATCH_SIDS = 64
"""A row group with deltas of more subscriptions than this takes the per-row loop whole."""
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)


def _none(v: int | None) -> int:
    return bulk.NONE if v is None else v


def _opt(v: int) -> int | None:
    return None if v == bulk.NONE else v


def _int64_or_none(v: int | None) -> int:
    """A decoder position for ``scan_rows``: outside int64 (or none) is unknown, which sends the
    subscription's next delta to the per-row loop."""
    return v if v is not None and INT64_MIN < v <= INT64_MAX else bulk.NONE


class _Batch:
    """One row group of ``stream.parquet``: numpy columns (``tick`` indexes ``names``) and each
    name's market row in the book (:meth:`rows_in`)."""

    __slots__ = (
        "_known",
        "kind",
        "line",
        "mrow",
        "names",
        "price",
        "seq",
        "sid",
        "side",
        "size",
        "t",
        "tick",
    )

    def __init__(
        self,
        names: list[str | None],
        tick: IntArray,
        t: IntArray,
        kind: IntArray,
        sid: IntArray,
        seq: IntArray,
        side: IntArray,
        price: IntArray,
        size: IntArray,
        line: IntArray,
    ) -> None:
        self.names = names
        self.tick, self.t, self.kind, self.sid, self.seq = tick, t, kind, sid, seq
        self.side, self.price, self.size, self.line = side, price, size, line
        self.mrow: IntArray = np.full(len(names), -1, dtype=np.int64)
        self._known = -1

    def rows_in(self, book: MarketBook) -> IntArray:
        """Each name's row in ``book`` (-1: not there), brought up to date when markets were
        added since the last call (markets are never removed)."""
        n = book.columns.n
        if n != self._known:
            self._known = n
            markets = book.markets
            names = self.names
            mrow = self.mrow
            for x in np.flatnonzero(mrow < 0).tolist():
                name = names[x]
                m = None if name is None else markets.get(name)
                if m is not None:
                    mrow[x] = m.row
        return self.mrow


class _Cursor:
    """Where a store replay stands: the sink's counters (mirrored) and the fast counters."""

    __slots__ = (
        "applied",
        "applied_t",
        "events",
        "first",
        "g",
        "gate",
        "high_water",
        "impossible",
        "items",
        "last",
        "last_line",
        "line_no",
        "n_delta",
        "n_ticker",
        "n_trade",
        "read_error",
        "stopped",
        "tally",
        "unapplied",
        "without_book",
    )

    def __init__(self, sink: FusedSink, high_water: int | None) -> None:
        self.items = self.events = self.applied = self.last_line = 0
        self.first: int | None = None
        self.last: int | None = None
        self.applied_t: int | None = None
        self.gate = 0
        self.sync_in(sink)
        self.high_water = high_water
        self.n_delta = self.n_ticker = self.n_trade = 0
        self.without_book = self.impossible = self.unapplied = 0
        self.tally: IntArray = np.zeros(5, dtype=np.int64)
        """The bulk path's counts (see :func:`~evoarena.engine.ladders.apply_rows`)."""
        self.stopped = self.read_error = False
        self.g = 0  # next general row
        self.line_no = 0

    def sync_in(self, sink: FusedSink) -> None:
        self.items, self.events = sink.items, sink.events
        self.first, self.last = sink.first_ms, sink.last_ms
        self.applied, self.last_line, self.applied_t = sink.applied, sink.last_line, sink.applied_t
        self.gate = sink.gate

    def sync_out(self, sink: FusedSink) -> None:
        sink.items, sink.events = self.items, self.events
        sink.first_ms, sink.last_ms = self.first, self.last
        sink.applied, sink.last_line, sink.applied_t = self.applied, self.last_line, self.applied_t


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
