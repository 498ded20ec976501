"""Tables the CLI prints: replay summaries and the hall of fame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console, JustifyMethod
from rich.table import Table

from evoarena.clock import iso_ms
from evoarena.evolution import persistence
from evoarena.replayer import ReplayReport
from evoarena.settings import Settings, load_settings


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
    # No box and two-line headers so the table fits 80 columns.
    table = Table(title="generations", box=None, pad_edge=False)
    for col in (
        "gen",
        "best\nfitness",
        "best\nROI %",
        "median\nROI %",
        "trades",
        "settled",
        "fees $",
        "active\nbots",
        "ticks",
    ):
        table.add_column(col, justify="right", no_wrap=True, header_style="bold")
    for g in report.generations:
        s = g.stats
        table.add_row(
            str(g.generation),
            f"{float(s['best_fitness']):+.2f}",
            f"{float(s['best_roi']):+.2f}",
            f"{float(s['median_roi']):+.2f}",
            str(s["total_trades"]),
            str(s["settled_trades"]),
            f"{float(s['fees_paid']):.2f}",
            f"{s['active_bots']}/{s.get('population', '')}",
            str(g.ticks),
        )
    console.print(table)
    if report.generations:
        console.print(
            "  ROI % = realized P&L / starting bankroll (in-sample); fitness = that ROI for "
            "bots with at least [evolution] min_settled_trades settled trades, the inactive "
            "penalty for the others",
            markup=False,
        )
    if report.incomplete_generation is not None:
        console.print(
            f"  generation {report.incomplete_generation} was still running when the recording "
            f"ended (tick {report.incomplete_tick}); its checkpoint is saved"
        )


def roi_on_bankroll(entry: dict[str, Any], bankroll_usd: float) -> float:
    """An entry's ROI % on its starting bankroll (recorded, or from its P&L)."""
    recorded = entry.get("roi_bankroll_pct")
    if isinstance(recorded, int | float) and not isinstance(recorded, bool):
        return float(recorded)
    return 100.0 * float(entry.get("realized_pnl", 0.0)) / bankroll_usd


def best_ever_line(best: dict[str, Any], settings: Settings) -> str:
    """The hall of fame's best entry, fitness and ROI named apart (inactive bots said so)."""
    ev = settings.evolution
    fitness = float(best["fitness_roi_pct"])
    roi = roi_on_bankroll(best, float(ev.initial_bankroll_usd))
    line = (
        f"best ever: genome {best['genome']['id']} (gen {best['generation']}, "
        f"{best['signal_type']}): fitness {fitness:+.2f}, ROI on bankroll {roi:+.2f}%, "
        f"{best.get('settled_trades', 0)} settled trade(s)"
    )
    if int(best.get("settled_trades", 0)) < ev.min_settled_trades:
        line += (
            f" — no bot reached {ev.min_settled_trades} settled trades, so every fitness is "
            f"the inactive penalty ({ev.inactive_penalty_roi_pct:+.2f})"
        )
    return line


def print_hall_of_fame(
    state_dir: Path, console: Console, top: int = 5, settings: Settings | None = None
) -> bool:
    """The seed's leaderboard; returns False when there is no hall of fame yet."""
    hof = persistence.load_hall_of_fame(state_dir=state_dir)
    if hof is None:
        return False
    settings = settings if settings is not None else load_settings()
    bankroll = float(settings.evolution.initial_bankroll_usd)
    table = Table(title=f"hall of fame (top {top}) — {state_dir}", box=None, pad_edge=False)
    for col in ("#", "genome", "gen", "fitness", "ROI %", "trades", "win", "P&L $", "signal"):
        justify: JustifyMethod = "left" if col in ("genome", "signal") else "right"
        table.add_column(col, justify=justify, no_wrap=True, header_style="bold")
    for i, e in enumerate(hof.get("entries", [])[:top], start=1):
        table.add_row(
            str(i),
            str(e["genome"]["id"]),
            str(e["generation"]),
            f"{float(e['fitness_roi_pct']):+.2f}",
            f"{roi_on_bankroll(e, bankroll):+.2f}",
            str(e["total_trades"]),
            f"{float(e['win_rate']) * 100:.0f}%",
            f"{float(e['realized_pnl']):+.2f}",
            str(e["signal_type"]),
        )
    console.print(table)
    best = hof.get("best_ever")
    if best:
        console.print("  " + best_ever_line(best, settings))
    return True
