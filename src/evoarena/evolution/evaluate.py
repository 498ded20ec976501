"""Fixed genomes, window by window, on any recording: what ``evoarena evaluate`` measures.

The genomes trade the recording exactly as a replay would — the same replayer, book, bots,
settlement and schedule — but as a fixed population (no breeding, unchanged ids; see
:class:`~evoarena.evolution.runner.EvolutionRunner` with ``evolve=False``). Each generation of
that run is one *window*: ``generation_duration_secs`` of trading, then the settlement wait, the
next window starting when the previous one finished. A window still unfinished when the recording
ends is not counted. The per-window, per-bot results are the ``"results"`` the runner writes into
every generation file (:func:`~evoarena.evolution.stats.bot_result`); they are written to a
temporary state directory and summarized here:

* ``roi_bankroll_pct``: the window's P&L on the starting bankroll (the seeds' ROI) — ``mean``
  across windows with a 95 % Student-t interval (``ci95_low``/``ci95_high``, ``None`` with one
  window), ``worst`` and ``best`` window, and ``per_window``;
* ``roi_stake_pct``: total P&L over total stake of all windows (what a dollar bet returned);
* ``win_rate``: wins over closed positions (settled or force-closed), all windows pooled;
* ``fitness_mean``: the mean per-window fitness, comparable with the source's in-sample fitness.

Whether this is out-of-sample depends on what the genomes were chosen on, which the recording
cannot tell: :func:`sample_label` compares the recording's time span with the training windows
the source records and says what it can.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from evoarena.clock import iso_ms
from evoarena.errors import StateError, UserError
from evoarena.evolution import persistence
from evoarena.evolution.genome import Genome
from evoarena.evolution.genome_source import GenomeSource
from evoarena.evolution.islands import check_readable
from evoarena.replayer import ReplayProgress, ReplayReport, run_replay
from evoarena.settings import Settings

EVALUATE_FORMAT = 1

_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
"""Student-t 97.5 % quantiles for 1–30 degrees of freedom."""


def t975(df: int) -> float:
    """The two-sided 95 % Student-t quantile (table to 30 df, then ``1.96 + 2.37/df``)."""
    if df < 1:
        msg = f"degrees of freedom must be at least 1, was {df}"
        raise ValueError(msg)
    if df <= len(_T975):
        return _T975[df - 1]
    return 1.959964 + 2.37 / df


def _r(x: float) -> float:
    return round(float(x), 6) + 0.0


def mean_ci95(xs: Sequence[float]) -> tuple[float, float | None, float | None]:
    """``(mean, low, high)``: the mean and its 95 % t interval (``None`` for fewer than 2)."""
    if not xs:
        return 0.0, None, None
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, None, None
    half = t975(len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))
    return m, m - half, m + half


def summarize(
    genome_ids: Sequence[str], windows: Sequence[Sequence[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """One summary per genome (in ``genome_ids`` order) from per-window result lists.

    Each window is the generation file's ``"results"``: dicts with the keys of
    :func:`~evoarena.evolution.stats.bot_result`, matched to genomes by ``genome_id``.
    """
    out = []
    for gid in genome_ids:
        rows = [_find(w, gid, i) for i, w in enumerate(windows)]
        rois = [float(r["roi_bankroll_pct"]) for r in rows]
        mean, low, high = mean_ci95(rois)
        stake = sum(float(r["stake_usd"]) for r in rows)
        pnl = sum(float(r["pnl_usd"]) for r in rows)
        closed = sum(int(r["settled"]) + int(r["force_closed"]) for r in rows)
        wins = sum(int(r["wins"]) for r in rows)
        out.append(
            {
                "genome_id": gid,
                "gene_hash": rows[0]["gene_hash"] if rows else None,
                "windows": len(rows),
                "trades": sum(int(r["trades"]) for r in rows),
                "settled": sum(int(r["settled"]) for r in rows),
                "wins": wins,
                "force_closed": sum(int(r["force_closed"]) for r in rows),
                "stake_usd": _r(stake),
                "fees_usd": _r(sum(float(r["fees_usd"]) for r in rows)),
                "pnl_usd": _r(pnl),
                "roi_bankroll_pct": {
                    "mean": _r(mean),
                    "ci95_low": None if low is None else _r(low),
                    "ci95_high": None if high is None else _r(high),
                    "worst": _r(min(rois)) if rois else None,
                    "best": _r(max(rois)) if rois else None,
                    "per_window": [_r(x) for x in rois],
                },
                "roi_stake_pct": _r(100.0 * pnl / stake) if stake > 0 else None,
                "win_rate": _r(wins / closed) if closed else None,
                "fitness_mean": _r(statistics.fmean(float(r["fitness"]) for r in rows))
                if rows
                else None,
            }
        )
    return out


def _find(window: Sequence[dict[str, Any]], gid: str, index: int) -> dict[str, Any]:
    for row in window:
        if row.get("genome_id") == gid:
            return row
    msg = f"window {index}: no result for genome {gid}"
    raise StateError(msg)


def sample_label(source: GenomeSource, first_ms: int | None, last_ms: int | None) -> dict[str, Any]:
    """What the evaluation is, as far as the files can tell.

    ``label`` is ``out-of-sample`` when the source records its training windows and the
    recording's span overlaps none of them, ``overlaps training`` when it overlaps some (the
    same data would make these in-sample figures), and ``unknown`` when the source records no
    training windows (a JSON file of genomes, a merged hall of fame).
    """
    windows = source.training_windows
    span = None
    label, overlapping = "unknown", 0
    if first_ms is not None and last_ms is not None:
        span = [iso_ms(first_ms), iso_ms(last_ms)]
        if windows:
            overlapping = sum(1 for s, e in windows if _ms(s) <= last_ms and _ms(e) >= first_ms)
            label = "overlaps training" if overlapping else "out-of-sample"
    return {
        "label": label,
        "recording_span": span,
        "training_windows": len(windows),
        "overlapping_training_windows": overlapping,
    }


def _ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


@dataclass(slots=True)
class PartResult:
    """One group of genomes evaluated over the recordings (plain data: it crosses processes)."""

    windows: list[dict[str, Any]]
    """Per finished window: its times and figures, and ``results`` (one row per genome)."""
    first_ms: int | None
    last_ms: int | None
    bad_lines: int
    unfinished: dict[str, int] | None


def evaluate_part(
    recordings: Sequence[Path],
    settings: Settings,
    genomes: Sequence[Genome],
    skip_bad: bool = False,
    on_progress: Callable[[ReplayProgress], None] | None = None,
) -> PartResult:
    """``genomes`` as a fixed population over ``recordings``, in a temporary state directory.

    Windows are fixed, and each bot's draws depend only on the seed, the window and its genome
    id, so a genome's rows do not depend on which genomes share its part (what lets
    :func:`evaluate_genomes` fan parts out to Ray workers).
    """
    check_readable(recordings)  # on a Ray worker, the message says which
    with tempfile.TemporaryDirectory(prefix="evoarena-evaluate-") as tmp:
        # Fixed windows (trading + the whole settlement wait): with the seeds' early end a
        # window would last until every genome evaluated with it had settled, so one genome's
        # results would depend on the others'.
        run_settings = settings.model_copy(
            update={
                "state": settings.state.model_copy(update={"dir": Path(tmp)}),
                "trading": settings.trading.model_copy(
                    update={"settlement_wait_ends_early": False}
                ),
            }
        )
        report = run_replay(
            list(recordings),
            run_settings,
            skip_bad=skip_bad,
            seed_genomes=list(genomes),
            evolve=False,
            on_progress=on_progress,
        )
        windows = [_window(Path(tmp), g.generation) for g in report.generations]
    return PartResult(
        windows, report.first_ms, report.last_ms, report.bad_lines, _unfinished(report)
    )


FanOut = Callable[[list[tuple[Any, ...]]], list[PartResult]]
"""Runs :func:`evaluate_part` on each argument tuple (elsewhere), results in order."""


def split(genomes: Sequence[Genome], parts: int) -> list[list[Genome]]:
    """``genomes`` in at most ``parts`` contiguous groups of near-equal size (none empty)."""
    n = max(1, min(parts, len(genomes)))
    size, extra = divmod(len(genomes), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(list(genomes[start:end]))
        start = end
    return out


def merge_parts(parts: Sequence[PartResult]) -> PartResult:
    """The parts' windows as one population's: rows concatenated in part order, ``force_closed``
    summed; the windows' times must agree (:class:`StateError` otherwise)."""
    first = parts[0]
    merged = []
    for i, window in enumerate(first.windows):
        rows: list[dict[str, Any]] = []
        force_closed = 0
        for part in parts:
            if len(part.windows) != len(first.windows):
                msg = "evaluation parts finished different numbers of windows"
                raise StateError(msg)
            other = part.windows[i]
            same = ("window", "trading_start", "trading_end", "finished", "markets")
            if any(other[k] != window[k] for k in same):
                msg = f"window {i}: evaluation parts disagree on the window's times or markets"
                raise StateError(msg)
            rows.extend(other["results"])
            force_closed += int(other["force_closed"] or 0)
        merged.append({**window, "force_closed": force_closed, "results": rows})
    return PartResult(merged, first.first_ms, first.last_ms, first.bad_lines, first.unfinished)


