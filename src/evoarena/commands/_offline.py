"""What the offline commands (replay, demo, synth) share: progress bars and deferred warnings.

Progress bars (percentage, rate, elapsed and ETA) show on a terminal only. Warnings logged during
an offline run are collected and printed *after* the tables, each with what it means, so they do
not interrupt the output (``--verbose`` logs everything as it happens instead).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from evoarena.clock import iso_ms
from evoarena.logs import configure_logging
from evoarena.replayer import ReplayProgress, ReplayReport, run_replay
from evoarena.settings import Settings


class WarningCollector:
    """A structlog processor keeping warnings and errors for later (and dropping the line)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, _logger: object, method: str, event_dict: Any) -> Any:
        self.events.append({"level": method, **dict(event_dict)})
        raise structlog.DropEvent


def quiet_logs(args: argparse.Namespace, settings: Settings) -> WarningCollector | None:
    """Unless ``--verbose``: collect warnings for :func:`print_warnings`; info logs are dropped."""
    if getattr(args, "verbose", False):
        configure_logging(settings.log.level, settings.log.format)
        return None
    collector = WarningCollector()
    structlog.configure(
        processors=[collector],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=False,
    )
    return collector


def _settlement_timeout(events: list[dict[str, Any]]) -> str:
    gens = sorted({e.get("generation") for e in events}, key=str)
    closed = sum(int(e.get("force_closed", 0) or 0) for e in events)
    how = (
        "sold at the last best bid seen while their market traded ([trading] deadline_policy "
        '= "last_bid")'
        if {e.get("policy") for e in events} == {"last_bid"}
        else "booked as total losses (the seeds' rule; [trading] deadline_policy = "
        '"last_bid" sells them at the last best bid instead)'
    )
    return (
        f"settlement_timeout (generation {', '.join(map(str, gens))}): {closed} position(s) "
        f"were still open at the settlement deadline and were force-closed: {how}. Bots only "
        "buy markets closing [trading] settlement_margin_secs before the deadline, so these "
        "are markets whose close was postponed or whose result came late; `evoarena history` "
        "shows them per generation. A longer [trading] settlement_wait_secs lets them settle "
        "on their real outcome."
    )


_EXPLAIN: dict[str, Callable[[list[dict[str, Any]]], str]] = {
    "settlement_timeout": _settlement_timeout,
    "replay_resumes_existing_state": lambda ev: (
        "replay_resumes_existing_state: the state directory already held generations "
        f"(latest {ev[0].get('latest_generation')}); this replay bred on from them. Use an "
        "empty --state-dir to start from generation 0."
    ),
}


def print_warnings(collector: WarningCollector | None, console: Console) -> None:
    """The collected warnings, grouped by kind, each explained (after the tables)."""
    if collector is None or not collector.events:
        return
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in collector.events:
        by_kind[str(e.get("event"))].append(e)
    err = Console(file=sys.stderr, highlight=False, soft_wrap=False)
    err.print(f"[bold]warnings during the run[/bold] ({len(collector.events)}):")
    for kind, events in by_kind.items():
        explain = _EXPLAIN.get(kind)
        if explain is not None:
            err.print(f"  {explain(events)}", markup=False)
            continue
        first = {k: v for k, v in events[0].items() if k not in ("event", "level")}
        more = f" (×{len(events)})" if len(events) > 1 else ""
        err.print(f"  {events[0].get('level')}: {kind}{more}: {first}", markup=False)
    _ = console


def _bar(console: Console, *fields: TextColumn) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        *fields,
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@contextmanager
def replay_progress(
    console: Console, recordings: Sequence[Path], *, show: bool, label: str = "replay"
) -> Iterator[Callable[[ReplayProgress], None] | None]:
    """An ``on_progress`` callback for replay-driven runs (replay, demo, evaluate) driving a
    bar by bytes read; ``None`` when not shown."""
    if not show:
        yield None
        return
    total = sum(p.stat().st_size for p in recordings)
    with _bar(
        console, TextColumn("gen {task.fields[gen]}"), TextColumn("{task.fields[vtime]}")
    ) as bar:
        task = bar.add_task(label, total=total, gen=0, vtime="")

        def update(p: ReplayProgress) -> None:
            bar.update(
                task,
                completed=p.bytes_read,
                gen=p.generation,
                vtime=iso_ms(p.virtual_ms)[:16] + "Z",
            )

        yield update


def replay_with_progress(
    recordings: Sequence[Path],
    settings: Settings,
    console: Console,
    *,
    show: bool,
    skip_bad: bool = False,
    max_generations: int | None = None,
    **options: Any,
) -> ReplayReport:
    """:func:`run_replay`, with a progress bar (by bytes read) when ``show``; ``options`` are
    :func:`run_replay`'s other keyword arguments."""
    with replay_progress(console, recordings, show=show) as update:
        return run_replay(
            list(recordings),
            settings,
            skip_bad=skip_bad,
            max_generations=max_generations,
            on_progress=update,
            **options,
        )


@contextmanager
def synth_progress(console: Console, *, show: bool) -> Iterator[Callable[[float], None] | None]:
    """A callback for ``generate_day(on_progress=...)`` driving a bar (``None`` when not shown)."""
    if not show:
        yield None
        return
    with _bar(console) as bar:
        task = bar.add_task("synth", total=1.0)
        yield lambda fraction: bar.update(task, completed=fraction)
