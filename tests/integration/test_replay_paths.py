"""The replay's read paths agree byte for byte: general (per line), fused, compiled store; and
``inspect`` says the same on the general and the fused path.

A small synthetic day, plus a copy with awkward lines spliced in (stale and unseen values, legacy
fields, wrong types, a bad line, a reconnect mark), is replayed through each path; the state files,
the report, the decoder's and the book's counters and every market's book must be the same.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs
from test_marked_resume import mark_day

from evoarena.cli import main
from evoarena.commands.inspect import book_view, summarize
from evoarena.engine.book import MarketBook, engine_kernels
from evoarena.errors import RecordingError
from evoarena.evolution import persistence
from evoarena.evolution.strategies import pair_kernels
from evoarena.feeds import fused as fused_module
from evoarena.feeds.bulk import bulk_kernels
from evoarena.feeds.guard import MAX_T_MS
from evoarena.feeds.kalshi.decoder import KalshiDecoder
from evoarena.feeds.store import compile_recording, fresh_store, store_path
from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.replayer import run_replay
from evoarena.settings import Settings, load_settings

pytestmark = pytest.mark.timeout(120)

MARKETS = 30
HOURS = 5.0


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("paths") / "day.jsonl.gz"
    generate_day(path, markets=MARKETS, hours=HOURS, seed=5, start_ms=DEFAULT_START_MS)
    return path


def _awkward_lines(line: dict[str, Any]) -> list[bytes]:
    """Lines that must leave the fast path for the general one, built around a real delta."""
    t = line["t_ms"]
    ws = line["ws"]
    sid, seq, msg = ws["sid"], ws["seq"], ws["msg"]
    ticker = msg["market_ticker"]

    def w(frame: dict[str, Any], **extra: Any) -> bytes:
        return orjson.dumps({"t_ms": t, "ws": frame, **extra})

    def delta(m: dict[str, Any], s: int) -> dict[str, Any]:
        return {"type": "orderbook_delta", "sid": sid, "seq": s, "msg": m}

    ticker_msg = {
        "market_ticker": ticker,
        "price_dollars": "0.5000",
        "yes_bid_dollars": "0.4900",
        "yes_ask_dollars": "0.5100",
        "volume_fp": "100.00",
        "open_interest_fp": "77.00",
    }
    whole = w(delta(msg, seq + 5))
    cut = whole[: whole.index(b'"market_ticker":"') + 20]
    return [
        w(delta(msg, seq)),  # stale: the same seq again
        w(delta({**msg, "price_dollars": "0.0070", "delta_fp": "3.07"}, seq + 1)),  # unseen values
        w(delta({"market_ticker": ticker, "side": "yes", "price": 3, "delta": 2}, seq + 2)),
        w(delta({**msg, "side": ["yes"]}, seq + 3)),  # unhashable side: malformed
        w(delta({**msg, "delta_fp": -5}, seq + 4)),  # number instead of a string: malformed
        b"",
        b"   ",
        b"{not json",
        cut,  # cut off inside a string: the same message on every path
        w({"type": "ticker", "sid": 99, "msg": {**ticker_msg, "volume_fp": "1.234"}}),
        w({"type": "ticker", "sid": 99, "msg": {**ticker_msg, "volume_fp": None, "volume": 4}}),
        w({"type": "ticker", "sid": 99, "msg": {**ticker_msg, "open_interest_fp": "8.5"}}),
        w({"type": "ticker", "sid": 99, "seq": 1, "msg": ticker_msg}),
        w({"type": "ticker", "sid": 99, "msg": {**ticker_msg, "price_dollars": ["x"]}}),
        w(
            {
                "type": "trade",
                "sid": 98,
                "msg": {"market_ticker": ticker, "yes_price_dollars": 0.5, "count_fp": "1.00"},
            }
        ),
        w(
            {
                "type": "trade",
                "sid": 98,
                "msg": {"market_ticker": ticker, "no_price_dollars": "0.3000", "count_fp": "2.00"},
            }
        ),
        w(
            {
                "type": "trade",
                "sid": 98,
                "msg": {
                    "market_ticker": ticker,
                    "yes_price_dollars": "0.5000",
                    "count_fp": "1.2.3",
                },
            }
        ),  # a count of the wrong shape: malformed
        w({"type": "ticker", "sid": 99, "msg": ticker_msg}, extra_key=1),
        # hostile input: refused the same way on every path (feeds.guard)
        w({"type": "ticker", "sid": 99, "msg": {**ticker_msg, "open_interest_fp": "9" * 40}}),
        orjson.dumps({"t_ms": MAX_T_MS + 1, "ws": delta(msg, seq + 5)}),  # beyond the year 9999
        orjson.dumps({"t_ms": t + 8 * 86_400_000, "ws": delta(msg, seq + 5)}),  # a week's jump
    ]


@pytest.fixture(scope="module")
def awkward_day(day: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    lines = gzip.decompress(day.read_bytes()).split(b"\n")
    at = len(lines) * 2 // 5
    while b'"orderbook_delta"' not in lines[at]:
        at += 1
    extra = _awkward_lines(orjson.loads(lines[at]))
    path = tmp_path_factory.mktemp("awkward") / "awkward.jsonl.gz"
    last_t = orjson.loads(lines[-2])["t_ms"]
    reconnect = orjson.dumps({"t_ms": last_t, "mark": {"kind": "ws_reconnect"}})
    body = [*lines[: at + 1], *extra, *lines[at + 1 : -1], reconnect]
    path.write_bytes(gzip.compress(b"\n".join(body)))
    return path


@pytest.fixture(scope="module")
def hostile_day(day: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs of deltas the compiled store cannot check in bulk: after a line of another type, a
    run on many (unknown) sids; after the next such line, more out-of-sequence deltas than a
    batch reads in bulk, amid in-sequence ones, and numbers no int64 column holds."""
    lines = gzip.decompress(day.read_bytes()).split(b"\n")
    hot = [f'"type":"{k}"'.encode() for k in ("orderbook_delta", "ticker", "trade")]
    other = len(lines) // 3
    while any(k in lines[other] for k in hot):
        other += 1  # to a line the store keeps for the general path
    at = other + 50
    while any(k in lines[at] for k in hot):
        at += 1  # the next such line ends the many-sids run
    while hot[0] not in lines[at]:
        at += 1
    line = orjson.loads(lines[at])
    t, ws = line["t_ms"], line["ws"]

    def delta(sid: int, seq: int, t_ms: int = t) -> bytes:
        return orjson.dumps({"t_ms": t_ms, "ws": {**ws, "sid": sid, "seq": seq}})

    t_other = orjson.loads(lines[other])["t_ms"]
    many_sids = [delta(1000 + k, 1, t_other) for k in range(40)]
    out_of_order = [delta(ws["sid"], ws["seq"] + (7 if k % 2 else -3)) for k in range(150)]
    beyond_int64 = (1 << 64) - 1  # valid JSON, fits no int64 column: the general path judges
    out_of_order += [delta(ws["sid"], beyond_int64), delta(beyond_int64, 1), delta(1, 1, -1)]
    out_of_order.append(delta(ws["sid"], ws["seq"], beyond_int64))
    body = [
        *lines[: other + 1],
        *many_sids,
        *lines[other + 1 : at + 1],
        *out_of_order,
        *lines[at + 1 : -1],
    ]
    path = tmp_path_factory.mktemp("hostile") / "hostile.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(body)))
    return path