def evaluate_genomes(
    recordings: Sequence[Path],
    settings: Settings,
    source: GenomeSource,
    *,
    skip_bad: bool = False,
    on_progress: Callable[[ReplayProgress], None] | None = None,
    parts: int = 1,
    fan_out: FanOut | None = None,
) -> dict[str, Any]:
    """Trade ``source.genomes`` over ``recordings``; the ``evaluate --json`` object.

    With ``fan_out``, the genomes are split into ``parts`` groups evaluated by it (Ray tasks,
    :mod:`evoarena.raypool`); the result is the same as in one process. The recordings stay
    together: they are one feed whose windows run across file boundaries.
    """
    if fan_out is None:
        part = evaluate_part(recordings, settings, source.genomes, skip_bad, on_progress)
    else:
        calls = [
            ([Path(p).absolute() for p in recordings], settings, group, skip_bad)
            for group in split(source.genomes, parts)
        ]
        part = merge_parts(fan_out(calls))
    windows = part.windows
    if not windows:
        span = (
            "no market data"
            if part.first_ms is None or part.last_ms is None
            else f"{(part.last_ms - part.first_ms) / 3_600_000:.1f} h of data"
        )
        msg = (
            f"{recordings[0]}: no complete window ({span}; a window is "
            f"[trading] generation_duration_secs = {settings.trading.generation_duration_secs} "
            "plus its settlement); use a longer recording or shorter windows (--config)"
        )
        raise UserError(msg)
    ids = [g.id for g in source.genomes]
    summaries = summarize(ids, [w["results"] for w in windows])
    genomes = []
    for rank, (g, fit, summary) in enumerate(
        zip(source.genomes, source.in_sample_fitness, summaries, strict=True), start=1
    ):
        genomes.append(
            {
                "rank": rank,
                "signal_type": g.decode().signal_type,
                "in_sample_fitness": fit,
                **summary,
                "genome": g.to_dict(),
            }
        )
    t = settings.trading
    return {
        "evaluate": EVALUATE_FORMAT,
        "recordings": [str(p) for p in recordings],
        "source": {"path": str(source.path), "kind": source.kind},
        "sample": sample_label(source, part.first_ms, part.last_ms),
        "window_secs": t.generation_duration_secs,
        "settlement_wait_secs": t.settlement_wait_secs,
        "seed": settings.evolution.seed,
        "windows": [{k: v for k, v in w.items() if k != "results"} for w in windows],
        "unfinished_window": part.unfinished,
        "bad_lines": part.bad_lines,
        "genomes": genomes,
    }


def _window(state_dir: Path, generation: int) -> dict[str, Any]:
    doc = persistence.load_generation(generation, state_dir=state_dir)
    if doc is None or not isinstance(doc.get("results"), list):
        msg = f"window {generation}: the generation file has no per-bot 'results'"
        raise StateError(msg)
    stats = doc["stats"]
    return {
        "window": generation,
        "trading_start": stats.get("trading_start"),
        "trading_end": stats.get("trading_end"),
        "finished": stats.get("finished"),
        "markets": stats.get("markets"),
        "force_closed": stats.get("force_closed"),
        "results": doc["results"],
    }


def _unfinished(report: ReplayReport) -> dict[str, int] | None:
    if report.incomplete_generation is None:
        return None
    return {"window": report.incomplete_generation, "ticks": report.incomplete_tick or 0}
