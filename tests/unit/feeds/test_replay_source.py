"""ReplaySource: recorded lines → the live decoder's events, marks, bad lines, progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from evoarena.engine.book import MarketBook
from evoarena.errors import RecordingError
from evoarena.feeds.events import (
    BookDelta,
    BookInvalidated,
    BookSnapshot,
    MarketInfo,
    MarketStatus,
    Side,
)
from evoarena.feeds.kalshi.decoder import WS_RECONNECT_MARK, KalshiDecoder
from evoarena.feeds.recording import RecordingWriter
from evoarena.feeds.replay import ReplaySource, ReplayStep

T0 = 1_750_000_000_000
MARKET = {"ticker": "A-1", "event_ticker": "EV", "status": "active"}


def _snapshot(seq: int) -> dict[str, object]:
    return {
        "type": "orderbook_snapshot",
        "sid": 2,
        "seq": seq,
        "msg": {"market_ticker": "A-1", "yes_dollars_fp": [["0.4000", "5.00"]]},
    }


def _delta(seq: int, d: str) -> dict[str, object]:
    return {
        "type": "orderbook_delta",
        "sid": 2,
        "seq": seq,
        "msg": {"market_ticker": "A-1", "price_dollars": "0.4000", "delta_fp": d, "side": "yes"},
    }


def _record(path: Path) -> None:
    with RecordingWriter(path, "kalshi", T0, marks=True) as w:
        w.write_rest(T0, "GET", "/trade-api/v2/markets/A-1", {}, 200, {"market": MARKET})
        w.write_ws(T0 + 1, _snapshot(1))
        w.write_ws(T0 + 2, _delta(2, "1.50"))
        w.write_mark(T0 + 3, "fire", now_ms=T0 + 3)
        w.write_mark(T0 + 4, WS_RECONNECT_MARK)
        w.write_ws(T0 + 5, _snapshot(1))  # the new session numbers sid 2 from 1 again
        w.write_rest(T0 + 6, "GET", "/trade-api/v2/markets", {}, 503, {"code": "unavailable"})


@pytest.mark.parametrize("name", ["r.jsonl", "r.jsonl.gz"])
def test_steps_in_file_order(tmp_path: Path, name: str) -> None:
    """Each line becomes one step with its receive time, decoded events, mark and line number."""
    path = tmp_path / name
    _record(path)
    with ReplaySource(path) as src:
        assert src.header["marks"] is True
        steps = list(src)
    info = MarketInfo(
        "A-1", "EV", MarketStatus.ACTIVE, None, None, None, None, None, None, None, None, None, T0
    )
    assert steps == [
        ReplayStep(T0, [info], None, 2),
        ReplayStep(T0 + 1, [BookSnapshot("A-1", ((400_000, 500),), (), T0 + 1)], None, 3),
        ReplayStep(T0 + 2, [BookDelta("A-1", Side.YES, 400_000, 150, T0 + 2)], None, 4),
        ReplayStep(T0 + 3, [], {"kind": "fire", "now_ms": T0 + 3}, 5),
        ReplayStep(
            T0 + 4,
            [BookInvalidated(("A-1",), "websocket session reset", T0 + 4)],
            {"kind": WS_RECONNECT_MARK},
            6,
        ),
        ReplayStep(T0 + 5, [BookSnapshot("A-1", ((400_000, 500),), (), T0 + 5)], None, 7),
        ReplayStep(T0 + 6, [], None, 8),
    ]
    c = src.decoder.counters
    assert (c.ws_frames, c.rest_responses, c.gaps, c.stale_frames) == (3, 2, 0, 0)
    assert c.rest_failed_by_kind == {"markets": 1}


def test_replay_builds_the_same_book_as_live_decoding(tmp_path: Path) -> None:
    """Applying the steps gives the book the frames describe (here: fresh, 0.40 × 5 after reset)."""
    path = tmp_path / "r.jsonl"
    _record(path)
    book = MarketBook()
    with ReplaySource(path) as src:
        for step in src:
            for ev in step.events:
                book.apply(ev)
    m = book.market("A-1")
    assert m.yes_bids == {400_000: 500}
    assert m.tradable
    assert book.category("A-1") is None


def test_injected_decoder_is_used(tmp_path: Path) -> None:
    """A caller-supplied decoder receives the frames (and keeps its counters)."""
    path = tmp_path / "r.jsonl"
    _record(path)
    dec = KalshiDecoder()
    with ReplaySource(path, decoder=dec) as src:
        list(src)
    assert src.decoder is dec
    assert dec.counters.frames_by_type == {"orderbook_snapshot": 2, "orderbook_delta": 1}


def test_rest_line_with_bad_status_is_counted_malformed(tmp_path: Path) -> None:
    """A recorded REST line whose status is not an integer yields nothing and is counted."""
    path = tmp_path / "s.jsonl"
    path.write_text(
        '{"evoarena_recording":1,"created_ms":0,"source":"x"}\n'
        '{"t_ms":1,"rest":{"method":"GET","path":"/trade-api/v2/markets","status":"200",'
        '"body":{"markets":[]}}}\n'
    )
    with ReplaySource(path) as src:
        steps = list(src)
    assert steps == [ReplayStep(1, [], None, 2)]
    assert src.decoder.counters.malformed_by_type == {"rest": 1}


def test_bad_line_raises_unless_skipped(tmp_path: Path) -> None:
    """Without skip_bad the bad line stops the replay as ``file:line: reason``; with it, skipped."""
    path = tmp_path / "b.jsonl"
    with RecordingWriter(path, "kalshi", T0) as w:
        w.write_ws(T0, _snapshot(1))
    with path.open("a") as fh:
        fh.write("garbage\n")
        fh.write('{"t_ms": 9, "mark": {"kind": "tick"}}\n')
    with ReplaySource(path) as src, pytest.raises(RecordingError, match=rf"{path}:3: "):
        list(src)
    with ReplaySource(path, skip_bad=True) as src:
        steps = list(src)
    assert [s.line_no for s in steps] == [2, 4]
    assert src.reader.bad_count == 1


@pytest.mark.parametrize("name", ["p.jsonl", "p.jsonl.gz"])
def test_bytes_read_tracks_progress_through_the_file(tmp_path: Path, name: str) -> None:
    """``bytes_read`` never decreases, starts well below the file size and ends at it."""
    path = tmp_path / name
    with RecordingWriter(path, "synth", T0) as w:
        for i in range(4_000):
            w.write_ws(T0 + i, _delta(i + 2, "1.00") | {"pad": f"{i:08d}" * 40})
    size = path.stat().st_size
    seen: list[int] = []
    with ReplaySource(path) as src:
        seen.extend(src.bytes_read() for step in src if step.line_no % 500 == 0)
        seen.append(src.bytes_read())
    assert seen == sorted(seen)
    assert 0 < seen[0] < size // 2
    assert seen[-1] == size
    assert src.bytes_read() == size  # still answers after close
