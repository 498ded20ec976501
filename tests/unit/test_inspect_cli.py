"""``evoarena inspect``: text summary, --json, --book, bad lines with and without --skip-bad."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog

from evoarena.cli import main
from evoarena.feeds.recording import RecordingWriter

T0 = 1_750_000_000_000  # 2025-06-15T15:06:40Z
A = "KXHIGHNY-26MAY19-B71.5"
B = "KXHIGHNY-26MAY19-T74"
C = "KXHIGHNY-26MAY19-T80"


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """main() configures structlog for the captured stderr; undo that after each test."""
    yield
    structlog.reset_defaults()


def _snap(sid: int, seq: int, ticker: str, yes: list[list[str]], no: list[list[str]]) -> Any:
    return {
        "type": "orderbook_snapshot",
        "sid": sid,
        "seq": seq,
        "msg": {"market_ticker": ticker, "yes_dollars_fp": yes, "no_dollars_fp": no},
    }


def _delta(sid: int, seq: int, ticker: str, side: str, price: str, d: str) -> Any:
    return {
        "type": "orderbook_delta",
        "sid": sid,
        "seq": seq,
        "msg": {"market_ticker": ticker, "side": side, "price_dollars": price, "delta_fp": d},
    }


def make_recording(path: Path) -> None:
    """A small hand-made day: discovery, two books (one ends stale after a gap), a ticker, a
    trade, a determined + settled market, an unknown frame type, a malformed trade, a mark."""
    series = {"series": [{"ticker": "KXHIGHNY", "category": "Climate and Weather"}]}
    events = {
        "events": [
            {
                "event_ticker": "KXHIGHNY-26MAY19",
                "series_ticker": "KXHIGHNY",
                "markets": [
                    {"ticker": A, "status": "active"},
                    {"ticker": B, "status": "active"},
                ],
            }
        ]
    }
    with RecordingWriter(path, "test", T0, note="hand-made") as w:
        w.write_rest(T0, "GET", "/trade-api/v2/series", {}, 200, series)
        w.write_rest(
            T0 + 1, "GET", "/trade-api/v2/events", {"with_nested_markets": True}, 200, events
        )
        w.write_ws(
            T0 + 2, {"id": 1, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": 1}}
        )
        w.write_ws(
            T0 + 3, {"id": 2, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": 4}}
        )
        w.write_ws(
            T0 + 4, _snap(1, 1, A, [["0.2100", "10.00"], ["0.2000", "5.50"]], [["0.7700", "3.00"]])
        )
        w.write_ws(T0 + 5, _snap(4, 1, B, [["0.0500", "100.00"]], [["0.9000", "20.00"]]))
        w.write_ws(T0 + 6, _delta(1, 2, A, "yes", "0.2150", "2.00"))
        w.write_ws(T0 + 7, _delta(1, 3, A, "no", "0.7700", "-1.00"))
        w.write_ws(
            T0 + 8,
            {"type": "ticker", "sid": 2, "msg": {"market_ticker": A, "price_dollars": "0.2100"}},
        )
        trade = {
            "market_ticker": A,
            "yes_price_dollars": "0.2150",
            "count_fp": "1.00",
            "taker_side": "yes",
        }
        w.write_ws(T0 + 9, {"type": "trade", "sid": 3, "msg": trade})
        w.write_mark(T0 + 30_000, "tick", now_ms=T0 + 30_000)
        w.write_ws(T0 + 40_000, _delta(4, 3, B, "yes", "0.0500", "1.00"))  # seq 2 lost: a gap
        lc = {
            "market_ticker": C,
            "event_type": "determined",
            "result": "yes",
            "settlement_value": "1.0000",
        }
        w.write_ws(T0 + 50_000, {"type": "market_lifecycle_v2", "sid": 13, "seq": 1, "msg": lc})
        settled = {"market_ticker": C, "event_type": "settled", "settled_ts": 1}
        w.write_ws(
            T0 + 60_000, {"type": "market_lifecycle_v2", "sid": 13, "seq": 2, "msg": settled}
        )
        w.write_ws(T0 + 70_000, {"type": "multivariate_lookup", "sid": 21, "msg": {}})
        w.write_ws(T0 + 90_000, {"type": "trade", "sid": 3, "msg": {"market_ticker": A}})


LINES = 17  # header + 2 REST + 13 WS + 1 mark


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["inspect", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ["day.jsonl", "day.jsonl.gz"])
def test_json_summary_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    """``--json`` prints one object whose counts match the recording line by line."""
    path = tmp_path / name
    make_recording(path)
    code, out, _ = _run(capsys, str(path), "--json")
    assert code == 0
    s = orjson.loads(out)
    assert s["file"] == str(path)
    assert s["source"] == "test"
    assert s["created"] == "2025-06-15T15:06:40+00:00"
    assert s["lines"] == LINES
    assert (s["ws_frames"], s["rest_responses"]) == (13, 2)
    assert s["frames_by_type"] == {
        "market_lifecycle_v2": 2,
        "multivariate_lookup": 1,
        "orderbook_delta": 3,
        "orderbook_snapshot": 2,
        "subscribed": 2,
        "ticker": 1,
        "trade": 2,
    }
    assert s["rest_by_kind"] == {"events": 1, "series_list": 1}
    assert s["lifecycle_by_event_type"] == {"determined": 1, "settled": 1}
    assert s["marks"] == {"tick": 1}
    assert s["markets"] == {"seen": 3, "with_book": 2}
    det = s["determined"]
    assert (det["count"], det["yes"], det["no"], det["scalar"]) == (1, 1, 0, 0)
    assert det["examples"] == [{"ticker": C, "result": "yes", "settlement_value": "1.0000"}]
    sq = s["sequencing"]
    assert (sq["gaps"], sq["stale_frames"], sq["invalidations"]) == (1, 0, 1)
    assert (sq["stale_books"], sq["stale_examples"]) == (1, [B])
    assert sq["deltas_without_book"] == 1  # B's gap-revealing delta hit a stale book
    assert s["unknown_types"] == {"multivariate_lookup": 1}
    assert s["malformed"] == {"count": 1, "by_type": {"trade": 1}}
    assert s["bad_lines"] == {"count": 0, "first": []}
    assert s["time_span"] == {
        "start": "2025-06-15T15:06:40+00:00",
        "end": "2025-06-15T15:08:10+00:00",
        "duration_secs": 90.0,
    }
    assert s["processing"]["frames"] == 15
    assert "book" not in s


def test_text_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The text report shows lines, frame types, markets, results, gaps, stale books, unknowns."""
    path = tmp_path / "day.jsonl"
    make_recording(path)
    code, out, _ = _run(capsys, str(path))
    assert code == 0
    rows = {line.split(None, 1)[0]: line for line in out.splitlines() if line and line[0] != " "}
    assert f"{path} (source: test" in rows["Recording"]
    assert "17 (bad: 0)" in rows["Lines"]
    assert "2025-06-15T15:06:40+00:00 → 2025-06-15T15:08:10+00:00 (0h 01m 30s)" in rows["Time"]
    assert "13 WebSocket frames, 2 REST responses, 1 marks" in rows["Items"]
    assert any(line.split() == ["orderbook_delta", "3"] for line in out.splitlines())
    assert "3 seen, 2 with an order book" in rows["Markets"]
    assert "1 (yes 1, no 0, scalar 0)" in rows["Determined"]
    assert f"  {C}: yes (pays 1.0000)" in out
    assert "1 gaps, 0 stale frames dropped, 1 book invalidations" in rows["Sequencing"]
    assert f"1 at the end (e.g. {B})" in rows["Stale"]
    assert "multivariate_lookup 1" in rows["Unknown"]
    assert "1 (trade 1)" in rows["Malformed"]
    assert "Book " not in out


