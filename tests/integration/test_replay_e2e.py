"""`evoarena replay` end to end: golden values, byte-identical state, segments, bad lines."""

from __future__ import annotations

import gzip
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
import pytest

from evoarena.cli import main
from evoarena.feeds.recording import RecordingReader, RecordingWriter
from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.replayer import run_replay
from evoarena.settings import Settings, load_settings

pytestmark = pytest.mark.timeout(120)

GOLDEN = Path(__file__).parents[1] / "resources" / "golden" / "replay_small_day.json"


def _golden() -> dict[str, Any]:
    return dict(orjson.loads(GOLDEN.read_bytes()))


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden test's synthetic day (seeded, so always the same bytes)."""
    g = _golden()["synth"]
    path = tmp_path_factory.mktemp("day") / "day.jsonl.gz"
    generate_day(
        path, markets=g["markets"], hours=g["hours"], seed=g["seed"], start_ms=DEFAULT_START_MS
    )
    return path


@pytest.fixture(scope="module")
def golden_state(day: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state directory after replaying three generations of the golden day."""
    state = tmp_path_factory.mktemp("golden") / "state"
    report = run_replay(day, _settings(state), max_generations=3)
    assert [g.generation for g in report.generations] == [0, 1, 2]
    return state


def _settings(state_dir: Path) -> Settings:
    overrides = dict(_golden()["settings"])
    overrides["state"] = {"dir": str(state_dir)}
    return load_settings(None, overrides)


def _load(path: Path) -> dict[str, Any]:
    return dict(orjson.loads(path.read_bytes()))


def test_golden_generations_and_hall_of_fame(golden_state: Path) -> None:
    """Three generations over the golden day give the stored, hand-checked results."""
    golden = _golden()
    state = golden_state
    for expected in golden["generations"]:
        stats = _load(state / f"gen_{expected['generation']:04d}.json")["stats"]
        got = {k: stats[k] for k in expected if k != "generation"}
        assert got == {k: v for k, v in expected.items() if k != "generation"}
    hof = _load(state / "hall_of_fame.json")
    top = [
        {
            "genome_id": e["genome"]["id"],
            "generation": e["generation"],
            "fitness_roi_pct": e["fitness_roi_pct"],
            "total_trades": e["total_trades"],
            "win_rate": e["win_rate"],
            "realized_pnl": e["realized_pnl"],
            "signal_type": e["signal_type"],
        }
        for e in hof["entries"][:5]
    ]
    assert top == golden["hall_of_fame_top5"]
    assert hof["best_ever"]["genome"]["id"] == golden["hall_of_fame_top5"][0]["genome_id"]
    # each generation's best fitness is its best hall-of-fame entry
    for g in golden["generations"]:
        mine = [e["fitness_roi_pct"] for e in hof["entries"] if e["generation"] == g["generation"]]
        if mine:
            assert max(mine) == g["best_fitness"]


def _recorded_outcomes(day: Path) -> dict[str, int]:
    """Settlement values (µ$) straight from the recording's ``determined`` frames."""
    out: dict[str, int] = {}
    with gzip.open(day, "rb") as f:
        for line in f:
            ws = orjson.loads(line).get("ws")
            if ws and ws.get("type") == "market_lifecycle_v2":
                msg = ws["msg"]
                if msg.get("event_type") == "determined":
                    out[msg["market_ticker"]] = round(float(msg["settlement_value"]) * 1_000_000)
    return out


def _taker_fee(contracts: int, price: Fraction) -> int:
    raw_fee_cents = Fraction(7, 100) * contracts * price * (1 - price) * 100
    return -(-raw_fee_cents.numerator // raw_fee_cents.denominator) * 10_000  # ceil to a cent


def test_hand_checked_trades_of_the_best_bot(day: Path, golden_state: Path, tmp_path: Path) -> None:
    """The best bot's four fills: prices, Kalshi fees and P&L recomputed here from scratch."""
    state = golden_state
    # A finished generation's checkpoints are pruned once the next one begins; generation 0
    # alone (the same bytes as in the three-generation run) keeps its last checkpoint.
    first = tmp_path / "gen0"
    run_replay(day, _settings(first), max_generations=1)
    assert (first / "gen_0000.json").read_bytes() == (state / "gen_0000.json").read_bytes()
    cp = _load(first / "checkpoint_gen0000.json")
    acct = next(a for a in cp["exchange"]["accounts"] if a["bot_id"] == "736dfe08")
    fills = {p["ticker"]: p for p in acct["open_positions"] + acct["closed_positions"]}
    assert set(fills) == {
        "KXETHD-26MAR0202-T3360",
        "KXNBAGAME-26MAR02MIADEN-DEN",
        "KXNCAAMBGAME-26MAR02GONZBAY-BAY",
        "KXNHLGAME-26MAR02BOSVGK-VGK",
    }
    # fills at one price: the fee from the average price; two-level fills: the levels worked
    # out by hand in the golden file's note (they reproduce the cost exactly)
    levels = {
        "KXETHD-26MAR0202-T3360": [(106, Fraction(55, 1000))],
        "KXNBAGAME-26MAR02MIADEN-DEN": [(98, Fraction(6, 100))],
        "KXNCAAMBGAME-26MAR02GONZBAY-BAY": [(110, Fraction(4, 100)), (22, Fraction(5, 100))],
        "KXNHLGAME-26MAR02BOSVGK-VGK": [(93, Fraction(3, 100)), (77, Fraction(4, 100))],
    }
    outcomes = _recorded_outcomes(day)
    pnl = 0
    for ticker, p in fills.items():
        lv = levels[ticker]
        assert p["contracts"] == sum(k for k, _ in lv)
        assert p["cost"] == sum(k * price for k, price in lv) * 1_000_000
        raw = sum(Fraction(7, 100) * k * price * (1 - price) for k, price in lv) * 100
        assert p["fee"] == -(-raw.numerator // raw.denominator) * 10_000
        value = outcomes[ticker]
        per = value if p["side"] == "yes" else 1_000_000 - value
        pnl += p["contracts"] * per - p["cost"] - p["fee"]
    assert _taker_fee(106, Fraction(55, 1000)) == fills["KXETHD-26MAR0202-T3360"]["fee"]
    assert pnl == 145_370_000  # only the 170 NO contracts of VGK paid: 170 - 23.08 - 1.55
    best = _load(state / "hall_of_fame.json")["best_ever"]
    assert best["genome"]["id"] == "736dfe08"
    assert best["realized_pnl"] == pnl / 1_000_000


def test_two_replays_write_byte_identical_state(
    day: Path, golden_state: Path, tmp_path: Path
) -> None:
    """Same seed, settings and recording ⇒ the same bytes in every state file."""
    a, b = golden_state, tmp_path / "b"
    run_replay(day, _settings(b), max_generations=3)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    assert "gen_0002.json" in names
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_rotated_segments_replay_as_one_stream(
    day: Path, golden_state: Path, tmp_path: Path
) -> None:
    """A recording split by rotation replays to the same state as the whole file."""
    first, second = tmp_path / "rec.jsonl.gz", tmp_path / "rec.0001.jsonl.gz"
    with RecordingReader(day) as reader:
        header = reader.header
        items = list(reader)
    writer = RecordingWriter(first, str(header["source"]), int(header["created_ms"]))
    for n, item in enumerate(items):
        if n == len(items) // 2:
            writer.rotate(second, item.t_ms)
        if item.kind == "ws":
            writer.write_ws(item.t_ms, item.payload)
        elif item.kind == "rest":
            r = item.payload
            writer.write_rest(
                item.t_ms, r["method"], r["path"], r["params"], r["status"], r["body"]
            )
    writer.close()
    with RecordingReader(second) as reader:
        assert reader.header["segment"] == 1
    whole, split = golden_state, tmp_path / "split"
    run_replay([first, second], _settings(split), max_generations=3)
    assert (whole / "hall_of_fame.json").read_bytes() == (split / "hall_of_fame.json").read_bytes()
    for name in ("gen_0000.json", "gen_0001.json", "gen_0002.json"):
        # Everything but where in the recording files the generation ended (file, line, and the
        # recording's fingerprint, which differ by construction between one file and two).
        a, b = _load(whole / name), _load(split / name)
        pa, pb = a.pop("recording_position"), b.pop("recording_position")
        assert a == b
        assert (pa["items"], pa["t_ms"]) == (pb["items"], pb["t_ms"])


def test_cli_replay_prints_summary_and_hall_of_fame(
    day: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command prints the per-generation table and the hall of fame top 5."""
    cfg = tmp_path / "golden.toml"
    s = _golden()["settings"]
    lines = ["[evolution]"] + [f"{k} = {v}" for k, v in s["evolution"].items()]
    lines += ["[trading]"] + [f"{k} = {v}" for k, v in s["trading"].items()]
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = main(
        [
            "replay",
            str(day),
            "--config",
            str(cfg),
            "--state-dir",
            str(tmp_path / "s"),
            "--generations",
            "1",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "generations" in out
    assert "hall of fame (top 5)" in out
    assert (tmp_path / "s" / "gen_0000.json").is_file()


def _with_bad_line(day: Path, out: Path, bad_at: int) -> None:
    with gzip.open(day, "rb") as src, out.open("wb") as dst:
        for n, line in enumerate(src, start=1):
            dst.write(b'{"t_ms": "soon", "ws": {}}\n' if n == bad_at else line)


def test_cli_bad_line_exits_2_naming_file_and_line(
    day: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad line stops the replay with file:line: reason; --skip-bad counts it instead."""
    rec = tmp_path / "bad.jsonl"
    _with_bad_line(day, rec, 1000)
    code = main(
        [
            "replay",
            str(rec),
            "--state-dir",
            str(tmp_path / "s1"),
            "--no-progress",
            "--generations",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"{rec}:1000:" in err
    code = main(
        [
            "replay",
            str(rec),
            "--state-dir",
            str(tmp_path / "s2"),
            "--no-progress",
            "--generations",
            "1",
            "--generation-hours",
            "4",
            "--skip-bad",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "skipped 1 bad line" in captured.err
    assert f"{rec}:1000:" in captured.err


def test_cli_recording_shorter_than_a_generation_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """3 h of recording, 24 h + 2 h per generation: exit 2, the lengths and the flag to use."""
    short = tmp_path / "short.jsonl"
    generate_day(short, markets=5, hours=3, seed=1, start_ms=DEFAULT_START_MS)
    code = main(["replay", str(short), "--state-dir", str(tmp_path / "s"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "the recording covers 3.0 h but a generation needs 26 h" in err
    assert "(24 h of trading + 2 h of settlement wait)" in err
    assert "Use --generation-hours 0.9 (or less)" in err


def test_cli_missing_recording_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file: exit 2 and its name, no traceback."""
    code = main(["replay", str(tmp_path / "nope.jsonl")])
    err = capsys.readouterr().err
    assert code == 2
    assert "nope.jsonl: no such recording file" in err
