"""Hostile input: whatever a recording line or a WebSocket frame holds, it ends as a parsed item,
a counted malformed frame or a ``file:line: reason`` bad line — never another exception."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evoarena.engine.book import MarketBook
from evoarena.errors import RecordingError
from evoarena.feeds.kalshi.decoder import KalshiDecoder
from evoarena.feeds.kalshi.sequencer import Sequencer, Verdict
from evoarena.feeds.replay import ReplaySource

T = 1_772_409_600_000


def _dumps(value: object) -> bytes:
    """JSON text (the standard library's: it writes integers of any size, as a hostile
    recording may hold them)."""
    return json.dumps(value).encode()


HEADER = orjson.dumps({"evoarena_recording": 1, "created_ms": T, "source": "test"}) + b"\n"

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["0.5600", "-3.00", "9" * 400, "1e9", "NaN", "", "KX-A", "http://[x]/m"]),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
frame_types = st.sampled_from(
    [
        "orderbook_snapshot",
        "orderbook_delta",
        "ticker",
        "trade",
        "market_lifecycle_v2",
        "event_lifecycle",
        "ok",
        "subscribed",
        "unsubscribed",
        "error",
        "mystery",
    ]
)
msg_keys = st.sampled_from(
    [
        "market_ticker",
        "price_dollars",
        "delta_fp",
        "side",
        "yes_dollars_fp",
        "no_dollars_fp",
        "market_tickers",
        "event_type",
        "ts",
        "yes_price_dollars",
        "count_fp",
        "channel",
        "sid",
    ]
)
frames = st.fixed_dictionaries(
    {"type": frame_types},
    optional={
        "sid": st.one_of(st.integers(-3, 5), json_leaf),
        "seq": st.one_of(st.integers(-3, 2**40), json_leaf),
        "id": json_leaf,
        "msg": st.one_of(st.dictionaries(msg_keys, json_value, max_size=6), json_value),
    },
)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, min_size=1, max_size=12))
def test_any_ws_frames_are_decoded_or_counted(batch: list[dict[str, Any]]) -> None:
    """A decoder and a book survive any sequence of frames; nothing raises."""
    dec = KalshiDecoder()
    book = MarketBook(10)
    for frame in batch:
        for ev in dec.decode_ws(frame, T):
            book.apply(ev)
    book.record_tick()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=200),
        json_value.map(_dumps),
        st.fixed_dictionaries(
            {"t_ms": st.one_of(st.integers(-(2**63), 2**63 - 1), json_leaf)},
            optional={"ws": st.one_of(frames, json_value), "rest": json_value, "mark": json_value},
        ).map(_dumps),
    )
)
def test_any_recording_line_is_an_item_or_a_bad_line(line: bytes) -> None:
    """Through reader and decoder: a step, or a ``file:line: reason`` bad line."""
    path = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path("/tmp")
    file = path / f"hostile-{abs(hash(line))}.jsonl"
    file.write_bytes(HEADER + line.replace(b"\n", b" ") + b"\n")
    error: RecordingError | None = None
    steps = []
    try:
        with ReplaySource(file) as source:
            try:
                steps = list(source)
            except RecordingError as e:
                error = e
    finally:
        file.unlink()
    if error is not None:
        assert str(error).startswith(f"{file}:2: ")
    for step in steps:
        assert 0 <= step.t_ms <= 253_402_300_799_999


@pytest.mark.parametrize("nesting", [900, 1000])
def test_deeply_nested_values_are_malformed_frames(nesting: int) -> None:
    """A value nested ~1000 deep (orjson accepts up to 1024) is counted, not a RecursionError."""
    deep: Any = 1
    for _ in range(nesting):
        deep = [deep]
    dec = KalshiDecoder()
    assert dec.decode_ws({"type": "orderbook_delta", "sid": 1, "seq": deep, "msg": {}}, T) == []
    assert dec.decode_rest("/markets", {}, 200, {"markets": [{"ticker": deep}]}, T) == []
    assert dec.counters.malformed >= 2


def test_bad_rest_path_and_huge_sizes_are_counted() -> None:
    """``http://[x]/m`` and a level of 400 nines: malformed frames, the book stays sane."""
    dec = KalshiDecoder()
    assert dec.decode_rest("http://[x]/m", {}, 200, {}, T) == []
    snap = {
        "type": "orderbook_snapshot",
        "sid": 1,
        "seq": 1,
        "msg": {"market_ticker": "A", "yes_dollars_fp": [["0.5000", "9" * 400]]},
    }
    assert not any(type(e).__name__ == "BookSnapshot" for e in dec.decode_ws(snap, T))
    assert dec.counters.malformed == 2


def test_a_seq_leap_then_old_numbers_does_not_blind_the_sid() -> None:
    """+1e9 once, then the stream goes on at the old numbers: the sid recovers at once."""
    seq = Sequencer()
    assert [seq.check(1, n) for n in (1, 2)] == [Verdict.APPLY, Verdict.APPLY]
    assert seq.check(1, 1_000_000_003) is Verdict.GAP
    assert seq.check(1, 3) is Verdict.GAP  # back to the real count: one more resync
    assert [seq.check(1, n) for n in (4, 5, 6)] == [Verdict.APPLY] * 3
    assert seq.check(1, 5) is Verdict.STALE  # a true duplicate is still ignored