def test_book_ladders_and_best_prices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--book`` shows the final ladders best first and the derived best bid/ask of both sides."""
    path = tmp_path / "day.jsonl"
    make_recording(path)
    code, out, _ = _run(capsys, str(path), "--json", "--book", A)
    assert code == 0
    b = orjson.loads(out)["book"]
    assert b["ticker"] == A
    assert b["category"] == "Climate and Weather"
    assert (b["status"], b["stale"], b["has_book"]) == ("active", False, True)
    assert b["yes_bids"] == [["0.2150", "2.00"], ["0.2100", "10.00"], ["0.2000", "5.50"]]
    assert b["no_bids"] == [["0.7700", "2.00"]]
    assert (b["best_yes_bid"], b["best_yes_ask"]) == ("0.2150", "0.2300")  # ask = 1 − 0.77
    assert (b["best_no_bid"], b["best_no_ask"]) == ("0.7700", "0.7850")  # ask = 1 − 0.215
    assert b["last_price"] == "0.2150"

    code, out, _ = _run(capsys, str(path), "--book", A)
    assert code == 0
    assert f"Book {A} (active)" in out
    assert "best YES bid 0.2150  ask 0.2300" in out
    assert "best NO bid 0.7700  ask 0.7850" in out
    ladder = [line.split() for line in out.splitlines()[-3:]]
    assert ladder == [["0.2150", "2.00", "0.7700", "2.00"], ["0.2100", "10.00"], ["0.2000", "5.50"]]

    code, out, _ = _run(capsys, str(path), "--book", B)
    assert f"Book {B} (active, STALE)" in out


def test_book_of_unknown_market_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Asking for a market the recording never mentions: exit 2 and a message naming it."""
    path = tmp_path / "day.jsonl"
    make_recording(path)
    code, out, err = _run(capsys, str(path), "--book", "NOPE-1")
    assert code == 2
    assert out == ""
    assert "'NOPE-1' does not appear" in err


