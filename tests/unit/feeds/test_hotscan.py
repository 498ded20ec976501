"""The numba scanner of the fused replay accepts a line only with the values the orjson path
would take it with, and the fused loop gives the same book with it as without it.

The oracle parses each line with ``orjson`` and applies the fused loop's classification (the
general parser's number rules); the scanner may refuse more (refusing is always safe: the line
then takes the orjson path), never accept differently. Lines: the common shapes, the same
frames in other key orders and with extra or legacy fields, hand-made near misses (escapes,
whitespace, repeated keys, floats, big or negative numbers, non-ASCII, a ``seq`` on a ticker,
...) and random byte mutations.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from evoarena.feeds import hotscan
from evoarena.feeds.fused import _COUNT_SHAPE
from evoarena.feeds.kalshi.numbers import parse_count, parse_price
from evoarena.feeds.recording import RecordingWriter
from evoarena.testing import read_through

pytestmark = [
    pytest.mark.timeout(60),  # the first use compiles the scanner (cached afterwards)
    pytest.mark.skipif(not hotscan.AVAILABLE, reason="numba is a dependency"),
]

T0 = 1_772_409_601_506
Row = tuple[Any, ...]

DELTA = (
    b'{"t_ms":1772409601506,"ws":{"type":"orderbook_delta","sid":4,"seq":76,"msg":{'
    b'"market_ticker":"KXWTID-26MAR02-T70.50","market_id":"fe77daf3-8092-4d95-a46b",'
    b'"price_dollars":"0.2600","delta_fp":"-8.00","side":"no","ts_ms":1772409601495}}}'
)
TICKER = (
    b'{"t_ms":1772409601507,"ws":{"type":"ticker","sending_ts_ms":1772409601490,"sid":8,'
    b'"msg":{"market_id":"fe77daf3","market_ticker":"KXWTID-26MAR02-T70.50",'
    b'"price_dollars":"0.7300","yes_bid_dollars":"0.7100","yes_ask_dollars":"0.7400",'
    b'"volume_fp":"22554.00","open_interest_fp":"11731.5","dollar_volume":16464,'
    b'"dollar_open_interest":8563,"yes_bid_size_fp":"8.00","ts":1772409601}}}'
)
TRADE = (
    b'{"t_ms":1772409602543,"ws":{"type":"trade","sid":11,"msg":{"trade_id":"216def44",'
    b'"market_ticker":"KXJOBLESSCLAIMS-26MAR02-T230000","yes_price_dollars":"0.4700",'
    b'"no_price_dollars":"0.5300","count_fp":"15.00","taker_outcome_side":"yes",'
    b'"taker_book_side":"bid","taker_side":"yes","is_block_trade":false,"x":null,'
    b'"ts":1772409602,"ts_ms":1772409602538}}}'
)
BASE = [DELTA, TICKER, TRADE]


def _price(v: object) -> int | None:
    try:
        return parse_price(v)  # type: ignore[arg-type]  # any JSON value: refused if not a price
    except (ValueError, TypeError):
        return None


def _count(v: object) -> int | None:
    if type(v) is not str or _COUNT_SHAPE(v) is None:
        return None
    return parse_count(v)


def _oracle(line: bytes) -> Row | None:
    """(kind, t, ticker, sid, seq or open interest, price, delta) as the fused loop's orjson
    path takes the line (None: not a hot frame in the common shape)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict or sorted(obj) != ["t_ms", "ws"]:
        return None
    t, ws = obj["t_ms"], obj["ws"]
    if type(t) is not int or type(ws) is not dict or t < 0:  # the caller checks t <= its limit
        return None
    msg = ws.get("msg")
    if type(msg) is not dict:
        return None
    kind, ticker = ws.get("type"), msg.get("market_ticker")
    if type(ticker) is not str or not ticker:
        return None
    if kind == "orderbook_delta":
        sid, seq, side = ws.get("sid"), ws.get("seq"), msg.get("side")
        price, delta = _price(msg.get("price_dollars")), _count(msg.get("delta_fp"))
        if type(sid) is not int or type(seq) is not int or price is None or delta is None:
            return None
        if side not in ("yes", "no"):
            return None
        return (1 if side == "yes" else 2, t, ticker, sid, seq, price, delta)
    if "seq" in ws:
        return None
    if kind == "ticker":
        price = _price(msg.get("price_dollars"))
        quotes = _price(msg.get("yes_bid_dollars")), _price(msg.get("yes_ask_dollars"))
        oi, volume = _count(msg.get("open_interest_fp")), _count(msg.get("volume_fp"))
        if price is None or None in quotes or oi is None or volume is None:
            return None
        return (3, t, ticker, None, oi, price, None)
    if kind == "trade":
        price, count = _price(msg.get("yes_price_dollars")), _count(msg.get("count_fp"))
        if price is None or count is None:
            return None
        return (4, t, ticker, None, None, price, None)
    return None


