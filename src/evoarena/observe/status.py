"""The live service's vital signs: health rules, the status file, and judging a status file.

``status.json`` (in the state directory) is rewritten atomically at every heartbeat, at start
and at stop. Fields (``None`` where unknown)::

    schema_version, service ("evoarena"), state ("running" | "stopped"), mode ("evolve" |
    "shadow"), pid, host, written_at (ISO, service clock), written_wall_ms (real wall time, ms),
    heartbeat_wall_secs (real seconds between writes), generation, phase, tick, total_ticks,
    phase_ends_at (ISO), time_left_secs, open_positions, markets, generations_completed,
    feed {frames_total, frames_per_sec, stale_books, reconnects, last_frame_age_secs},
    health {ok, problems [text]}, exit {code, reason, message} (once stopped)

A reader judges a status file by its age on the wall clock: a "running" file not rewritten for
three heartbeats (plus 10 s) means the service is hung or gone.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from evoarena.evolution.persistence import read_json_object

STATUS_FILE = "status.json"
SCHEMA_VERSION = 1
DEAD_AFTER_HEARTBEATS = 3
DEAD_SLACK_SECS = 10.0


@dataclass(frozen=True, slots=True)
class Vitals:
    """What the service knows about itself at one instant (service-clock milliseconds)."""

    now_ms: int
    started: bool
    last_frame_ms: int | None
    next_due_ms: int | None


def health_problems(v: Vitals, *, feed_stale_secs: float, tick_late_secs: float) -> list[str]:
    """Why the service is unhealthy (empty: healthy).

    Healthy = started, a market-data frame within ``feed_stale_secs``, and the scheduler not
    more than ``tick_late_secs`` behind its next due action (a tick, a settlement poll).
    """
    if not v.started:
        return ["starting: waiting for the first order books"]
    out = []
    if v.last_frame_ms is None:
        out.append("feed stale: no market-data frame received yet")
    else:
        age = (v.now_ms - v.last_frame_ms) / 1000
        if age > feed_stale_secs:
            out.append(f"feed stale: last frame {age:.0f} s ago (limit {feed_stale_secs:g} s)")
    if v.next_due_ms is not None:
        late = (v.now_ms - v.next_due_ms) / 1000
        if late > tick_late_secs:
            out.append(
                f"ticks late: next action was due {late:.0f} s ago (limit {tick_late_secs:g} s)"
            )
    return out


def write_status(state_dir: Path, doc: Mapping[str, Any]) -> None:
    """Atomically replace ``status.json``: temp file, fsync, rename (``OSError`` on trouble).

    The directory is not fsynced: a status lost in a power cut is rewritten at the next beat.
    """
    data = orjson.dumps(
        {"schema_version": SCHEMA_VERSION, **doc},
        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE,
    )
    path = state_dir / STATUS_FILE
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_status(state_dir: Path) -> dict[str, Any] | None:
    """The status file's content, ``None`` if there is none; :class:`StateError` if unreadable."""
    return read_json_object(state_dir / STATUS_FILE)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What ``evoarena status`` concludes from a status file."""

    state: str
    """``running`` (alive and healthy), ``unhealthy`` (alive, problems), ``dead``, ``stopped``."""
    age_secs: float
    summary: str


def _pid_gone(doc: Mapping[str, Any], host: str) -> bool:
    pid = doc.get("pid")
    if doc.get("host") != host or not isinstance(pid, int) or pid <= 0:
        return False  # another machine or container: the age alone decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def judge(doc: Mapping[str, Any], *, now_wall_ms: int, host: str) -> Verdict:
    """Alive, unhealthy, dead or stopped, from a status file read at ``now_wall_ms``."""
    written = doc.get("written_wall_ms")
    age = (now_wall_ms - written) / 1000 if isinstance(written, int | float) else float("inf")
    if doc.get("state") == "stopped":
        ex = doc.get("exit") or {}
        return Verdict(
            "stopped",
            age,
            f"not running: stopped {age:.0f} s ago, exit {ex.get('code')} ({ex.get('reason')})"
            + (f": {ex['message']}" if ex.get("message") else ""),
        )
    hb = doc.get("heartbeat_wall_secs")
    hb = float(hb) if isinstance(hb, int | float) and hb > 0 else 60.0
    limit = DEAD_AFTER_HEARTBEATS * hb + DEAD_SLACK_SECS
    if age > limit:
        return Verdict(
            "dead",
            age,
            f"looks dead: no heartbeat for {age:.0f} s (expected every {hb:g} s); the process "
            "is hung or gone — check `systemctl status evoarena` / `docker ps`",
        )
    if _pid_gone(doc, host):
        return Verdict("dead", age, f"looks dead: process {doc.get('pid')} is gone")
    problems = (doc.get("health") or {}).get("problems") or []
    if problems:
        return Verdict("unhealthy", age, "running but unhealthy: " + "; ".join(map(str, problems)))
    return Verdict("running", age, f"running and healthy (heartbeat {age:.0f} s ago)")