def _with_bad_line(path: Path) -> int:
    make_recording(path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(5, b'{"t_ms": "late", "ws": {}}\n')
    path.write_bytes(b"".join(lines))
    return 6


def test_bad_line_without_skip_bad_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad line: ``file:line: reason`` on stderr, no traceback, exit code 2."""
    path = tmp_path / "bad.jsonl"
    line = _with_bad_line(path)
    code, out, err = _run(capsys, str(path), "--json")
    assert code == 2
    assert out == ""
    assert f"{path}:{line}: missing or non-integer 't_ms'" in err
    assert "Traceback" not in err


def test_bad_line_with_skip_bad_is_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--skip-bad``: the rest is summarized and the bad line counted and quoted."""
    path = tmp_path / "bad.jsonl"
    line = _with_bad_line(path)
    code, out, _ = _run(capsys, str(path), "--json", "--skip-bad")
    assert code == 0
    s = orjson.loads(out)
    assert s["bad_lines"]["count"] == 1
    assert s["bad_lines"]["first"] == [f"{path}:{line}: missing or non-integer 't_ms'"]
    assert s["lines"] == LINES + 1
    assert s["ws_frames"] == 13
    code, out, _ = _run(capsys, str(path), "--skip-bad")
    assert code == 0
    assert "(bad: 1)" in out
    assert f"  {path}:{line}: missing or non-integer 't_ms'" in out


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A recording that does not exist: one clear message, exit 2."""
    path = tmp_path / "absent.jsonl"
    code, out, err = _run(capsys, str(path))
    assert code == 2
    assert out == ""
    assert err.strip() == f"evoarena: error: {path}: no such recording file"


def test_not_a_recording_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file without the recording header is refused at line 1."""
    path = tmp_path / "notes.jsonl"
    path.write_text('{"hello": "world"}\n')
    code, _, err = _run(capsys, str(path))
    assert code == 2
    assert f"{path}:1: not an evoarena recording" in err


def test_empty_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A header-only recording summarizes to zeros and no time span."""
    path = tmp_path / "empty.jsonl"
    RecordingWriter(path, "test", T0).close()
    code, out, _ = _run(capsys, str(path), "--json")
    assert code == 0
    s = orjson.loads(out)
    assert (s["lines"], s["ws_frames"], s["time_span"]) == (1, 0, None)
    code, out, _ = _run(capsys, str(path))
    assert "empty recording" in out
