"""Tables the CLI prints: replay summaries and the hall of fame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evoarena.clock import iso_ms
from evoarena.evolution import persistence
from evoarena.replayer import ReplayReport


def _fmt_pct(x: Any) -> str:
    return f"{float(x):+.2f}%"


def _fmt_oos_fitness(e: dict[str, Any]) -> str:
    value = (e.get("out_of_sample") or {}).get("mean_fitness")
    return "-" if value is None else f"{float(value):+.2f}"


def print_replay_summary(report: ReplayReport, console: Console) -> None:
    """Per-generation table and run figures."""
    span = ""
    if report.first_ms is not None and report.last_ms is not None:
        hours = (report.last_ms - report.first_ms) / 3_600_000
        span = f"{iso_ms(report.first_ms)[:19]}Z → {iso_ms(report.last_ms)[:19]}Z ({hours:.1f} h)"
    speed = ""
    if report.first_ms is not None and report.last_ms is not None and report.wall_secs > 0:
        speed = f", {(report.last_ms - report.first_ms) / 1000 / report.wall_secs:,.0f}× real time"
    console.print(
        f"[bold]replay[/bold] {report.path}: {report.items:,} lines, {report.events:,} events, "
        f"{report.wall_secs:.1f} s wall{speed}" + (" (marked recording)" if report.marked else "")
    )
    if span:
        console.print(f"  virtual time {span}")
    if report.resumed_from is not None:
        console.print(f"  resumed after generation {report.resumed_from}")
    table = Table(title="generations")
    for col in (
        "gen",
        "best fit",
        "best ROI",
        "median ROI",
        "trades",
        "settled",
        "fees $",
        "active bots",
        "ticks",
        "luck p",
        "elites OOS ROI% stake",
    ):
        table.add_column(col, justify="right")
    for g in report.generations:
        s = g.stats
        table.add_row(
            str(g.generation),
            _fmt_pct(s["best_fitness"]),
            _fmt_pct(s["best_roi"]),
            _fmt_pct(s["median_roi"]),
            str(s["total_trades"]),
            str(s["settled_trades"]),
            f"{float(s['fees_paid']):.2f}",
            f"{s['active_bots']}/{s.get('population', '')}",
            str(g.ticks),
            _fmt_luck(s),
            _fmt_elites(s),
        )
    console.print(table)
    if report.generations:
        kind = report.generations[-1].stats.get("fitness", "roi")
        what = "ROI % on bankroll" if kind == "roi" else "95 % lower bound of ROI % on stake"
        console.print(
            f"  fitness ({kind}) = {what} of bots with enough settled trades "
            "(evolution.min_settled_trades); the others score the inactive penalty. "
            "All figures are in-sample (the window that scored them).\n"
            "  luck p = chance that no-skill bots reach a best result this good (* = edge); "
            "elites OOS = last generation's elites in this window, out-of-sample"
        )
        last = report.generations[-1].stats
        if "luck_oos_verdict" in last:
            console.print(
                f"  walk-forward luck test over {last['luck_oos_windows']} out-of-sample "
                f"window(s): p = {float(last['luck_oos_combined_p_value']):.3f}, "
                f"{last['luck_oos_verdict']}"
            )
    if report.incomplete_generation is not None:
        console.print(
            f"  generation {report.incomplete_generation} was still running when the recording "
            f"ended (tick {report.incomplete_tick}); its checkpoint is saved"
        )


def _fmt_luck(s: dict[str, Any]) -> str:
    p = s.get("luck_p_value")
    if p is None:
        return "-"
    return f"{float(p):.3f}" + ("*" if s.get("luck_verdict") == "edge" else "")


def _fmt_elites(s: dict[str, Any]) -> str:
    oos = s.get("carried_elites_oos") or {}
    value = oos.get("mean_roi_stake_pct")
    return "-" if value is None else _fmt_pct(value)


def print_hall_of_fame(state_dir: Path, console: Console, top: int = 5) -> bool:
    """The seed's leaderboard; returns False when there is no hall of fame yet."""
    hof = persistence.load_hall_of_fame(state_dir=state_dir)
    if hof is None:
        return False
    table = Table(title=f"hall of fame (top {top}) — {state_dir}")
    cols = ("rank", "genome", "gen", "IS fitness", "trades", "win rate", "P&L $", "OOS n")
    for col in (*cols, "OOS fitness", "signal"):
        table.add_column(col, justify="right" if col not in ("genome", "signal") else "left")
    for i, e in enumerate(hof.get("entries", [])[:top], start=1):
        table.add_row(
            str(i),
            str(e["genome"]["id"]),
            str(e["generation"]),
            f"{float(e['fitness_roi_pct']):+.2f}",
            str(e["total_trades"]),
            f"{float(e['win_rate']) * 100:.0f}%",
            f"{float(e['realized_pnl']):+.2f}",
            str((e.get("out_of_sample") or {}).get("n_windows", 0)),
            _fmt_oos_fitness(e),
            str(e["signal_type"]),
        )
    console.print(table)
    best = hof.get("best_ever")
    if best:
        console.print(
            f"  best ever: in-sample fitness {float(best['fitness_roi_pct']):+.2f} "
            f"(gen {best['generation']}, {best['signal_type']}, genome {best['genome']['id']}); "
            "IS = in the window that chose it, OOS = windows it traded after (mean)"
        )
    return True
