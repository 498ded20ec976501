"""``evoarena synth``: determinism, wire shapes through the real decoder, lifecycle, prices."""

from __future__ import annotations

import gzip
import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from evoarena.cli import main
from evoarena.engine.book import MarketBook, MarketState
from evoarena.errors import UserError
from evoarena.feeds.events import (
    PRICE_ONE,
    BookDelta,
    BookInvalidated,
    BookSnapshot,
    MarketDetermined,
    MarketEvent,
    MarketStatus,
    Side,
)
from evoarena.feeds.kalshi.decoder import KalshiDecoder
from evoarena.feeds.recording import RecordingReader
from evoarena.feeds.replay import ReplaySource
from evoarena.feeds.synth import (
    CLOSE_MARGIN_MS,
    DEFAULT_START_MS,
    HOUR_MS,
    MINUTE_MS,
    generate_day,
    longshot_price,
    parse_start_ms,
)

DAY_MARKETS = 400
DAY_HOURS = 2.0
DAY_SEED = 11


@dataclass
class Replayed:
    """What one replay of a synthetic day through the real decoder and book showed."""

    path: Path
    book: MarketBook
    decoder: WatchingDecoder
    bad_lines: int
    first_ms: int
    last_ms: int
    times_ordered: bool = True
    first_books: dict[str, BookSnapshot] = field(default_factory=dict)
    first_mid: dict[str, float] = field(default_factory=dict)
    last_mid: dict[str, float] = field(default_factory=dict)
    determined: dict[str, list[tuple[int, Side | None, int]]] = field(default_factory=dict)
    stale_seen: int = 0
    crossed_seen: int = 0
    invalidated: int = 0


def _mid(m: MarketState) -> float:
    """Mid of the book in dollars; a missing side counts as 0 (bid) or 1 (ask)."""
    bid = m.best_yes_bid or 0
    ask = m.best_yes_ask if m.best_yes_ask is not None else PRICE_ONE
    return (bid + ask) / 2 / PRICE_ONE


class WatchingDecoder(KalshiDecoder):
    """The real decoder, also checking ``seq`` per sid and keeping REST payloads on the way."""

    def __init__(self) -> None:
        super().__init__()
        self.last_seq: dict[int, int] = {}
        self.seq_breaks: list[tuple[object, object, int | None]] = []
        self.sequenced = 0
        self.unsequenced_types: set[str] = set()
        self.rest: list[tuple[str, dict[str, Any], Any]] = []

    def decode_ws(self, obj: dict[str, Any], recv_ms: int) -> list[MarketEvent]:
        """Check the frame's seq (data frames only), then decode it."""
        # An update_subscription ok with a seq counts in its sid's stream (kalshi-api.md §9.3).
        ok_with_seq = obj.get("type") == "ok" and "seq" in obj
        if ok_with_seq or obj.get("type") not in ("subscribed", "ok", "unsubscribed", "error"):
            seq, sid = obj.get("seq"), obj.get("sid")
            if seq is None:
                self.unsequenced_types.add(str(obj.get("type")))
            elif not isinstance(sid, int) or seq != self.last_seq.get(sid, 0) + 1:
                self.seq_breaks.append(
                    (sid, seq, self.last_seq.get(sid) if isinstance(sid, int) else None)
                )
            else:
                self.last_seq[sid] = seq
                self.sequenced += 1
        return super().decode_ws(obj, recv_ms)

    def decode_rest(
        self, path: str, params: dict[str, Any], status: int, body: object, recv_ms: int
    ) -> list[MarketEvent]:
        """Keep the response, then decode it."""
        self.rest.append((path, params, body))
        return super().decode_rest(path, params, status, body, recv_ms)


