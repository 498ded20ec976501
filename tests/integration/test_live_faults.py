"""Live faults against the fake exchange, on the real `evoarena run` process: a dead peer that
stops answering pings, a storm of 5xx on rediscovery, and a 401 in the middle of a session.
(The double SIGTERM is in test_live_e2e.py.)"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from fake_kalshi import FakeKalshi
from test_live_e2e import _read_logs, live_service

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(90)]


def _tick_at_least(n: int) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("event") == "progress" and int(e.get("tick", 0)) >= n


def _event(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("event") == name


async def _run_with_fault(
    tmp_path: Path,
    fault: Callable[[FakeKalshi], None],
    then: Callable[[dict[str, Any]], bool],
    *,
    stop: bool,
    env: dict[str, str] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Start the service; at tick 6 apply ``fault``; once a log line satisfies ``then`` send
    SIGTERM (``stop``) or let the service end on its own. Returns (exit code, log lines)."""
    fakes: list[FakeKalshi] = []
    async with live_service(tmp_path, fake_out=fakes, env_extra=env) as (proc, _cfg, _rec, logs):
        fk = fakes[0]
        with anyio.fail_after(60):
            at_tick = anyio.Event()
            after = anyio.Event()
            faulted = False

            def watch(entry: dict[str, Any]) -> bool:
                if not at_tick.is_set() and _tick_at_least(6)(entry):
                    at_tick.set()
                elif faulted and then(entry):
                    after.set()
                return False

            async def read_all() -> None:
                await _read_logs(proc, logs, watch, anyio.Event())
                at_tick.set()
                after.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(read_all)
                await at_tick.wait()
                fault(fk)
                faulted = True
                await after.wait()
                if stop:
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(signal.SIGTERM)
                code = await proc.wait()
                tg.cancel_scope.cancel()
    return code, logs


async def test_dead_peer_is_replaced_and_trading_goes_on(tmp_path: Path) -> None:
    """The server stops reading (no pongs): the keep-alive notices, the client reconnects,
    resubscribes, and the generation keeps ticking; SIGTERM then exits 0."""
    reconnected = {"n": 0}

    def then(entry: dict[str, Any]) -> bool:
        if entry.get("event") == "kalshi websocket session ended":
            reconnected["n"] += 1
        return reconnected["n"] > 0 and _tick_at_least(18)(entry)

    keepalive = {  # websockets' keep-alive runs on wall time: make it notice within a second
        "EVOARENA_KALSHI__PING_INTERVAL_SECS": "0.1",
        "EVOARENA_KALSHI__PING_TIMEOUT_SECS": "0.4",
    }
    code, logs = await _run_with_fault(
        tmp_path, FakeKalshi.go_silent, then, stop=True, env=keepalive
    )
    assert code == 0, logs[-5:]
    assert reconnected["n"] >= 1
    assert any(_tick_at_least(18)(e) for e in logs)


async def test_5xx_storm_keeps_markets_then_401_mid_session_saves_and_exits_2(
    tmp_path: Path,
) -> None:
    """Rediscovery meets 503 after 503: it gives up for this round, keeps the markets it has and
    trading continues. Then credentials are refused mid-session: the checkpoint is written, one
    clear line, exit 2 (a restart will not fix it: systemd's RestartPreventExitStatus=2)."""
    fakes: list[FakeKalshi] = []
    survived = {"storm": False}

    def storm(fk: FakeKalshi) -> None:
        fakes.append(fk)
        fk.rest.fail("/markets", *([503] * 40))

    def then(entry: dict[str, Any]) -> bool:
        if entry.get("event") == "kalshi rediscovery failed; keeping the current markets":
            survived["storm"] = True
            fakes[0].rest.fail("/markets", 401)
        return False

    code, logs = await _run_with_fault(tmp_path, storm, then, stop=False)
    assert survived["storm"]
    failed = [
        e
        for e in logs
        if e.get("event") == "kalshi rediscovery failed; keeping the current markets"
    ]
    assert "503" in failed[0]["error"]
    storm_at = logs.index(failed[0])
    assert any(e.get("event") == "progress" for e in logs[storm_at:]), "trading went on"
    assert code == 2, logs[-5:]
    assert any(e.get("event") == "service_failed" and e.get("kind") == "credentials" for e in logs)
    assert (tmp_path / "live-state" / "checkpoint_gen0000.json").is_file()
    stderr = [e["text"] for e in logs if e.get("event") == "stderr"]
    assert any(t.startswith("evoarena: credentials refused:") for t in stderr), stderr
    assert not any("Traceback" in t for t in stderr)
