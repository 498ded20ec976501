"""``evoarena status``: how the live service is doing, from its status file.

Exit codes: 0 running and healthy; 1 unhealthy, looks dead, stopped, or no status file yet;
2 the status file is unreadable.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from evoarena.commands._args import add_config_argument, add_state_dir_argument
from evoarena.errors import StateError, UserError
from evoarena.observe.status import STATUS_FILE, judge, read_status
from evoarena.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``status`` sub-command."""
    p = sub.add_parser(
        "status",
        help="show how the live service is doing (from DIR/status.json)",
        description="Read the status file the live service rewrites at every heartbeat and say "
        "whether it is running and healthy, unhealthy (stale feed, late ticks), stopped, or "
        "looks dead (no heartbeat for three intervals).",
    )
    add_config_argument(p)
    add_state_dir_argument(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="print the verdict and the status file as JSON (default: text)",
    )
    p.set_defaults(handler=_handle)


def _dur(secs: float | None) -> str:
    if secs is None:
        return "?"
    if secs >= 3600:
        return f"{secs / 3600:.1f} h"
    if secs >= 60:
        return f"{secs / 60:.0f} min"
    return f"{secs:.1f} s"


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    state_dir = Path(settings.state.dir)
    try:
        doc = read_status(state_dir)
    except StateError as e:
        raise UserError(str(e)) from e
    if doc is None:
        print(
            f"evoarena: no {STATUS_FILE} in {state_dir}: the live service (`evoarena run`) has "
            "not started there",
            file=sys.stderr,
        )
        return 1
    verdict = judge(doc, now_wall_ms=time.time_ns() // 1_000_000, host=socket.gethostname())
    if args.json:
        out = {
            "verdict": verdict.state,
            "summary": verdict.summary,
            "age_secs": verdict.age_secs,
            "status": doc,
        }
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print(doc, verdict.summary, state_dir)
    return 0 if verdict.state == "running" else 1


def _print(doc: dict[str, Any], summary: str, state_dir: Path) -> None:
    feed = doc.get("feed") or {}
    total = doc.get("total_ticks")
    print(f"evoarena status — {state_dir} (host {doc.get('host')}, pid {doc.get('pid')})")
    print(f"  {summary}")
    print(
        f"  generation {doc.get('generation')} ({doc.get('mode')}), {doc.get('phase')}, "
        f"tick {doc.get('tick')}/{total if total is not None else '?'}, "
        f"{_dur(doc.get('time_left_secs'))} left in this phase (until {doc.get('phase_ends_at')})"
    )
    print(
        f"  open positions {doc.get('open_positions')}, markets {doc.get('markets')}, "
        f"generations finished by this process {doc.get('generations_completed')}"
    )
    print(
        f"  feed: {feed.get('frames_per_sec')} frames/s, {feed.get('stale_books')} stale books, "
        f"{feed.get('reconnects')} reconnects, last frame {_dur(feed.get('last_frame_age_secs'))} "
        f"ago (at the last heartbeat, {doc.get('written_at')})"
    )
    if doc.get("metrics_port") is not None:
        print(f"  metrics: http://<host>:{doc['metrics_port']}/metrics and /healthz")
