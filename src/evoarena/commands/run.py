"""``evoarena run``: the live service (paper trading against Kalshi's real order books)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import structlog

from evoarena.clock import Clock, ScaledClock, SystemClock, ms_to_datetime
from evoarena.commands._args import (
    add_config_argument,
    add_seed_genomes_argument,
    add_state_dir_argument,
    seed_genomes,
)
from evoarena.errors import AuthError, UserError
from evoarena.evolution.genome import Genome
from evoarena.evolution.genome_source import load_genomes
from evoarena.feeds.recording import RecordingWriter, sibling_path
from evoarena.settings import Settings, decision_settings
from evoarena.statedir import state_dir_lock

if TYPE_CHECKING:
    from evoarena.feeds.kalshi.auth import Signer
    from evoarena.supervisor import Outcome

# The live-only stack (httpx, websockets, cryptography, the supervisor) is imported when the
# command runs, so ``replay``, ``inspect`` and the rest of the CLI never load it.

log = structlog.get_logger(__name__)

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` sub-command."""
    p = sub.add_parser(
        "run",
        help="run the live service: evolve paper-trading bots on Kalshi's live order books",
        description="Discover Kalshi markets, follow their order books over the WebSocket and "
        "evolve the population generation after generation, saving state in the state "
        "directory (resumed on restart). Paper trading only: no order is ever sent. "
        "Credentials: KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PATH (or KALSHI_PRIVATE_KEY).",
    )
    add_config_argument(p)
    add_state_dir_argument(p)
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the evolution (first population and breeding) (default: [evolution] seed)",
    )
    p.add_argument(
        "--record",
        type=Path,
        default=None,
        metavar="FILE",
        help="record every frame and REST response (and the instants the service "
        "acted) to FILE (.jsonl or .jsonl.gz) for `evoarena replay`; overrides "
        "[record] path (default: [record] path, empty = no recording)",
    )
    p.add_argument(
        "--generations",
        type=int,
        default=None,
        metavar="N",
        help="stop after N generations (default: run until stopped)",
    )
    add_seed_genomes_argument(p)
    p.add_argument(
        "--genomes",
        type=Path,
        default=None,
        metavar="SOURCE",
        help="shadow trading (with --no-evolve): paper-trade these genomes every generation "
        "instead of evolving; SOURCE is a state directory (its hall of fame), a gen_NNNN.json, "
        "or a JSON file of genomes such as `evoarena hof --json` prints (default: none)",
    )
    p.add_argument(
        "--top",
        type=int,
        default=None,
        metavar="N",
        help="with --genomes: only the best N of SOURCE (default: all)",
    )
    p.add_argument(
        "--no-evolve",
        action="store_true",
        help="breed nothing: the --genomes population trades unchanged, generation after "
        "generation, with the usual state files, status and report (default: evolve)",
    )
    p.add_argument(
        "--time-scale", type=float, default=1.0, metavar="X", help=argparse.SUPPRESS
    )  # tests against a loopback fake Kalshi only
    p.set_defaults(handler=_handle)


def _clock(settings: Settings, scale: float) -> Clock:
    if scale == 1.0:
        return SystemClock()
    if scale <= 0:
        raise UserError(f"--time-scale must be positive, got {scale:g}")
    hosts = {
        urlsplit(settings.kalshi.effective_rest_url).hostname,
        urlsplit(settings.kalshi.effective_ws_url).hostname,
    }
    if not hosts <= _LOOPBACK:
        raise UserError(
            "--time-scale is only for a fake Kalshi on 127.0.0.1 (signatures would "
            "carry a wrong time)"
        )
    return ScaledClock(scale)


