"""Recording format: writer → reader round trips, raw frames, bad lines, skip_bad, streaming."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import IO, Any

import pytest

from evoarena.errors import RecordingError, UserError
from evoarena.feeds import recording
from evoarena.feeds.recording import (
    MAX_REPORTED_BAD_LINES,
    RecordingReader,
    RecordingWriter,
    RecordItem,
)

T0 = 1_750_000_000_000
SNAPSHOT = {
    "type": "orderbook_snapshot",
    "sid": 2,
    "seq": 1,
    "msg": {"market_ticker": "A-1", "yes_dollars_fp": [["0.5600", "10.67"]]},
}
MARKETS_BODY = {"markets": [{"ticker": "A-1", "status": "active", "é": "ünïcødé"}], "cursor": ""}


def _write_sample(path: Path) -> None:
    with RecordingWriter(path, "kalshi", T0, subscription={"channels": ["ticker"]}, seed=7) as w:
        w.write_rest(T0 + 1, "GET", "/trade-api/v2/markets", {"limit": 1000}, 200, MARKETS_BODY)
        w.write_ws(T0 + 2, SNAPSHOT)
        w.write_mark(T0 + 3, "tick", now_ms=T0 + 3, n=1)
        w.write_ws(T0 + 3, {"type": "ticker", "sid": 11, "msg": {"price_dollars": "0.5"}})


@pytest.mark.parametrize("name", ["day.jsonl", "day.jsonl.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    """Everything written comes back: header with extras, then each item in order, exactly."""
    path = tmp_path / name
    _write_sample(path)
    with RecordingReader(path) as r:
        items = list(r)
        header = r.header
    assert header == {
        "evoarena_recording": 1,
        "created_ms": T0,
        "source": "kalshi",
        "subscription": {"channels": ["ticker"]},
        "seed": 7,
    }
    assert items == [
        RecordItem(
            2,
            T0 + 1,
            "rest",
            {
                "method": "GET",
                "path": "/trade-api/v2/markets",
                "params": {"limit": 1000},
                "status": 200,
                "body": MARKETS_BODY,
            },
        ),
        RecordItem(3, T0 + 2, "ws", SNAPSHOT),
        RecordItem(4, T0 + 3, "mark", {"kind": "tick", "now_ms": T0 + 3, "n": 1}),
        RecordItem(5, T0 + 3, "ws", {"type": "ticker", "sid": 11, "msg": {"price_dollars": "0.5"}}),
    ]


def test_gz_file_is_really_gzip_and_plain_is_json_lines(tmp_path: Path) -> None:
    """``.gz`` names get gzip; others are plain JSON Lines, one object per line."""
    plain, packed = tmp_path / "a.jsonl", tmp_path / "a.jsonl.gz"
    _write_sample(plain)
    _write_sample(packed)
    lines = plain.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5
    assert [json.loads(x) for x in lines][2] == {"t_ms": T0 + 2, "ws": SNAPSHOT}
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()


def test_writer_counts_and_buffers_until_flush(tmp_path: Path) -> None:
    """Items and bytes are counted; nothing reaches the file before ``flush``."""
    path = tmp_path / "b.jsonl"
    w = RecordingWriter(path, "synth", T0)
    w.write_ws(T0, SNAPSHOT)
    assert path.read_bytes() == b""
    w.flush()
    assert path.read_bytes().count(b"\n") == 2
    w.write_mark(T0, "tick")
    w.close()
    w.close()  # idempotent
    assert w.items == 2
    assert w.bytes_written == path.stat().st_size


def test_write_ws_raw_keeps_the_frame_bytes(tmp_path: Path) -> None:
    """A raw text frame lands byte for byte (key order, spacing, number spelling kept)."""
    path = tmp_path / "raw.jsonl"
    raw = b'{"type":"ticker","sid":11,"msg":{"volume_fp":"1.00","x":1.50,  "b":[1 ,2]}}'
    with RecordingWriter(path, "kalshi", T0) as w:
        w.write_ws_raw(T0 + 5, raw)
        w.write_ws_raw(T0 + 6, raw.decode() + "\r\n")
    lines = path.read_bytes().splitlines()
    assert raw in lines[1]
    assert raw in lines[2]
    with RecordingReader(path) as r:
        items = list(r)
    assert [i.payload for i in items] == [json.loads(raw)] * 2
    assert [i.t_ms for i in items] == [T0 + 5, T0 + 6]


def test_write_ws_raw_multiline_frame_stays_one_line(tmp_path: Path) -> None:
    """A pretty-printed frame (line breaks only between tokens) is still one recording line."""
    path = tmp_path / "pretty.jsonl"
    frame = {"type": "trade", "msg": {"note": "two\nlines", "count_fp": "1.00"}}
    pretty = json.dumps(frame, indent=2)
    with RecordingWriter(path, "kalshi", T0) as w:
        w.write_ws_raw(T0, pretty)
        w.write_ws(T0 + 1, SNAPSHOT)
    with RecordingReader(path) as r:
        items = list(r)
    assert [i.payload for i in items] == [frame, SNAPSHOT]
    assert [i.line_no for i in items] == [2, 3]


BAD_LINES: list[tuple[bytes, str]] = [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"ws": {}}', "'t_ms'"),
    (b'{"t_ms": "5", "ws": {}}', "'t_ms'"),
    (b'{"t_ms": true, "ws": {}}', "'t_ms'"),
    (b'{"t_ms": 5}', "exactly one of"),
    (b'{"t_ms": 5, "ws": {}, "mark": {"kind": "x"}}', "exactly one of"),
    (b'{"t_ms": 5, "ws": "frame"}', "'ws' must be a JSON object"),
    (b'{"t_ms": 5, "rest": {"status": 200}}', "'path'"),
    (b'{"t_ms": 5, "mark": {"now_ms": 1}}', "'kind'"),
    (b'{"t_ms": 5, "ws": {"a": "\xff"}}', "not valid JSON"),
]


def _with_lines(path: Path, body: list[bytes]) -> None:
    header = b'{"evoarena_recording":1,"created_ms":0,"source":"test"}'
    data = b"\n".join([header, *body]) + b"\n"
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_bad_line_raises_file_line_reason(tmp_path: Path, line: bytes, reason: str) -> None:
    """A bad line stops reading with ``file:line: reason``; earlier items were already yielded."""
    path = tmp_path / "bad.jsonl"
    good = b'{"t_ms": 1, "mark": {"kind": "tick"}}'
    _with_lines(path, [good, b"", line, good])
    seen: list[RecordItem] = []
    with RecordingReader(path) as r, pytest.raises(RecordingError) as info:
        seen.extend(r)
    assert len(seen) == 1
    err = info.value
    assert isinstance(err, UserError)
    assert (err.path, err.line) == (str(path), 4)  # header, good, blank, bad
    assert str(err).startswith(f"{path}:4: ")
    assert reason in str(err)


@pytest.mark.parametrize("name", ["skip.jsonl", "skip.jsonl.gz"])
def test_skip_bad_counts_and_continues(tmp_path: Path, name: str) -> None:
    """``skip_bad``: every bad line is counted and reported; the good ones all come through."""
    path = tmp_path / name
    body: list[bytes] = []
    for i, (line, _) in enumerate(BAD_LINES):
        body += [b'{"t_ms": %d, "ws": {"type": "x"}}' % i, line]
    _with_lines(path, body)
    with RecordingReader(path, skip_bad=True) as r:
        items = list(r)
    assert [i.t_ms for i in items] == list(range(len(BAD_LINES)))
    assert r.bad_count == len(BAD_LINES)
    assert r.bad_lines[0].startswith(f"{path}:3: not valid JSON")
    assert r.bad_lines[-1].startswith(f"{path}:{1 + 2 * len(BAD_LINES)}: ")
    assert r.lines_read == 1 + 2 * len(BAD_LINES)


def test_skip_bad_keeps_only_the_first_messages(tmp_path: Path) -> None:
    """The count is exact; only the first few messages are kept."""
    path = tmp_path / "many.jsonl"
    _with_lines(path, [b"oops"] * (MAX_REPORTED_BAD_LINES + 7))
    with RecordingReader(path, skip_bad=True) as r:
        assert list(r) == []
    assert r.bad_count == MAX_REPORTED_BAD_LINES + 7
    assert len(r.bad_lines) == MAX_REPORTED_BAD_LINES


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"\n", "empty file"),
        (b"hello\n", "header is not JSON"),
        (b'{"source": "x"}\n', "not an evoarena recording"),
        (b'{"evoarena_recording": 2}\n', "unsupported recording version 2"),
    ],
)
def test_bad_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, reason: str
) -> None:
    """A missing or foreign header is refused at line 1, and the file is not left open."""
    opened: list[IO[bytes]] = []

    def tracking_open(*args: Any, **kwargs: Any) -> IO[bytes]:
        fh: IO[bytes] = open(*args, **kwargs)  # noqa: SIM115 — the test closes or checks it
        opened.append(fh)
        return fh

    monkeypatch.setattr(recording, "open", tracking_open, raising=False)
    path = tmp_path / "h.jsonl"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=reason) as info:
        RecordingReader(path)
    assert info.value.line == 1
    assert str(info.value).startswith(f"{path}:1: ")
    assert len(opened) == 1
    assert opened[0].closed


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is a clear RecordingError, not an OSError."""
    with pytest.raises(RecordingError, match="cannot open"):
        RecordingReader(tmp_path / "nope.jsonl")