def _scan(scanner: hotscan.HotScanner, lines: list[bytes]) -> list[Row | None]:
    """The scanner's verdicts on ``lines`` in one buffer, as the oracle's rows."""
    rows = scanner.scan(b"".join(x + b"\n" for x in lines))
    out: list[Row | None] = []
    for kind, t, tid, sid, seq, price, delta in zip(*rows, strict=True):
        if kind == 0:
            out.append(None)
        elif kind <= hotscan.DELTA_NO:
            out.append((kind, t, scanner.tickers[tid], sid, seq, price, delta))
        elif kind == hotscan.TICKER:
            out.append((kind, t, scanner.tickers[tid], None, seq, price, None))
        else:
            out.append((kind, t, scanner.tickers[tid], None, None, price, None))
    return out


def _reordered(line: bytes, rng: random.Random) -> bytes:
    """The same frame with its ws and msg keys in another order (and maybe an extra key)."""
    obj = orjson.loads(line)
    ws = obj["ws"]
    msg = dict(rng.sample(list(ws["msg"].items()), len(ws["msg"])))
    if rng.random() < 0.5:
        msg[rng.choice(["price", "delta", "volume", "extra"])] = rng.choice([1, "a", None, True])
    ws = dict(rng.sample([(k, v) for k, v in ws.items() if k != "msg"], len(ws) - 1))
    ws["msg"] = msg
    ws = dict(rng.sample(list(ws.items()), len(ws)))
    return orjson.dumps({"t_ms": obj["t_ms"], "ws": ws})


