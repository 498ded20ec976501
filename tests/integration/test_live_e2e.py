"""`evoarena run` against the fake Kalshi in a real subprocess: record → replay, and SIGTERM.

The service runs with ``--time-scale`` (a 30 s tick every 15 ms of wall time) so a generation
takes seconds. The fake exchange, in this test process, moves its books and determines markets
on the same scaled time; the test itself waits only on the subprocess and its log lines.
"""

from __future__ import annotations

import contextlib
import random
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import orjson
import pytest
from fake_kalshi import KEY_ID, FakeKalshi, private_key_pem
from test_run_cli import base_env
from websockets.exceptions import ConnectionClosed

from evoarena.clock import ScaledClock
from evoarena.feeds.recording import RecordingReader
from evoarena.replayer import run_replay
from evoarena.settings import load_settings

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

SPEED = 2000.0
N_MARKETS = 16
CATEGORIES = ("Economics", "Politics", "Climate and Weather", "Financials")


def _config(tmp_path: Path, fk: FakeKalshi, state: Path) -> Path:
    cfg = tmp_path / "live.toml"
    cfg.write_text(
        f"""
[evolution]
min_settled_trades = 1
seed = 9

[trading]
generation_duration_secs = 1800
tick_interval_secs = 30
progress_log_every_ticks = 10
checkpoint_every_ticks = 10
settlement_check_every_ticks = 10
settlement_wait_secs = 9000
settlement_poll_secs = 60

[state]
dir = "{state}"

[kalshi]
rest_url = "{fk.rest_url}"
ws_url = "{fk.url}"
read_burst = 1000
discovery_refresh_secs = 300
heartbeat_log_secs = 600
# Scaled time: 3000 s is 1.5 s of wall time for discovery and the first books on a busy machine.
ready_timeout_secs = 3000
""",
        encoding="utf-8",
    )
    return cfg


class Exchange:
    """The fake exchange's behaviour: markets that move and get determined after close."""

    def __init__(self, fk: FakeKalshi, clock: ScaledClock) -> None:
        self.fk = fk
        self.clock = clock
        self.rng = random.Random(5)
        self.close_ms: dict[str, int] = {}
        self.mid: dict[str, int] = {}
        self.determined: set[str] = set()
        now = clock.now_ms()
        for i in range(N_MARKETS):
            ticker = f"KXTEST-{i:02d}"
            close_ms = now + 900_000 + i * 480_000  # 15 min … 2 h 15 min from now
            mid = 12 + (i * 37) % 76
            m = fk.add_market(
                ticker,
                event_ticker=f"KXTEST{i % 4}-EV{i}",
                category=CATEGORIES[i % 4],
                close_ms=close_ms,
                yes=[(f"0.{mid - k:02d}00", "400.00") for k in range(1, 5)],
                no=[(f"0.{100 - mid - k:02d}00", "400.00") for k in range(1, 5)],
            )
            m["volume_24h_fp"] = "9000.00"
            m["open_interest_fp"] = "6000.00"
            self.close_ms[ticker] = close_ms
            self.mid[ticker] = mid

    async def run(self) -> None:
        """Move a book every few ms; determine markets once their close time has passed."""
        while True:
            await anyio.sleep(0.005)  # pacing of the simulated market, not a wait for a result
            if self.fk.session is None or not self.fk.subscribed():
                continue
            try:
                await self._step()
            except ConnectionClosed:
                continue  # the service went away (stopped or reconnecting); keep the market going

    async def _step(self) -> None:
        now = self.clock.now_ms()
        for ticker, close in self.close_ms.items():
            if now >= close + 60_000 and ticker not in self.determined:
                await self._determine(ticker)
        live = [t for t, c in self.close_ms.items() if c > now and t in self.fk.subscribed()]
        if not live:
            return
        ticker = self.rng.choice(live)
        side = self.rng.choice(("yes", "no"))
        mid = self.mid[ticker]
        top = mid - 1 if side == "yes" else 100 - mid - 1
        price = f"0.{top - self.rng.randrange(3):02d}00"
        size = self.fk.books[ticker][side].get(price, Decimal(0))
        delta = self.rng.choice((-1, 1)) * self.rng.randrange(10, 120)
        delta = max(delta, -int(size) + 1) if size > 1 else abs(delta)
        await self.fk.send_delta(ticker, side, price, f"{delta}.00")

    async def _determine(self, ticker: str) -> None:
        self.determined.add(ticker)
        result = "yes" if self.rng.random() < self.mid[ticker] / 100 else "no"
        value = "1.0000" if result == "yes" else "0.0000"
        for m in self.fk.rest.markets:
            if m["ticker"] == ticker:
                m.update(status="determined", result=result, settlement_value_dollars=value)
        if int(ticker[-2:]) % 2:  # half learn it from the WebSocket, half from REST polls
            await self.fk.send_lifecycle(
                ticker,
                "determined",
                result=result,
                settlement_value=value,
                determination_ts=self.clock.now_ms() // 1000,
            )


