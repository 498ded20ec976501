"""The operator's view of a live run against the fake Kalshi, in a real subprocess.

The run is a shadow run (`--genomes FILE --no-evolve`): chosen genomes paper-trade every
generation unbred, with the usual state files, status and report. `/healthz` is 200 while frames
flow and ticks are on time; when the exchange goes silent it turns 503 and `evoarena status` says
the feed is stale; it recovers when frames flow again. `/metrics` serves the service's figures.
Each finished generation reaches the webhook (after a 500: retried).
"""

from __future__ import annotations

import random
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
from fake_kalshi import KEY_ID, FakeKalshi, private_key_pem
from test_live_e2e import Exchange, _read_logs
from test_run_cli import base_env
from webhook_server import webhook_server

from evoarena.cli import main
from evoarena.clock import ScaledClock
from evoarena.evolution.genome import Genome

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(60)]

SPEED = 2000.0


class PausableExchange(Exchange):
    """The live test's exchange, which can go silent."""

    paused = False

    async def _step(self) -> None:
        if not self.paused:
            await super()._step()


def _config(tmp_path: Path, fk: FakeKalshi, state: Path, webhook: str) -> Path:
    cfg = tmp_path / "ops.toml"
    cfg.write_text(
        f"""
[evolution]
population_size = 20
elite_count = 2
immigrant_count = 2
tournament_size = 3
min_settled_trades = 1
seed = 4

[trading]
generation_duration_secs = 600
tick_interval_secs = 30
checkpoint_every_ticks = 10
settlement_check_every_ticks = 5
settlement_wait_secs = 600
settlement_poll_secs = 60

[state]
dir = "{state}"

[kalshi]
rest_url = "{fk.rest_url}"
ws_url = "{fk.url}"
read_burst = 1000
discovery_refresh_secs = 100000
heartbeat_log_secs = 100
# Scaled time: 3000 s is 1.5 s of wall time for discovery and the first books on a busy machine.
ready_timeout_secs = 3000

[metrics]
enabled = true
port = 0
feed_stale_secs = 400
tick_late_secs = 2000

[notify]
webhook_url = "{webhook}"
retries = 2
retry_delay_secs = 0.01
timeout_secs = 5
""",
        encoding="utf-8",
    )
    return cfg


async def _until(http: httpx.AsyncClient, url: str, status: int) -> httpx.Response:
    while True:
        resp = await http.get(url)
        if resp.status_code == status:
            return resp
        await anyio.sleep(0.02)  # polling a live service for a state change, bounded by fail_after


def _status(state: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["status", "--state-dir", str(state), "--json"])
    return code, orjson.loads(capsys.readouterr().out)


async def test_health_metrics_status_and_webhook_of_a_live_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    logs: list[dict[str, Any]] = []
    async with (
        webhook_server() as hook,
        FakeKalshi() as fk,
        anyio.create_task_group() as tg,
        httpx.AsyncClient(timeout=5) as http,
    ):
        hook.statuses.append(500)  # the first delivery fails and is retried
        exchange = PausableExchange(fk, ScaledClock(SPEED))
        tg.start_soon(exchange.run)
        cfg = _config(tmp_path, fk, state, hook.url)
        env = base_env(tmp_path) | {
            "KALSHI_API_KEY_ID": KEY_ID,
            "KALSHI_PRIVATE_KEY": private_key_pem(),
        }
        rng = random.Random(3)
        chosen = [Genome.random(rng, 0) for _ in range(6)]
        source = tmp_path / "chosen.json"
        source.write_bytes(orjson.dumps([g.to_dict() for g in chosen]))
        cmd = [sys.executable, "-m", "evoarena", "run", "--config", str(cfg)]
        cmd += ["--genomes", str(source), "--top", "4", "--no-evolve", "--time-scale", str(SPEED)]
        async with await anyio.open_process(cmd, env=env, cwd=tmp_path) as proc:
            with anyio.fail_after(45):
                seen = anyio.Event()
                tg.start_soon(
                    _read_logs,
                    proc,
                    logs,
                    lambda e: e.get("event") in ("metrics_listening", "service_stopped"),
                    seen,
                )
                await seen.wait()
                listening = [e for e in logs if e.get("event") == "metrics_listening"]
                assert listening, logs[-8:]
                port = listening[0]["port"]
                base = f"http://127.0.0.1:{port}"

                ok = await _until(http, f"{base}/healthz", 200)
                assert ok.text == "ok\n"
                metrics = (await http.get(f"{base}/metrics")).text
                assert "evoarena_healthy 1.0" in metrics
                assert "evoarena_feed_frames_total" in metrics
                assert 'evoarena_phase{phase="trading"}' in metrics
                assert "evoarena_feed_last_frame_age_seconds" in metrics

                exchange.paused = True  # the exchange goes silent
                stale = await _until(http, f"{base}/healthz", 503)
                assert "feed stale" in stale.text
                while True:  # the next heartbeat writes it into status.json
                    code, out = _status(state, capsys)
                    if out["verdict"] == "unhealthy":
                        break
                    await anyio.sleep(0.02)
                assert code == 1
                assert "feed stale" in out["summary"]
                assert out["status"]["state"] == "running"
                assert out["status"]["mode"] == "shadow"
                assert out["status"]["feed"]["last_frame_age_secs"] > 400

                exchange.paused = False
                await _until(http, f"{base}/healthz", 200)

                done = await hook.wait_for("generation_complete")
                assert done["generation"] == 0
                assert done["mode"] == "shadow"
                assert done["stats"]["population"] == 4
                assert "generation 0 complete" in done["text"]
                proc.send_signal(signal.SIGTERM)
                code = await proc.wait()
                assert code == 0, logs[-6:]
        tg.cancel_scope.cancel()
    assert hook.attempts >= 2  # the 500, then the retry that got through
    code, out = _status(state, capsys)
    assert code == 1
    assert out["verdict"] == "stopped", out
    assert out["status"]["exit"]["code"] == 0
    gens = sorted(state.glob("gen_*.json"))
    assert gens, "at least one generation finished"
    for path in gens:  # the same four genomes every generation: nothing was bred
        ids = [g["id"] for g in orjson.loads(path.read_bytes())["genomes"]]
        assert ids == [g.id for g in chosen[:4]]
    assert main(["report", "--state-dir", str(state), "--out", str(tmp_path / "r.html")]) == 0
    assert "Fitness per generation" in (tmp_path / "r.html").read_text(encoding="utf-8")
