"""Progress bars with percentage and ETA, warnings held until after the tables, 80 columns."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
import structlog
from rich.console import Console

from evoarena.commands._offline import (
    print_warnings,
    quiet_logs,
    replay_with_progress,
    synth_progress,
)
from evoarena.feeds.synth import generate_day
from evoarena.settings import load_settings


def _terminal() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, width=120), buf


def test_synth_and_replay_show_percentage_and_eta(tmp_path: Path) -> None:
    console, buf = _terminal()
    seen: list[float] = []
    rec = tmp_path / "d.jsonl"
    with synth_progress(console, show=True) as cb:
        assert cb is not None

        def both(f: float) -> None:
            seen.append(f)
            cb(f)

        generate_day(rec, markets=4, hours=3, seed=1, on_progress=both)
    assert seen == sorted(seen)
    assert 0 <= seen[0] < seen[-1] < 1
    out = buf.getvalue()
    assert "synth" in out
    assert "%" in out
    assert "ETA" in out
    settings = load_settings(None, {"state": {"dir": str(tmp_path / "s")}})
    console, buf = _terminal()
    replay_with_progress([rec], settings, console, show=True)
    out = buf.getvalue()
    assert "replay" in out
    assert "%" in out
    assert "ETA" in out


def test_warnings_wait_for_the_tables_and_are_explained(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = load_settings()
    collector = quiet_logs(argparse.Namespace(verbose=False), settings)
    log = structlog.get_logger("test")
    log.info("progress", tick=1)
    log.warning("settlement_timeout", generation=2, force_closed=4, policy="loss")
    log.warning("settlement_timeout", generation=3, force_closed=1, policy="loss")
    log.warning("something_else", detail="x")
    assert capsys.readouterr().err == ""  # nothing interrupts the run's output
    print_warnings(collector, Console())
    err = " ".join(capsys.readouterr().err.split())
    assert "warnings during the run (3)" in err
    assert "settlement_timeout (generation 2, 3): 5 position(s) were still open" in err
    assert "force-closed: booked as total losses" in err  # what the deadline policy did
    assert "warning: something_else: {'detail': 'x'}" in err
    assert "progress" not in err


def test_command_name_is_one_that_works_from_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evoarena.commands import _args

    script = tmp_path / "venv" / "bin" / "evoarena"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_args.sys, "argv", [str(script)])
    monkeypatch.setattr(_args.shutil, "which", lambda _name: None)
    assert _args.command_name() == "venv/bin/evoarena"  # not on PATH: the path that works
    monkeypatch.setattr(_args.shutil, "which", lambda _name: str(script))
    assert _args.command_name() == "evoarena"


def test_the_settlement_timeout_explanation_follows_the_deadline_policy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    collector = quiet_logs(argparse.Namespace(verbose=False), load_settings())
    structlog.get_logger("test").warning(
        "settlement_timeout", generation=0, force_closed=2, policy="last_bid"
    )
    print_warnings(collector, Console())
    err = " ".join(capsys.readouterr().err.split())
    assert "force-closed: sold at the last best bid" in err
    assert "total losses" not in err