def test_gz_name_on_plain_content_and_truncated_gz(tmp_path: Path) -> None:
    """Not-gzip content under a .gz name, and a truncated gzip stream, are reported by line."""
    fake = tmp_path / "fake.jsonl.gz"
    fake.write_bytes(b'{"evoarena_recording":1}\n')
    with pytest.raises(RecordingError, match="cannot read"):
        RecordingReader(fake)
    cut = tmp_path / "cut.jsonl.gz"
    _write_sample(cut)
    cut.write_bytes(cut.read_bytes()[:-12])  # drop the gzip trailer and some data
    with RecordingReader(cut) as r, pytest.raises(RecordingError, match="cannot read"):
        list(r)
    with RecordingReader(cut, skip_bad=True) as r:
        items = list(r)
    assert r.bad_count == 1
    assert len(items) <= 4


def _big(path: Path, n: int) -> None:
    rng = random.Random(5)
    with RecordingWriter(path, "synth", T0) as w:
        for i in range(n):
            noise = rng.randbytes(100).hex()  # incompressible, so the .gz is large too
            w.write_ws(T0 + i, {"type": "trade", "sid": 1, "msg": {"trade_id": noise}})


@pytest.mark.parametrize("name", ["big.jsonl", "big.jsonl.gz"])
def test_reading_streams_and_reports_compressed_progress(tmp_path: Path, name: str) -> None:
    """After the first item only a small part of the file has been read; at the end all of it
    (compressed bytes for .gz), and the figure survives ``close``."""
    path = tmp_path / name
    _big(path, 6_000)
    size = path.stat().st_size
    assert size > 600_000
    r = RecordingReader(path)
    it = iter(r)
    first = next(it)
    assert first.line_no == 2
    early = r.bytes_read()
    assert 0 < early < size // 3
    rest = list(it)
    assert len(rest) == 5_999
    assert r.bytes_read() == size
    r.close()
    r.close()
    assert r.bytes_read() == size
