"""`evoarena run --seed-genomes` against the fake Kalshi: the live population starts from them."""

from __future__ import annotations

import random
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from fake_kalshi import KEY_ID, FakeKalshi, private_key_pem
from test_live_e2e import SPEED, Exchange, _config, _read_logs
from test_run_cli import base_env

from evoarena.clock import ScaledClock
from evoarena.evolution.genome import Genome

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90), pytest.mark.slow]

READY_TIMEOUT_SECS = 1200
"""Virtual seconds (0.6 s of wall time at SPEED): a loaded 2-core box needs more than 30."""


def _started(entry: dict[str, Any]) -> bool:
    return entry.get("event") == "generation_started"


async def test_live_run_starts_from_seed_genomes(tmp_path: Path) -> None:
    """Generation 0 of a live run holds the seed genomes first (unchanged), then padding."""
    rng = random.Random(5)
    seeds = [Genome.random(rng, 3) for _ in range(3)]
    source = tmp_path / "seeds.json"
    source.write_bytes(orjson.dumps([g.to_dict() for g in seeds]))
    state = tmp_path / "live-state"
    logs: list[dict[str, Any]] = []
    async with FakeKalshi() as fk, anyio.create_task_group() as outer:
        outer.start_soon(Exchange(fk, ScaledClock(SPEED)).run)
        cfg = _config(tmp_path, fk, state)
        cfg.write_text(
            cfg.read_text("utf-8").replace(
                "ready_timeout_secs = 30", f"ready_timeout_secs = {READY_TIMEOUT_SECS}"
            ),
            encoding="utf-8",
        )
        env = base_env(tmp_path)
        env["KALSHI_API_KEY_ID"] = KEY_ID
        env["KALSHI_PRIVATE_KEY"] = private_key_pem()
        cmd = [sys.executable, "-m", "evoarena", "run", "--config", str(cfg), "--time-scale",
               str(SPEED), "--seed-genomes", str(source)]  # fmt: skip
        async with await anyio.open_process(cmd, env=env, cwd=tmp_path) as proc:
            with anyio.fail_after(60):
                seen = anyio.Event()

                async def read() -> None:
                    await _read_logs(proc, logs, _started, seen)
                    seen.set()  # the service ended on its own: stop waiting, show why below

                async with anyio.create_task_group() as tg:
                    tg.start_soon(read)
                    await seen.wait()
                    if proc.returncode is None:
                        proc.send_signal(signal.SIGTERM)
                    code = await proc.wait()
        outer.cancel_scope.cancel()
    assert code == 0, logs[-5:]
    assert any(_started(e) for e in logs), logs[-5:]
    fresh = next(e for e in logs if e.get("event") == "starting_fresh")
    assert fresh["seeded"] == 3
    cp = orjson.loads((state / "checkpoint_gen0000.json").read_bytes())
    genomes = [b["genome"] for b in cp["bots"]]
    assert genomes[:3] == [g.to_dict() for g in seeds]
    assert len(genomes) == fresh["population"] == 100