def _recorder(settings: Settings, path: Path | None, clock: Clock) -> RecordingWriter | None:
    target = (
        path if path is not None else (Path(settings.record.path) if settings.record.path else None)
    )
    if target is None:
        return None
    target = _fresh_path(target, clock.now_ms())
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{target.parent}: cannot create the recording directory: {e}") from e
    try:
        return RecordingWriter(
            target,
            "kalshi",
            clock.now_ms(),
            marks=True,
            rest_url=settings.kalshi.effective_rest_url,
            ws_url=settings.kalshi.effective_ws_url,
            settings=decision_settings(settings),
        )
    except OSError as e:
        raise UserError(f"{target}: cannot create the recording: {e.strerror or e}") from e


def _fresh_path(path: Path, now_ms: int) -> Path:
    """``path``, or — when a previous run left a recording there — a timestamped sibling.

    A restarted service must never overwrite the recording of the run before it.
    """
    if not path.exists():
        return path
    return sibling_path(path, "-" + ms_to_datetime(now_ms).strftime("%Y%m%dT%H%M%SZ"))


def shadow_genomes(args: argparse.Namespace) -> list[Genome] | None:
    """The genomes of ``--genomes SOURCE --no-evolve`` (``None``: an evolving run)."""
    if args.genomes is None and not args.no_evolve:
        if args.top is not None:
            raise UserError("--top only applies with --genomes SOURCE")
        return None
    if args.genomes is None:
        raise UserError("--no-evolve needs --genomes SOURCE: the genomes to paper-trade")
    if not args.no_evolve:
        raise UserError(
            "--genomes SOURCE trades those genomes without breeding: add --no-evolve "
            "(shadow trading)"
        )
    return load_genomes(args.genomes, args.top)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    if args.generations is not None and args.generations < 1:
        raise UserError("--generations must be at least 1")
    genomes = shadow_genomes(args)
    if genomes is not None and args.seed_genomes is not None:
        raise UserError(
            "--seed-genomes starts an evolving run; --genomes --no-evolve trades fixed genomes: "
            "choose one"
        )
    import anyio  # the live stack, imported only when the service runs

    from evoarena.feeds.kalshi.auth import load_signer

    clock = _clock(settings, args.time_scale)
    seeds = seed_genomes(args, settings)
    try:
        signer = load_signer()
    except AuthError as e:  # missing or unreadable credentials: the user's to fix, exit 2
        raise UserError(str(e)) from e
    with state_dir_lock(Path(settings.state.dir)):
        recorder = _recorder(settings, args.record, clock)
        outcome = anyio.run(
            _serve, settings, clock, signer, recorder, args.generations, seeds, genomes
        )
    if outcome.exit_code != 0:
        print(f"evoarena: {outcome.reason}: {outcome.message}", file=sys.stderr)
    return outcome.exit_code


async def _serve(
    settings: Settings,
    clock: Clock,
    signer: Signer,
    recorder: RecordingWriter | None,
    generations: int | None,
    seeds: list[Genome] | None = None,
    genomes: list[Genome] | None = None,
) -> Outcome:
    import httpx

    from evoarena.feeds.kalshi.feed import KalshiFeed
    from evoarena.observe.live import LiveMonitor, bind_metrics
    from evoarena.supervisor import Supervisor

    timeout = httpx.Timeout(settings.kalshi.request_timeout_secs)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
        feed = KalshiFeed(settings.kalshi, settings.trading, clock, http, signer, recorder=recorder)
        log.info(
            "service_starting",
            rest_url=settings.kalshi.effective_rest_url,
            ws_url=settings.kalshi.effective_ws_url,
            state_dir=str(settings.state.dir),
            population=settings.evolution.population_size,
            recording=str(recorder.path) if recorder is not None else None,
            paper_trading_only=True,
            shadow_genomes=None if genomes is None else [g.id for g in genomes],
        )
        mode = "evolve" if genomes is None else "shadow"
        listener = await bind_metrics(settings)
        monitor = LiveMonitor(settings, clock, mode=mode, listener=listener)
        supervisor = Supervisor(
            settings,
            feed,
            clock,
            recorder=recorder,
            max_generations=generations,
            seed_genomes=seeds if genomes is None else genomes,
            evolve=genomes is None,
            monitor=monitor,
        )
        return await supervisor.run()