NEAR_MISSES = [
    DELTA.replace(b'"t_ms"', b'"t\\u005fms"'),  # an escaped key
    DELTA.replace(b'"side":"no"', b'"side":"n\\u006f"'),  # an escaped value
    DELTA.replace(b"KXWTID", b'KX\\"TID'),  # an escaped quote in the ticker
    DELTA.replace(b"KXWTID", "KXWTÏD".encode()),  # non-ASCII
    DELTA.replace(b"KXWTID", b"KXW\x7fID"),  # DEL
    DELTA.replace(b"KXWTID", b"KXW\tID"),  # a control character
    DELTA.replace(b'"sid":4', b'"sid": 4'),  # whitespace
    DELTA.replace(b'"sid":4', b'"sid":4,"sid":5'),  # a repeated key that matters
    DELTA.replace(b'"side":"no"', b'"side":"no","side":"yes"'),
    DELTA.replace(b'"ts_ms":1772409601495', b'"ts_ms":1,"ts_ms":2'),  # one that does not
    DELTA.replace(b'"sid":4', b'"sid":4.0'),  # a float
    DELTA.replace(b'"sid":4', b'"sid":-4'),  # negative
    DELTA.replace(b'"sid":4', b'"sid":04'),  # a leading zero: not JSON
    DELTA.replace(b'"sid":4', b'"sid":"4"'),  # a string
    DELTA.replace(b'"sid":4', b'"sid":true'),
    DELTA.replace(b'"seq":76', b'"seq":99999999999999999999'),  # 20 digits
    DELTA.replace(b'"seq":76', b'"seq":1e2'),
    DELTA.replace(b'"seq":76,', b""),  # no seq
    DELTA.replace(b":1772409601506", b":-1772409601506"),  # negative time
    DELTA.replace(b":1772409601506", b":1772409601506.0"),
    DELTA.replace(b":1772409601506", b":999999999999999999"),  # beyond MAX_T_MS
    DELTA.replace(b'"0.2600"', b'"1.0000001"'),  # 7 decimals
    DELTA.replace(b'"0.2600"', b'"1.000001"'),  # above $1
    DELTA.replace(b'"0.2600"', b'"1.000000"'),  # exactly $1
    DELTA.replace(b'"0.2600"', b'"0"'),
    DELTA.replace(b'"0.2600"', b'"00.26"'),
    DELTA.replace(b'"0.2600"', b'".26"'),
    DELTA.replace(b'"0.2600"', b'"0."'),
    DELTA.replace(b'"0.2600"', b'"-0.26"'),
    DELTA.replace(b'"0.2600"', b'"-0"'),
    DELTA.replace(b'"0.2600"', b'"0.26 "'),
    DELTA.replace(b'"0.2600"', b"26"),  # legacy cents as the dollar value
    DELTA.replace(b'"-8.00"', b'"-8.001"'),
    DELTA.replace(b'"-8.00"', b'"-8.5"'),
    DELTA.replace(b'"-8.00"', b'"-0.00"'),
    DELTA.replace(b'"-8.00"', b'"12345678901"'),
    DELTA.replace(b'"-8.00"', b'"123456789012"'),
    DELTA.replace(b'"-8.00"', b'"--8"'),
    DELTA.replace(b'"-8.00"', b'"8."'),
    DELTA.replace(b'"-8.00"', b'"+8"'),
    DELTA.replace(b'"-8.00"', b"-8"),
    DELTA.replace(b'"side":"no"', b'"side":"NO"'),
    DELTA.replace(b'"side":"no"', b'"side":["no"]'),
    DELTA.replace(b'"market_ticker":"KXWTID-26MAR02-T70.50"', b'"market_ticker":""'),
    DELTA.replace(b'"market_id":"fe77daf3-8092-4d95-a46b"', b'"market_id":{"a":1}'),
    DELTA.replace(b'"market_id":"fe77daf3-8092-4d95-a46b"', b'"market_id":[]'),
    DELTA.replace(b'"type":"orderbook_delta"', b'"type":"orderbook_deltas"'),
    DELTA.replace(b'"msg":{', b'"msg":{"msg":1,'),  # a ws key inside msg
    DELTA.replace(b'"msg":{', b'"type":"ticker","msg":{'),  # two types
    DELTA.replace(b'"msg":{', b'"market_ticker":"X","msg":{'),  # a msg key in ws
    DELTA[:-1],  # truncated
    DELTA + b"}",
    DELTA + b" ",
    DELTA + b"\r",
    DELTA[:-3] + b',"extra":1}}}',  # an extra top-level key...
    DELTA[:-1] + b',"extra":1}',
    DELTA.replace(b'"ws":{', b'"ws":{"msg":{},'),  # an empty msg, then another
    TICKER.replace(b'"sid":8', b'"sid":8,"seq":3'),  # a ticker with a seq
    TICKER.replace(b'"volume_fp":"22554.00"', b'"volume_fp":"22554.001"'),
    TICKER.replace(b'"volume_fp":"22554.00"', b'"volume_fp":22554'),
    TICKER.replace(b'"volume_fp":"22554.00",', b""),
    TICKER.replace(b'"yes_bid_dollars":"0.7100"', b'"yes_bid_dollars":""'),
    TICKER.replace(b'"yes_ask_dollars":"0.7400"', b'"yes_ask_dollars":"1.5"'),
    TICKER.replace(b'"open_interest_fp":"11731.5"', b'"open_interest_fp":"99999999999.99"'),
    TICKER.replace(b'"open_interest_fp":"11731.5"', b'"open_interest_fp":"-5"'),
    TRADE.replace(b'"sid":11', b'"sid":11,"seq":null'),
    TRADE.replace(b'"count_fp":"15.00"', b'"count_fp":"15.000"'),
    TRADE.replace(b'"yes_price_dollars":"0.4700"', b'"yes_price_dollars":null'),
    TRADE.replace(b'"is_block_trade":false', b'"is_block_trade":fals'),
    TRADE.replace(b'"x":null', b'"x":nul'),
    TRADE.replace(b'"x":null', b'"x":truex'),
    b"",
    b"{}",
    b'{"t_ms":1,"ws":{}}',
    b'{"t_ms":1,"ws":1}',
    b'{"t_ms":1}',
]


def _mutations(rng: random.Random, n: int) -> list[bytes]:
    """Random byte edits of the hot lines (new lines excluded: one line stays one line)."""
    out = []
    alphabet = b'"\\{}[],:0123456789.-eE+ \t\x00\x7f\xc3tfnulyesno_abc'
    for _ in range(n):
        line = bytearray(rng.choice(BASE))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(line))
            op = rng.random()
            if op < 0.4:
                line[i] = rng.choice(alphabet)
            elif op < 0.7:
                line.insert(i, rng.choice(alphabet))
            else:
                del line[i : i + rng.randint(1, 4)]
        out.append(bytes(line))
    return out


def test_the_common_shapes_are_taken_with_their_values() -> None:
    scanner = hotscan.HotScanner()
    first = _scan(scanner, BASE)
    again = _scan(scanner, BASE)  # through the learned templates
    assert first == again == [_oracle(x) for x in BASE]
    assert first[0] == (2, T0, "KXWTID-26MAR02-T70.50", 4, 76, 260_000, -800)
    assert first[1] == (3, T0 + 1, "KXWTID-26MAR02-T70.50", None, 1_173_150, 730_000, None)
    assert hotscan.DELTA_YES == 1  # the fused loop spells the deltas' kinds as 1 and 2
    assert hotscan.DELTA_NO == 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_scanner_never_accepts_what_the_orjson_path_would_not_take_alike(seed: int) -> None:
    rng = random.Random(seed)
    lines = [*BASE, *NEAR_MISSES]
    lines += [_reordered(rng.choice(BASE), rng) for _ in range(60)]  # more shapes than templates
    lines += _mutations(rng, 3000)
    rng.shuffle(lines)
    scanner = hotscan.HotScanner()
    taken = 0
    for i in range(0, len(lines), 97):  # several buffers: templates learned in one serve the next
        batch = lines[i : i + 97]
        for line, row in zip(batch, _scan(scanner, batch), strict=True):
            if row is not None:
                assert row == _oracle(line), line
                taken += 1
    assert taken > 100


