"""Health rules and the verdict `evoarena status` draws from a status file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evoarena.cli import main
from evoarena.observe.status import Vitals, health_problems, judge, read_status, write_status

NOW = 1_800_000_000_000


def test_health_rules() -> None:
    limits = {"feed_stale_secs": 120.0, "tick_late_secs": 90.0}
    assert health_problems(Vitals(NOW, False, None, None), **limits) == [
        "starting: waiting for the first order books"
    ]
    assert health_problems(Vitals(NOW, True, NOW - 119_000, NOW + 5_000), **limits) == []
    stale = health_problems(Vitals(NOW, True, NOW - 121_000, NOW), **limits)
    assert stale == ["feed stale: last frame 121 s ago (limit 120 s)"]
    late = health_problems(Vitals(NOW, True, NOW, NOW - 91_000), **limits)
    assert late == ["ticks late: next action was due 91 s ago (limit 90 s)"]


def _doc(**extra: object) -> dict[str, object]:
    return {
        "state": "running",
        "pid": 1,
        "host": "elsewhere",
        "written_wall_ms": NOW,
        "heartbeat_wall_secs": 60.0,
        "health": {"ok": True, "problems": []},
        **extra,
    }


def test_verdicts() -> None:
    assert judge(_doc(), now_wall_ms=NOW + 30_000, host="here").state == "running"
    # three heartbeats plus 10 s without a write: hung or gone
    assert judge(_doc(), now_wall_ms=NOW + 189_000, host="here").state == "running"
    dead = judge(_doc(), now_wall_ms=NOW + 191_000, host="here")
    assert dead.state == "dead"
    assert "no heartbeat for 191 s" in dead.summary
    sick = judge(
        _doc(health={"ok": False, "problems": ["feed stale: x"]}), now_wall_ms=NOW, host="h"
    )
    assert sick.state == "unhealthy"
    assert "feed stale" in sick.summary
    stopped = judge(
        _doc(state="stopped", exit={"code": 1, "reason": "feed failed", "message": "no route"}),
        now_wall_ms=NOW + 10**9,
        host="here",
    )
    assert stopped.state == "stopped"
    assert "exit 1 (feed failed): no route" in stopped.summary


def test_a_gone_process_on_this_host_is_dead() -> None:
    gone = 2**22 + 12345  # above the default pid_max: no such process
    v = judge(_doc(pid=gone, host="me"), now_wall_ms=NOW, host="me")
    assert v.state == "dead"
    alive = judge(_doc(pid=os.getpid(), host="me"), now_wall_ms=NOW, host="me")
    assert alive.state == "running"


def test_status_file_round_trip_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--state-dir", str(tmp_path)]) == 1
    assert "has not started there" in capsys.readouterr().err
    write_status(tmp_path, _doc(written_wall_ms=0, generation=3, phase="trading"))
    doc = read_status(tmp_path)
    assert doc is not None
    assert doc["schema_version"] == 1
    assert not list(tmp_path.glob(".*.tmp"))
    assert main(["status", "--state-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "looks dead" in out
    assert "generation 3 (None), trading" in out
    (tmp_path / "status.json").write_text("{", encoding="utf-8")
    assert main(["status", "--state-dir", str(tmp_path)]) == 2
    assert "status.json: not valid JSON" in capsys.readouterr().err


@pytest.mark.anyio
async def test_a_metrics_port_in_use_is_a_config_error() -> None:
    import anyio

    from evoarena.errors import ConfigError
    from evoarena.observe.live import LiveMonitor, bind_metrics
    from evoarena.settings import load_settings

    taken = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with taken:
        port = taken.listeners[0].extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610
        s = load_settings(None, {"metrics": {"enabled": True, "port": port}})
        with pytest.raises(
            ConfigError, match=f"metrics.host/port: cannot listen on 127.0.0.1:{port}"
        ):
            await bind_metrics(s)
    off = load_settings()
    assert await bind_metrics(off) is None
    assert LiveMonitor(off, clock=None).port is None  # type: ignore[arg-type]