@pytest.fixture(scope="module")
def marked_day(day: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The day as ``evoarena run --record`` writes it: the runner acts at the recorded marks."""
    path = tmp_path_factory.mktemp("marked") / "marked.jsonl.gz"
    mark_day(day, path, _settings(path.parent).trading.tick_interval_secs * 1000)
    return path


@pytest.fixture(scope="module")
def truncated_day(day: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The day cut off mid-stream (a recorder killed mid-write): a read error near the end."""
    data = day.read_bytes()
    path = tmp_path_factory.mktemp("truncated") / "truncated.jsonl.gz"
    path.write_bytes(data[: len(data) * 6 // 10])
    return path


def _settings(state: Path) -> Settings:
    return load_settings(
        None,
        {
            "evolution": {"population_size": 12, "seed": 7},
            "trading": {"generation_duration_secs": 5400, "settlement_wait_secs": 1800},
            "state": {"dir": str(state)},
        },
    )


def _book_state(book: MarketBook) -> dict[str, Any]:
    """Everything a replay reads from the book (``volume`` is not read: the fused path skips it)."""
    return {
        t: (
            m.yes_bids,
            m.no_bids,
            m.best_yes_bid,
            m.best_no_bid,
            m.has_book,
            m.stale,
            m.status,
            m.close_ms,
            m.open_interest,
            m.volume_24h,
            m.last_price,
            m.settlement_value,
            m.history.to_array().tolist(),
        )
        for t, m in sorted(book.markets.items())
    }


def _replay(path: Path, state: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> dict[str, Any]:
    """Replay two generations; returns the report and the decoder and book it used."""
    seen: dict[str, Any] = {}
    for cls, key in ((KalshiDecoder, "decoder"), (MarketBook, "book")):
        original = cls.__init__

        def spy(self: Any, *a: Any, _orig: Any = original, _key: str = key, **k: Any) -> None:
            _orig(self, *a, **k)
            seen[_key] = self

        monkeypatch.setattr(cls, "__init__", spy)
    report = run_replay(path, _settings(state), max_generations=2, skip_bad=True, **kw)
    monkeypatch.undo()
    return {"report": report, **seen}


def _files(state: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(state.iterdir())}


@pytest.mark.slow
@pytest.mark.parametrize(
    "which", ["day", "awkward_day", "hostile_day", "marked_day", "truncated_day"]
)
def test_fused_and_compiled_paths_write_the_same_state_as_the_general_path(
    which: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path: Path = request.getfixturevalue(which)
    general = _replay(path, tmp_path / "general", monkeypatch, fused=False)
    fused = _replay(path, tmp_path / "fused", monkeypatch, use_cache=False)
    compile_recording(path)
    assert fresh_store(path) == store_path(path)
    warm = _replay(path, tmp_path / "warm", monkeypatch)
    g = general["report"]
    assert len(g.generations) == (1 if which == "truncated_day" else 2)
    assert g.stores == []
    assert fused["report"].stores == []
    assert warm["report"].stores == [store_path(path)]
    for other, name in ((fused, "fused"), (warm, "warm")):
        r = other["report"]
        assert _files(tmp_path / "general") == _files(tmp_path / name), name
        for attr in ("items", "events", "bad_lines", "first_ms", "last_ms", "ticks", "counters"):
            assert getattr(g, attr) == getattr(r, attr), (name, attr)
        assert g.bad_examples == r.bad_examples
        assert general["decoder"].counters.as_dict() == other["decoder"].counters.as_dict(), name
        assert general["book"].counters == other["book"].counters, name
        assert _book_state(general["book"]) == _book_state(other["book"]), name
    if which == "truncated_day":
        assert g.bad_lines == 1
        assert "cannot read" in g.bad_examples[0]
    if which == "hostile_day":
        assert general["decoder"].counters.gaps >= 1
        assert sum("'t_ms'" in line for line in g.bad_examples) == 2
    assert g.marked == (which == "marked_day")
    if which == "awkward_day":
        counters = fused["decoder"].counters
        assert counters.malformed >= 5
        assert counters.stale_frames >= 1
        assert g.bad_lines == 4
        assert sum("'t_ms'" in line for line in g.bad_examples) == 2


@pytest.mark.parametrize("warm", [False, True], ids=["json", "store"])
def test_a_replay_without_numba_writes_the_same_state(
    day: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warm: bool
) -> None:
    """Where numba cannot run, the JSON scanner, the pair kernels, the book's kernels and the
    store's scan all fall back to their plain, numpy and orjson code (one warning each) and the
    state files are the same, from the JSON and from the compiled store."""
    loaders = (pair_kernels, engine_kernels, bulk_kernels)
    assert all(load() is not None for load in loaders)
    if warm:
        compile_recording(day)
    compiled = _replay(day, tmp_path / "compiled", monkeypatch, use_cache=warm)
    for load in loaders:
        load.cache_clear()
    try:
        for module in (
            "evoarena.evolution.kernels",
            "evoarena.engine.kernels",
            "evoarena.feeds.bulk_kernels",
        ):
            monkeypatch.setitem(sys.modules, module, None)  # the import fails
        monkeypatch.setattr(fused_module, "_new_scanner", lambda: None)
        with capture_logs() as logs:
            plain = _replay(day, tmp_path / "plain", monkeypatch, use_cache=warm)
    finally:
        monkeypatch.undo()
        for load in loaders:
            load.cache_clear()
    events = [e["event"] for e in logs if e["event"].endswith("_unavailable")]
    assert sorted(events) == [
        "bulk_kernels_unavailable",
        "engine_kernels_unavailable",
        "pair_kernels_unavailable",
    ]
    assert plain["report"].stores == ([store_path(day)] if warm else [])
    assert _files(tmp_path / "plain") == _files(tmp_path / "compiled")
    assert plain["report"].ticks == compiled["report"].ticks > 0


def test_commands_that_neither_tick_nor_read_json_do_not_import_numba() -> None:
    """numba (0.2 s to import) comes in with the first tick or the first JSON chunk only."""
    code = (
        "import sys, evoarena.cli, evoarena.replayer, evoarena.feeds.store; "
        "print('numba' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(("every", "expected"), [(0, "stop only"), (60, "every 60 ticks")])
def test_replay_writes_only_the_checkpoints_asked_for(
    day: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: int, expected: str
) -> None:
    """``evoarena replay`` checkpoints when it stops mid-generation (and every N ticks if asked),
    not at the live service's interval: in a replay only the last checkpoint can matter."""
    saved: list[tuple[int, int]] = []
    original = persistence.save_checkpoint

    def spy(generation: int, checkpoint: Any, tick_count: int, **k: Any) -> Any:
        saved.append((generation, tick_count))
        return original(generation, checkpoint, tick_count, **k)

    monkeypatch.setattr(persistence, "save_checkpoint", spy)
    report = run_replay(day, _settings(tmp_path / "s"), checkpoint_every_ticks=every)
    assert report.incomplete_generation is not None
    last = (report.incomplete_generation, report.incomplete_tick)
    assert saved[-1] == last
    if expected == "stop only":
        assert saved == [last]
    else:
        periodic = saved[:-1]
        assert periodic
        assert all(tick % every == 0 for _, tick in periodic)
        per_gen = 5400 // 30 // every
        assert (
            len(periodic)
            == per_gen * len(report.generations) + (report.incomplete_tick or 0) // every
        )


def test_replay_does_not_import_the_live_stack() -> None:
    """httpx, websockets and cryptography are only for ``evoarena run``."""
    code = (
        "import sys, evoarena.cli, evoarena.replayer, evoarena.feeds.fused; "
        "print(sorted(m for m in ('httpx', 'websockets', 'cryptography') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_changed_recording_makes_its_store_stale(
    day: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store is keyed to the file's size and hash and the store format's version: an edit
    or an older store sends replay back to the JSON, with a warning that says why."""
    copy = tmp_path / "copy.jsonl.gz"
    copy.write_bytes(day.read_bytes())
    compile_recording(copy)
    assert fresh_store(copy) == store_path(copy)
    os.utime(copy, ns=(1, 1))  # same bytes, new time: the hash decides
    assert fresh_store(copy) == store_path(copy)
    data = bytearray(copy.read_bytes())
    data[-9] ^= 0xFF  # same size, different bytes (inside the gzip trailer's CRC)
    copy.write_bytes(bytes(data))
    os.utime(copy, ns=(2, 2))
    with capture_logs() as logs:
        assert fresh_store(copy) is None
    copy.write_bytes(day.read_bytes() + b"\n")
    with capture_logs() as more:
        assert fresh_store(copy) is None
    compile_recording(copy)
    monkeypatch.setattr("evoarena.feeds.store.STORE_VERSION", "0")
    with capture_logs() as older:
        assert fresh_store(copy) is None
    reasons = [e["reason"] for e in (*logs, *more, *older) if e["event"] == "compiled_store_stale"]
    assert reasons == [
        "the recording changed (SHA-256)",
        "the recording changed (size)",
        "written by another evoarena version",
    ]


@pytest.mark.slow
def test_cli_compile_then_replay_says_it_reads_the_store(
    day: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "day.jsonl.gz"
    copy.write_bytes(day.read_bytes())
    assert main(["compile", str(copy)]) == 0
    out = capsys.readouterr().out
    assert f"{copy} → {store_path(copy)}" in out
    assert "× the recording's" in out
    args = ["replay", str(copy), "--no-progress", "--generations", "1", "--generation-hours", "1"]
    state = ["--state-dir", str(tmp_path / "s1")]
    assert main([*args, *state]) == 0
    assert f"read the compiled store {store_path(copy)}" in capsys.readouterr().out
    assert main([*args, "--no-cache", "--state-dir", str(tmp_path / "s2")]) == 0
    assert "compiled store" not in capsys.readouterr().out
    assert main(["compile", str(tmp_path / "missing.jsonl.gz")]) == 2
    assert "no such recording file" in capsys.readouterr().err


def test_an_overlong_line_is_the_same_bad_line_on_every_path(
    day: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line over the length limit (made small here) is one bad line, skipped, on all paths."""
    for module in ("recording", "fused", "store"):
        monkeypatch.setattr(f"evoarena.feeds.{module}.MAX_LINE_BYTES", 4096)
    lines = gzip.decompress(day.read_bytes()).split(b"\n")
    at = len(lines) // 3
    t = orjson.loads(lines[at])["t_ms"]
    long_rest = {"method": "GET", "path": "/trade-api/v2/markets", "status": 200}
    overlong = orjson.dumps({"t_ms": t, "rest": {**long_rest, "body": {"x": "y" * 10_000}}})
    path = tmp_path / "long.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join([*lines[: at + 1], overlong, *lines[at + 1 :]])))
    general = run_replay(path, _settings(tmp_path / "g"), skip_bad=True, fused=False)
    fused = run_replay(path, _settings(tmp_path / "f"), skip_bad=True, use_cache=False)
    compile_recording(path)
    warm = run_replay(path, _settings(tmp_path / "w"), skip_bad=True)
    assert warm.stores == [store_path(path)]
    # (the day's biggest snapshots and REST bodies are over this small limit too)
    assert general.bad_lines >= 1
    assert all("line longer than 4,096 bytes" in b for b in general.bad_examples)
    assert any(f":{at + 2}:" in b for b in general.bad_examples)  # the inserted line
    for other in (fused, warm):
        assert other.bad_lines == general.bad_lines
        assert other.bad_examples == general.bad_examples
        assert (other.items, other.events, other.ticks) == (
            general.items,
            general.events,
            general.ticks,
        )
    assert _files(tmp_path / "g") == _files(tmp_path / "f") == _files(tmp_path / "w")


@pytest.mark.parametrize("which", ["day", "awkward_day", "hostile_day", "truncated_day"])
def test_inspect_on_the_fused_path_says_what_the_general_path_says(
    which: str, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(which)
    general, g_book = summarize(path, skip_bad=True, fused=False)
    fused, f_book = summarize(path, skip_bad=True)
    for s in (general, fused):
        assert s["processing"].pop("wall_secs") >= 0
        s["processing"].pop("frames_per_sec")
    assert fused == general
    assert _book_state(f_book) == _book_state(g_book)
    views = [
        (book_view(g_book, m), book_view(f_book, f_book.markets[t]))
        for t, m in g_book.markets.items()
    ]
    assert all(g == f for g, f in views)
    if which == "awkward_day":
        assert general["bad_lines"]["count"] == 4
        assert general["marks"] == {"ws_reconnect": 1}


def test_inspect_stops_at_the_first_bad_line_on_both_paths(awkward_day: Path) -> None:
    errors = []
    for fused in (False, True):
        with pytest.raises(RecordingError) as e:
            summarize(awkward_day, fused=fused)
        errors.append(str(e.value))
    assert errors[0] == errors[1]