@asynccontextmanager
async def live_service(
    tmp_path: Path,
    *extra: str,
    fake_out: list[FakeKalshi] | None = None,
    env_extra: dict[str, str] | None = None,
) -> AsyncIterator[tuple[anyio.abc.Process, Path, Path, list[dict[str, Any]]]]:
    """Start the fake exchange and `evoarena run --record` against it (``fake_out`` receives the
    fake exchange, for tests that inject faults)."""
    state, rec = tmp_path / "live-state", tmp_path / "live.jsonl"
    async with FakeKalshi() as fk, anyio.create_task_group() as tg:
        if fake_out is not None:
            fake_out.append(fk)
        clock = ScaledClock(SPEED)
        exchange = Exchange(fk, clock)
        cfg = _config(tmp_path, fk, state)
        env = base_env(tmp_path)
        env["KALSHI_API_KEY_ID"] = KEY_ID
        env["KALSHI_PRIVATE_KEY"] = private_key_pem()
        env.update(env_extra or {})
        logs: list[dict[str, Any]] = []
        tg.start_soon(exchange.run)
        cmd = [
            sys.executable,
            "-m",
            "evoarena",
            "run",
            "--config",
            str(cfg),
            "--record",
            str(rec),
            "--time-scale",
            str(SPEED),
            *extra,
        ]
        async with await anyio.open_process(cmd, env=env, cwd=tmp_path) as proc:
            yield proc, cfg, rec, logs
        tg.cancel_scope.cancel()


async def _read_logs(
    proc: anyio.abc.Process,
    logs: list[dict[str, Any]],
    until: Callable[[dict[str, Any]], bool] | None = None,
    seen: anyio.Event | None = None,
) -> None:
    """Collect the service's JSON log lines; set ``seen`` at the first line ``until`` accepts."""
    assert proc.stderr is not None
    buf = b""
    async for chunk in proc.stderr:
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if line.startswith(b"{"):
                logs.append(orjson.loads(line))
            elif line.strip():
                logs.append({"event": "stderr", "text": line.decode()})
            else:
                continue
            if until is not None and seen is not None and until(logs[-1]):
                seen.set()


async def test_recorded_live_run_replays_to_the_same_trades(tmp_path: Path) -> None:
    """One live generation, recorded; replaying the recording reproduces it byte for byte."""
    async with live_service(tmp_path, "--generations", "1") as (proc, cfg, rec, logs):
        with anyio.fail_after(60):
            await _read_logs(proc, logs)
            code = await proc.wait()
    events = [entry.get("event") for entry in logs]
    assert code == 0, logs[-5:]
    assert "generation_complete" in events
    live_state = tmp_path / "live-state"
    live_gen = orjson.loads((live_state / "gen_0000.json").read_bytes())
    assert live_gen["stats"]["total_trades"] > 0, "the bots traded on the live books"

    with RecordingReader(rec) as reader:
        assert reader.header["marks"] is True
        kinds = {item.kind for item in reader}
    assert kinds == {"ws", "rest", "mark"}

    replay_state = tmp_path / "replay-state"
    settings = load_settings(cfg, {"state": {"dir": str(replay_state)}})
    report = run_replay(rec, settings)
    assert report.marked
    assert [g.generation for g in report.generations] == [0]
    for name in ("gen_0000.json", "latest.json", "hall_of_fame.json"):
        assert (replay_state / name).read_bytes() == (live_state / name).read_bytes(), name


def _past_tick_20(entry: dict[str, Any]) -> bool:
    return entry.get("event") == "progress" and int(entry.get("tick", 0)) >= 20


async def test_sigterm_mid_generation_saves_and_exits_0_then_resumes(tmp_path: Path) -> None:
    """SIGTERM during trading: checkpoint written, exit 0; the next start resumes that tick."""
    async with live_service(tmp_path) as (proc, _cfg, _rec, logs):
        with anyio.fail_after(60):
            seen = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_read_logs, proc, logs, _past_tick_20, seen)
                await seen.wait()  # trading is under way and a checkpoint has been written
                proc.send_signal(signal.SIGTERM)
                code = await proc.wait()
    events = [e.get("event") for e in logs]
    assert code == 0, logs[-5:]
    assert "stop_requested" in events
    stopped = next(e for e in logs if e.get("event") == "stopped")
    assert stopped["phase"] == "trading"
    cp = orjson.loads((tmp_path / "live-state" / "checkpoint_gen0000.json").read_bytes())
    assert cp["tick_count"] == stopped["tick"]

    async with live_service(tmp_path, "--generations", "1") as (proc2, _c, _r, logs2):
        with anyio.fail_after(60):
            await _read_logs(proc2, logs2)
            code2 = await proc2.wait()
    assert code2 == 0, logs2[-5:]
    resumed = next(e for e in logs2 if e.get("event") == "resumed_mid_generation")
    assert resumed["tick"] >= stopped["tick"]
    assert (tmp_path / "live-state" / "gen_0000.json").is_file()


async def test_double_sigterm_during_shutdown_still_saves_and_exits_0(tmp_path: Path) -> None:
    """systemd/Docker forward a second SIGTERM: it is logged and ignored, the save completes."""
    async with live_service(tmp_path) as (proc, _cfg, _rec, logs):
        with anyio.fail_after(60):
            seen = anyio.Event()
            stopping = anyio.Event()

            def until(entry: dict[str, Any]) -> bool:
                if entry.get("event") == "stop_requested":
                    stopping.set()
                return _past_tick_20(entry)

            async def third_during_shutdown() -> None:
                await stopping.wait()
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)

            async def read_all() -> None:
                await _read_logs(proc, logs, until, seen)
                seen.set()  # the service ended on its own: the assertions below show why
                stopping.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(read_all)
                await seen.wait()
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                    proc.send_signal(signal.SIGTERM)
                tg.start_soon(third_during_shutdown)
                code = await proc.wait()
                tg.cancel_scope.cancel()
    assert code == 0, logs[-5:]
    stopped = next(e for e in logs if e.get("event") == "stopped")
    cp = orjson.loads((tmp_path / "live-state" / "checkpoint_gen0000.json").read_bytes())
    assert cp["tick_count"] == stopped["tick"]
    assert not [e for e in logs if e.get("event") == "stderr" and "Traceback" in e["text"]]