def test_more_lines_than_columns_widen_the_rows() -> None:
    scanner = hotscan.HotScanner()
    scanner._out = np.zeros((8, 2), dtype=np.int64)
    lines = [b"", DELTA, b"x", TICKER, TRADE, b"", DELTA]
    assert _scan(scanner, lines) == [_oracle(x) for x in lines]
    assert scanner._out.shape[1] >= len(lines)
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    assert [int(x) for x in scanner.starts] == starts


def test_a_full_ticker_table_refuses_new_tickers_only() -> None:
    scanner = hotscan.HotScanner()
    scanner._offs = np.zeros(3, dtype=np.int64)  # room for one ticker
    other = DELTA.replace(b"KXWTID", b"KXOTHER")
    rows = _scan(scanner, [DELTA, other, DELTA])
    assert rows[0] == rows[2] == _oracle(DELTA)
    assert rows[1] is None
    assert scanner.tickers == ["KXWTID-26MAR02-T70.50"]


def _day(path: Path, rng: random.Random) -> None:
    """Two markets' snapshots and deltas, tickers and trades, with near misses spliced in."""
    lines: list[bytes] = []
    with RecordingWriter(path, "test", T0) as w:
        for ticker, sid in (("A-1", 2), ("B-1", 3)):
            yes = [["0.3000", "10.00"], ["0.3500", "4.00"]]
            w.write_ws(
                T0,
                {
                    "type": "orderbook_snapshot",
                    "sid": sid,
                    "seq": 1,
                    "msg": {"market_ticker": ticker, "yes_dollars_fp": yes, "no_dollars_fp": []},
                },
            )
    seqs = {2: 1, 3: 1}
    for i in range(2000):
        sid = rng.choice((2, 3))
        ticker = "A-1" if sid == 2 else "B-1"
        t = T0 + 10 + i
        r = rng.random()
        if r < 0.7:
            seqs[sid] += 1
            line = (
                DELTA.replace(b'"sid":4', f'"sid":{sid}'.encode())
                .replace(b'"seq":76', f'"seq":{seqs[sid]}'.encode())
                .replace(b"KXWTID-26MAR02-T70.50", ticker.encode())
                .replace(b'"-8.00"', f'"{rng.choice(["-", ""])}{rng.randint(0, 9)}.00"'.encode())
                .replace(b'"0.2600"', f'"0.{rng.randint(28, 37)}00"'.encode())
                .replace(b'"no"', rng.choice([b'"no"', b'"yes"']))
            )
        elif r < 0.85:
            line = TICKER.replace(b"KXWTID-26MAR02-T70.50", ticker.encode())
        else:
            line = TRADE.replace(b"KXJOBLESSCLAIMS-26MAR02-T230000", ticker.encode())
        line = line.replace(b"1772409601506", str(t).encode(), 1)
        line = line.replace(b"1772409601507", str(t).encode(), 1)
        line = line.replace(b"1772409602543", str(t).encode(), 1)
        lines.append(line)
        if rng.random() < 0.05:
            lines.append(rng.choice(NEAR_MISSES).replace(b"1772409601506", str(t).encode()))
    with path.open("ab") as f:
        f.write(b"".join(x + b"\n" for x in lines))


def _read(path: Path, how: str) -> dict[str, Any]:
    """:func:`read_through` with a tick every 50 ms (``how``: general, fused or orjson)."""
    return read_through(path, how, start_ms=T0, tick_ms=50, skip_bad=True)


def test_a_scanner_that_cannot_start_leaves_every_line_to_orjson(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "day.jsonl"
    _day(path, random.Random(3))
    expected = _read(path, "fused")

    def broken(self: hotscan.HotScanner) -> None:
        raise RuntimeError("cannot cache function: no locator available")

    monkeypatch.setattr(hotscan.HotScanner, "__init__", broken)
    assert _read(path, "fused") == expected


@pytest.mark.parametrize("seed", [1, 2])
def test_fused_with_and_without_the_scanner_match_the_general_path(
    tmp_path: Path, seed: int
) -> None:
    path = tmp_path / "day.jsonl"
    _day(path, random.Random(seed))
    general = _read(path, "general")
    assert _read(path, "fused") == general
    assert _read(path, "orjson") == general
    assert general["counters"].deltas > 1000
