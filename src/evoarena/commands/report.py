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
    # No box, one space between columns and short headers so the table fits 80 columns.
    table = Table(
        title="generations", box=None, pad_edge=False, padding=(0, 1), collapse_padding=True
    )
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
        "luck\np",
        "elites\nOOS %\nstake",
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
            _fmt_luck(s),
            _fmt_elites(s),
        )
    console.print(table)
    if report.generations:
        kind = report.generations[-1].stats.get("fitness", "roi")
        what = "ROI % on bankroll" if kind == "roi" else "95 % lower bound of ROI % on stake"
        console.print(
            f"  fitness ({kind}) = {what} of bots with enough settled trades",
            markup=False,
        )
        for line in (
            "    ([evolution] min_settled_trades); the others score the inactive penalty.",
            "  ROI % = realized P&L / starting bankroll. All figures are in-sample (the",
            "    window that scored them), except elites OOS: last generation's elites,",
            "    trading this window unchanged (out-of-sample), mean ROI % on stake.",
            "  luck p = chance that no-skill bots reach a best result this good (* = edge).",
        ):
            console.print(line, markup=False)
        last = report.generations[-1].stats
        if "luck_oos_verdict" in last:
            console.print(
                f"  walk-forward luck test over {last['luck_oos_windows']} out-of-sample "
                f"window(s): p = {float(last['luck_oos_combined_p_value']):.3f}, "
                f"{last['luck_oos_verdict']}",
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


def _fmt_luck(s: dict[str, Any]) -> str:
    p = s.get("luck_p_value")
    if p is None:
        return "-"
    return f"{float(p):.3f}" + ("*" if s.get("luck_verdict") == "edge" else "")


def _fmt_elites(s: dict[str, Any]) -> str:
    oos = s.get("carried_elites_oos") or {}
    value = oos.get("mean_roi_stake_pct")
    return "-" if value is None else f"{float(value):+.2f}"


SHORT_SIGNAL = {
    "price_level": "level",
    "momentum": "moment",
    "mean_reversion": "mrev",
    "value": "value",
    "contrarian": "contra",
}
"""Signal names shortened so that tables fit 80 columns."""


def print_hall_of_fame(
    state_dir: Path, console: Console, top: int = 5, settings: Settings | None = None
) -> bool:
    """The seed's leaderboard; returns False when there is no hall of fame yet."""
    hof = persistence.load_hall_of_fame(state_dir=state_dir)
    if hof is None:
        return False
    settings = settings if settings is not None else load_settings()
    bankroll = float(settings.evolution.initial_bankroll_usd)
    table = Table(
        title=f"hall of fame (top {top}) — {state_dir}",
        box=None,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    cols = ("#", "genome", "gen", "IS\nfitness", "IS\nROI %", "IS\ntrades", "IS\nwin")
    for col in (*cols, "IS\nP&L $", "OOS\nn", "OOS\nfitness", "signal"):
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
            str((e.get("out_of_sample") or {}).get("n_windows", 0)),
            _fmt_oos_fitness(e),
            SHORT_SIGNAL.get(str(e["signal_type"]), str(e["signal_type"])),
        )
    console.print(table)
    best = hof.get("best_ever")
    if best:
        console.print("  " + best_ever_line(best, settings), markup=False)
        console.print(
            "  IS = in the window that chose the genome; OOS = the windows it traded after (mean)",
            markup=False,
        )
    return True
