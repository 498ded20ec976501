"""`evoarena run --seed-genomes` against the fake Kalshi: the live population starts from them."""

from __future__ import annotations

import random
import signal
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from test_live_e2e import _read_logs, live_service

from evoarena.evolution.genome import Genome

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90), pytest.mark.slow]


def _started(entry: dict[str, Any]) -> bool:
    return entry.get("event") == "progress"


async def test_live_run_starts_from_seed_genomes(tmp_path: Path) -> None:
    """Generation 0 of a live run holds the seed genomes first (unchanged), then padding."""
    rng = random.Random(5)
    seeds = [Genome.random(rng, 3) for _ in range(3)]
    source = tmp_path / "seeds.json"
    source.write_bytes(orjson.dumps([g.to_dict() for g in seeds]))
    async with live_service(tmp_path, "--seed-genomes", str(source)) as (proc, _c, _r, logs):
        with anyio.fail_after(60):
            seen = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_read_logs, proc, logs, _started, seen)
                await seen.wait()
                proc.send_signal(signal.SIGTERM)
                code = await proc.wait()
    assert code == 0, logs[-5:]
    fresh = next(e for e in logs if e.get("event") == "starting_fresh")
    assert fresh["seeded"] == 3
    cp = orjson.loads((tmp_path / "live-state" / "checkpoint_gen0000.json").read_bytes())
    genomes = [b["genome"] for b in cp["bots"]]
    assert genomes[:3] == [g.to_dict() for g in seeds]
    assert len(genomes) == fresh["population"] == 100