def replay(path: Path) -> Replayed:
    """Decode ``path`` into a fresh book, watching every book change."""
    book = MarketBook(10)
    decoder = WatchingDecoder()
    with ReplaySource(path, decoder=decoder) as source:
        out = Replayed(path, book, decoder, 0, 0, 0)
        first = True
        for step in source:
            if first:
                out.first_ms, first = step.t_ms, False
            out.times_ordered &= step.t_ms >= out.last_ms
            out.last_ms = step.t_ms
            for ev in step.events:
                book.apply(ev)
                if isinstance(ev, BookSnapshot):
                    out.first_books.setdefault(ev.ticker, ev)
                if isinstance(ev, BookDelta | BookSnapshot):
                    m = book.markets[ev.ticker]
                    out.stale_seen += m.stale
                    bid, ask = m.best_yes_bid, m.best_yes_ask
                    out.crossed_seen += bid is not None and ask is not None and bid >= ask
                    if m.status is MarketStatus.ACTIVE:
                        out.first_mid.setdefault(ev.ticker, _mid(m))
                        out.last_mid[ev.ticker] = _mid(m)
                elif isinstance(ev, MarketDetermined):
                    entry = (step.t_ms, ev.result, ev.settlement_value)
                    out.determined.setdefault(ev.ticker, []).append(entry)
                elif isinstance(ev, BookInvalidated):
                    out.invalidated += 1
        out.bad_lines = source.reader.bad_count
    return out


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    """One 400-market, 2-hour synthetic day, replayed."""
    path = tmp_path_factory.mktemp("synth") / "day.jsonl"
    generate_day(path, markets=DAY_MARKETS, hours=DAY_HOURS, seed=DAY_SEED)
    return replay(path)


# -- determinism ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["day.jsonl", "day.jsonl.gz"])
def test_same_arguments_give_identical_bytes(tmp_path: Path, name: str) -> None:
    """Two runs with the same arguments write the same bytes; another seed writes others."""
    paths = [tmp_path / d / name for d in ("a", "b", "c")]
    for p in paths:
        p.parent.mkdir()
    for p, seed in zip(paths, (3, 3, 4), strict=True):
        generate_day(p, markets=25, hours=1.0, seed=seed, start_ms=DEFAULT_START_MS + 1)
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b
    assert a != c


def test_gzip_output_has_no_wall_clock_stamp(tmp_path: Path) -> None:
    """A .gz recording is real gzip with MTIME zeroed, and decompresses to the same lines."""
    gz, plain = tmp_path / "d.jsonl.gz", tmp_path / "d.jsonl"
    for p in (gz, plain):
        generate_day(p, markets=10, hours=1, seed=1)
    raw = gz.read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert raw[4:8] == b"\0\0\0\0"
    assert gzip.decompress(raw) == plain.read_bytes()


# -- wire fidelity --------------------------------------------------------------------------------


def test_every_line_goes_through_the_real_decoder_cleanly(day: Replayed) -> None:
    """No bad line, malformed frame, unknown type, gap, stale frame or impossible delta."""
    c = day.decoder.counters
    assert day.bad_lines == 0
    assert c.malformed == 0, c.malformed_by_type
    assert c.unknown_types == {}
    assert c.gaps == 0
    assert c.stale_frames == 0
    assert c.command_errors == 0
    assert day.invalidated == 0
    assert day.book.counters.impossible_deltas == 0
    assert day.book.counters.deltas_without_book == 0
    assert set(c.frames_by_type) >= {
        "subscribed",
        "ok",
        "orderbook_snapshot",
        "orderbook_delta",
        "ticker",
        "trade",
        "market_lifecycle_v2",
    }
    assert set(c.lifecycle_by_event_type) >= {"deactivated", "determined", "settled"}
    assert set(c.rest_by_kind) == {"markets", "events", "series_list"}
    assert c.frames_by_type["orderbook_delta"] > 20 * DAY_MARKETS


def test_seq_is_consecutive_per_sid(day: Replayed) -> None:
    """Independently of the decoder: every sequenced frame of a sid is the previous seq + 1."""
    assert day.decoder.seq_breaks == []
    assert day.decoder.sequenced > 10_000
    assert day.decoder.unsequenced_types == {"ticker", "trade"}


def test_receive_times_never_go_backwards(day: Replayed) -> None:
    """Lines are in receive order, inside the requested window."""
    assert day.times_ordered
    assert day.first_ms >= DEFAULT_START_MS
    assert day.last_ms < DEFAULT_START_MS + DAY_HOURS * HOUR_MS


def test_books_are_never_stale_nor_crossed(day: Replayed) -> None:
    """Every book change leaves a fresh book whose best bid is below its best ask."""
    assert day.stale_seen == 0
    assert day.crossed_seen == 0
    assert day.book.stale_tickers() == []
    assert all(m.has_book for m in day.book.markets.values())


def test_books_have_depth_and_tight_spreads(day: Replayed) -> None:
    """First books of markets away from the extremes: several levels, spreads of 1–4 ticks."""
    depths, spreads = [], []
    for snap in day.first_books.values():
        if snap.yes_bids and snap.no_bids and 0.1 < snap.yes_bids[0][0] / PRICE_ONE < 0.9:
            depths.append(min(len(snap.yes_bids), len(snap.no_bids)))
            spreads.append(PRICE_ONE - snap.no_bids[0][0] - snap.yes_bids[0][0])
    assert len(depths) > 50
    assert sorted(depths)[len(depths) // 2] >= 4
    cents = Counter(round(s / 10_000) for s in spreads)
    assert sum(cents[k] for k in (1, 2, 3, 4)) >= 0.9 * len(spreads)
    assert cents[1] + cents[2] >= 0.5 * len(spreads)


def test_markets_span_several_categories(day: Replayed) -> None:
    """Every market has a category (from its series), and there are several."""
    book = day.book
    assert len(book.markets) == DAY_MARKETS
    assert all(book.category(t) is not None for t in book.markets)
    assert len(book.categories()) >= 5


# -- lifecycle ------------------------------------------------------------------------------------


def test_markets_closing_in_the_window_are_determined_once(day: Replayed) -> None:
    """Closes within the window: one ``determined`` minutes later, result = settlement value."""
    end = DEFAULT_START_MS + DAY_HOURS * HOUR_MS
    closes = {t: m.close_ms for t, m in day.book.markets.items() if m.close_ms is not None}
    assert len(closes) == DAY_MARKETS
    # The window is [start, end): a market closes early enough in it to be determined there,
    # or at/after its end.
    assert all(c <= end - CLOSE_MARGIN_MS or c >= end for c in closes.values())
    closing = [day.book.markets[t] for t, c in closes.items() if c < end]
    assert len(closing) > DAY_MARKETS // 2
    for m in closing:
        entries = day.determined.get(m.ticker, [])
        assert len(entries) == 1, (m.ticker, entries)
        t_ms, result, value = entries[0]
        assert result in (Side.YES, Side.NO)
        assert value == (PRICE_ONE if result is Side.YES else 0)
        assert closes[m.ticker] < t_ms <= closes[m.ticker] + 11 * MINUTE_MS
    later = {t for t, c in closes.items() if c >= end}
    assert later
    assert not later & set(day.determined)
    assert {m.status for m in closing} <= {MarketStatus.DETERMINED, MarketStatus.FINALIZED}
    assert any(m.status is MarketStatus.FINALIZED for m in closing)


def test_closes_are_spread_over_the_window(day: Replayed) -> None:
    """Markets keep closing throughout the window, not all at once."""
    start = DEFAULT_START_MS
    closes = [m.close_ms for m in day.book.markets.values() if m.close_ms is not None]
    quarter = DAY_HOURS * HOUR_MS / 4
    quarters = Counter(int((c - start) // quarter) for c in closes if c < start + 4 * quarter)
    assert all(quarters[q] > 0 for q in (1, 2, 3))


def test_discovery_pages_follow_their_cursors(day: Replayed) -> None:
    """``GET /markets`` pages chain by cursor (status open); events/series bodies are Kalshi's."""
    rest = day.decoder.rest
    markets = [(params, body) for path, params, body in rest if path == "/trade-api/v2/markets"]
    assert len(markets) >= 2 * DAY_HOURS
    assert all(params["status"] == "open" for params, _ in markets)
    for (_, prev), (params, _) in itertools.pairwise(markets):
        if prev["cursor"]:
            assert params["cursor"] == prev["cursor"]
        else:
            assert "cursor" not in params
    first = markets[0][1]["markets"][0]
    assert first["status"] == "active"
    assert set(first) >= {
        "ticker", "event_ticker", "yes_bid_dollars", "yes_ask_dollars", "close_time",
        "open_time", "price_level_structure", "price_ranges", "volume_fp", "open_interest_fp",
    }  # fmt: skip
    series = [body for path, _, body in rest if path == "/trade-api/v2/series"]
    assert len(series) == 1
    assert all({"ticker", "category", "fee_type"} <= set(x) for x in series[0]["series"])
    events = [e for path, _, b in rest if path == "/trade-api/v2/events" for e in b["events"]]
    assert len({e["event_ticker"] for e in events}) == len(events)
    assert {e["series_ticker"] for e in events} <= {x["ticker"] for x in series[0]["series"]}


def test_a_long_day_uses_every_lifecycle_message(tmp_path: Path) -> None:
    """Over 12 h (seed 4 has a pause and a postponement) every lifecycle kind decodes cleanly."""
    path = tmp_path / "long.jsonl"
    generate_day(path, markets=30, hours=12, seed=4)
    long = replay(path)
    c = long.decoder.counters
    assert set(c.lifecycle_by_event_type) == {
        "created", "activated", "deactivated", "close_date_updated", "determined", "settled",
    }  # fmt: skip
    assert c.frames_by_type["event_lifecycle"] > 0
    assert c.malformed == 0
    assert c.unknown_types == {}
    assert long.decoder.seq_breaks == []
    assert long.stale_seen == 0
    end = DEFAULT_START_MS + 12 * HOUR_MS
    closes = [m.close_ms for m in long.book.markets.values() if m.close_ms is not None]
    hours_with_closes = {(c - DEFAULT_START_MS) // HOUR_MS for c in closes if c < end}
    assert len(hours_with_closes) >= 6


# -- prices ---------------------------------------------------------------------------------------


def _cluster_z(rows: list[tuple[float, float, str]], weight: bool) -> tuple[float, float, int]:
    """(mean residual, its event-clustered standard error, n) of outcome − price.

    With ``weight`` each residual is multiplied by (price − 0.5): its mean is positive when
    quotes are too close to 0.5 (a favourite–longshot bias), zero when calibrated.
    """
    sums: dict[str, float] = defaultdict(float)
    total = 0.0
    for price, outcome, event in rows:
        r = (outcome - price) * ((price - 0.5) if weight else 1.0)
        sums[event] += r
        total += r
    n = len(rows)
    se = math.sqrt(sum(v * v for v in sums.values())) / n
    return total / n, se, n


def _rows(day: Replayed, mids: dict[str, float]) -> list[tuple[float, float, str]]:
    rows = []
    for ticker, entries in day.determined.items():
        if ticker in mids:
            m = day.book.markets[ticker]
            rows.append((mids[ticker], entries[0][2] / PRICE_ONE, m.event_ticker or ticker))
    return rows


def _calibration_failures(rows: list[tuple[float, float, str]], min_in_bin: int) -> list[str]:
    """Where mean outcome and mean price disagree beyond a statistically sound tolerance.

    Tolerance: 4 event-clustered standard errors (markets of one ladder share an outcome
    driver) plus 2¢ for the tick grid, per 20¢ bin of price in [0.1, 0.9) with at least
    ``min_in_bin`` markets, and for the whole range: the mean residual, and the mean residual
    weighted by (price − 0.5), which is positive when quotes sit too close to 50¢.
    """
    failures = []
    middle = [r for r in rows if 0.1 <= r[0] < 0.9]
    for lo in (0.1, 0.3, 0.5, 0.7):
        in_bin = [r for r in middle if lo <= r[0] < lo + 0.2]
        if len(in_bin) >= min_in_bin:
            mean, se, n = _cluster_z(in_bin, weight=False)
            if abs(mean) > 4 * se + 0.02:
                failures.append(f"bin {lo:.1f}: {mean:+.3f} ± {se:.3f} (n={n})")
    for weight, allowance in ((False, 0.02), (True, 0.008)):
        mean, se, n = _cluster_z(middle, weight)
        if abs(mean) > 4 * se + allowance:
            failures.append(f"all (weighted={weight}): {mean:+.4f} ± {se:.4f} (n={n})")
    return failures


@pytest.mark.parametrize("which", ["first", "last"])
def test_quotes_are_calibrated(day: Replayed, which: str) -> None:
    """Mean outcome matches mean mid (first quote, or last before close): no free edge."""
    rows = _rows(day, day.first_mid if which == "first" else day.last_mid)
    assert len(rows) > 200
    assert len([r for r in rows if 0.1 <= r[0] < 0.9]) >= (100 if which == "first" else 30)
    assert _calibration_failures(rows, min_in_bin=10) == []


def test_calibration_check_detects_a_longshot_bias(day: Replayed) -> None:
    """The same check rejects the day's own first quotes distorted with B = 0.35 (it can fail)."""
    # At this size (~120 mid-range markets) it catches B ≥ 0.3 reliably (20 of 20 seeds at
    # 0.35); smaller biases are checked exactly by the formula test below.
    rows = _rows(day, day.first_mid)
    distorted = [(longshot_price(p, 0.35), o, e) for p, o, e in rows]
    assert _calibration_failures(distorted, min_in_bin=10) != []


def test_prices_move_toward_the_outcome(day: Replayed) -> None:
    """Just before close the mid is nearer the outcome than when first quoted."""
    first = _rows(day, day.first_mid)
    last = _rows(day, day.last_mid)
    err_first = sum(abs(o - p) for p, o, _ in first) / len(first)
    err_last = sum(abs(o - p) for p, o, _ in last) / len(last)
    assert err_last < 0.8 * err_first


def test_longshot_bias_follows_the_documented_formula(tmp_path: Path) -> None:
    """First quotes move from p to σ((1 − 2B)·logit p); outcomes stay those of the seed."""
    bias = 0.2
    runs = []
    for b in (0.0, bias):
        path = tmp_path / f"q{b}.jsonl"
        generate_day(path, markets=120, hours=1.0, seed=21, longshot_bias=b)
        runs.append(replay(path))
    quotes = [
        {
            t: (s.yes_bids[0][0] + PRICE_ONE - s.no_bids[0][0]) / 2 / PRICE_ONE
            for t, s in r.first_books.items()
            if s.yes_bids and s.no_bids
        }
        for r in runs
    ]
    fair, quoted = quotes
    common = [t for t in fair if t in quoted and 0.05 <= fair[t] <= 0.95]
    assert len(common) > 40
    up = down = 0
    for t in common:
        assert abs(quoted[t] - longshot_price(fair[t], bias)) <= 0.02, (t, fair[t], quoted[t])
        if fair[t] < 0.35:
            assert quoted[t] > fair[t]
            up += 1
        elif fair[t] > 0.65:
            assert quoted[t] < fair[t]
            down += 1
    assert up > 5
    assert down > 5
    outcomes = [{t: d[0][1:] for t, d in r.determined.items()} for r in runs]
    assert outcomes[0]
    assert outcomes[0] == outcomes[1]


def test_longshot_price_formula() -> None:
    """The documented numbers: B = 0.1 → 5% quoted 8.7¢, 80% quoted 75.2¢; B = 0 → identity."""
    assert longshot_price(0.05, 0.1) == pytest.approx(0.0867, abs=5e-4)
    assert longshot_price(0.8, 0.1) == pytest.approx(0.752, abs=5e-4)
    assert longshot_price(0.05, 0.2) == pytest.approx(0.146, abs=5e-4)
    assert longshot_price(0.37, 0.0) == 0.37
    assert longshot_price(0.5, 0.3) == pytest.approx(0.5)


# -- summary and CLI ------------------------------------------------------------------------------


def test_summary_describes_the_file(tmp_path: Path) -> None:
    """The summary's counts are the file's."""
    path = tmp_path / "s.jsonl"
    s = generate_day(path, markets=30, hours=1.0, seed=2)
    lines = path.read_bytes().splitlines()
    assert s.lines == len(lines)
    assert s.bytes == path.stat().st_size
    kinds = Counter(("ws" if b'"ws":' in ln[:40] else "rest") for ln in lines[1:])
    assert (s.ws_frames, s.rest_responses) == (kinds["ws"], kinds["rest"])
    assert s.markets == 30
    assert s.determined_yes + s.determined_no > 0
    assert s.first_ms >= DEFAULT_START_MS
    assert "30 markets" in s.describe()


def test_cli_writes_a_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``evoarena synth`` writes the file, with the arguments in its header, and says so."""
    path = tmp_path / "cli.jsonl.gz"
    args = ["synth", "--out", str(path), "--markets", "12", "--hours", "1", "--seed", "5",
            "--start", "2026-03-03T12:00:00+01:00", "--longshot-bias", "0.1"]  # fmt: skip
    assert main(args) == 0
    with RecordingReader(path) as reader:
        header = reader.header
    assert header["source"] == "synth"
    assert header["markets"] == 12
    assert header["seed"] == 5
    assert header["longshot_bias"] == 0.1
    assert header["start"] == "2026-03-03T11:00:00Z"
    assert header["created_ms"] == parse_start_ms("2026-03-03T11:00:00Z")
    assert "12 markets" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--markets", "0"], "--markets must be"),
        (["--hours", "0"], "--hours must be"),
        (["--hours", "-2"], "--hours must be"),
        (["--hours", "inf"], "--hours must be"),
        (["--longshot-bias", "0.5"], "--longshot-bias must be"),
        (["--longshot-bias", "-0.1"], "--longshot-bias must be"),
        (["--start", "2026-03-02T00:00:00"], "has no timezone"),
        (["--start", "yesterday"], "is not an ISO-8601 instant"),
    ],
)
def test_cli_rejects_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], expected: str
) -> None:
    """Bad arguments: one clear message, exit code 2, no file."""
    out = tmp_path / "x.jsonl"
    args = {"--out": str(out), "--markets": "5", "--hours": "1", "--seed": "1"}
    args.update(zip(extra[::2], extra[1::2], strict=True))
    assert main(["synth", *(s for kv in args.items() for s in kv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evoarena: error: ")
    assert expected in err
    assert not out.exists()


def test_cli_rejects_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An --out in a directory that does not exist is a user error, not a traceback."""
    out = tmp_path / "nope" / "x.jsonl"
    assert main(["synth", "--out", str(out), "--markets", "5", "--hours", "1", "--seed", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_requires_its_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    """Missing --markets is argparse's usage error (exit 2)."""
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--out", "x.jsonl", "--hours", "1", "--seed", "1"])
    assert exc.value.code == 2
    assert "--markets" in capsys.readouterr().err


def test_generate_day_validates_directly(tmp_path: Path) -> None:
    """The library raises UserError too (callers other than the CLI)."""
    with pytest.raises(UserError, match="--markets"):
        generate_day(tmp_path / "x.jsonl", markets=True, hours=1, seed=1)  # a bool is no count
    with pytest.raises(UserError, match="--seed"):
        generate_day(tmp_path / "x.jsonl", markets=3, hours=1, seed=1.5)  # type: ignore[arg-type]  # a float is refused
