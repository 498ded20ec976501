"""``evoarena report``: one self-contained HTML page of a run (charts by Plotly, JS inline).

The page needs no network: plotly.js (shipped inside the ``plotly`` wheel) is embedded, each chart
is a ``<div class="chart">`` drawn by ``Plotly.newPlot`` from JSON built here, and tables are
plain HTML. Optional data (out-of-sample, luck test, per-bot results) is drawn when the state has
it; otherwise the page says "not recorded" where it would be.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from evoarena import __version__
from evoarena.evolution.genome import GENE_NAMES, SIGNAL_TYPES
from evoarena.observe.history import GenerationRecord, History, hof_oos, number

NOT_RECORDED = "not recorded"
_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart: an id, a heading, what it shows, and the Plotly figure."""

    id: str
    title: str
    description: str
    data: list[dict[str, Any]]
    layout: dict[str, Any]


def plotly_js() -> str:
    """The plotly.js bundle shipped in the ``plotly`` package."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _layout(y_title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "xaxis": {"title": {"text": "generation"}, "dtick": 1},
        "yaxis": {"title": {"text": y_title}},
        "margin": {"t": 30, "r": 20, "b": 50, "l": 60},
        "height": 380,
        "legend": {"orientation": "h", "y": -0.2},
    }
    layout.update(extra)
    return layout


def _line(x: Sequence[int], y: Sequence[float | None] | Sequence[int], name: str) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines+markers", "x": list(x), "y": list(y), "name": name}


def fitness_chart(gens: Sequence[GenerationRecord]) -> tuple[Chart, list[str]]:
    """Best / mean / median fitness, with the out-of-sample line and the luck test if recorded."""
    x = [g.generation for g in gens]
    data = [
        _line(x, [g.best_fitness for g in gens], "best fitness (in-sample)"),
        _line(x, [g.median_fitness for g in gens], "median fitness (in-sample)"),
        _line(x, [g.mean_fitness for g in gens], "mean fitness (in-sample)"),
    ]
    notes = []
    if any(g.oos_mean_roi_pct is not None for g in gens):
        data.append(
            {
                **_line(
                    x, [g.oos_mean_roi_pct for g in gens], "carried elites, out-of-sample ROI %"
                ),
                "line": {"dash": "dash"},
            }
        )
    elif any(g.oos_mean_fitness is not None for g in gens):
        data.append(
            {
                **_line(
                    x, [g.oos_mean_fitness for g in gens], "carried elites, out-of-sample fitness"
                ),
                "line": {"dash": "dash"},
            }
        )
    else:
        notes.append(f"Out-of-sample result of carried elites: {NOT_RECORDED}.")
    layout = _layout("fitness (ROI % on bankroll)")
    if any(g.luck_p_value is not None for g in gens):
        data.append(
            {
                **_line(x, [g.luck_p_value for g in gens], "luck test p-value (right axis)"),
                "yaxis": "y2",
                "line": {"dash": "dot"},
            }
        )
        layout["yaxis2"] = {
            "title": {"text": "p-value"},
            "overlaying": "y",
            "side": "right",
            "range": [0, 1],
        }
    else:
        notes.append(f"Luck test: {NOT_RECORDED}.")
    chart = Chart(
        "chart-fitness",
        "Fitness per generation",
        "Best, median and mean fitness of each generation's population (fitness is the ROI % on "
        "the starting bankroll of bots with enough settled trades; the others score the inactive "
        "penalty). Dashed: the out-of-sample result of the elites carried into the next "
        "generation; dotted: the luck test's p-value (small = better than chance).",
        data,
        layout,
    )
    return chart, notes


def activity_chart(gens: Sequence[GenerationRecord]) -> tuple[Chart, list[str]]:
    """Active bots, trades, settled trades, fees and force-closed positions per generation."""
    x = [g.generation for g in gens]
    data: list[dict[str, Any]] = [
        {"type": "bar", "x": x, "y": [g.total_trades for g in gens], "name": "trades"},
        {"type": "bar", "x": x, "y": [g.settled_trades for g in gens], "name": "settled trades"},
        _line(x, [g.active_bots for g in gens], "active bots (≥ 1 trade)"),
        {**_line(x, [g.fees_usd for g in gens], "fees paid $ (right axis)"), "yaxis": "y2"},
    ]
    notes = []
    if any(g.force_closed is not None for g in gens):
        data.append(
            _line(x, [g.force_closed for g in gens], "force-closed positions"),
        )
    else:
        notes.append(f"Force-closed positions: {NOT_RECORDED}.")
    layout = _layout(
        "count",
        barmode="group",
        yaxis2={"title": {"text": "fees $"}, "overlaying": "y", "side": "right"},
    )
    chart = Chart(
        "chart-activity",
        "Activity per generation",
        "Bars: trades opened and trades settled by the whole population. Lines: bots that traded "
        "at least once, positions force-closed at the settlement deadline, and fees paid in "
        "dollars (right axis).",
        data,
        layout,
    )
    return chart, notes


def signal_mix_chart(gens: Sequence[GenerationRecord]) -> Chart:
    """How many bots use each signal type, per generation (stacked)."""
    x = [g.generation for g in gens]
    names = list(SIGNAL_TYPES) + sorted({k for g in gens for k in g.signal_mix} - set(SIGNAL_TYPES))
    data = [
        {"type": "bar", "x": x, "y": [g.signal_mix.get(n, 0) for g in gens], "name": n}
        for n in names
    ]
    return Chart(
        "chart-signals",
        "Signal-type mix",
        "Stacked bars: how many bots of each generation trade on each entry signal (price level, "
        "momentum, mean reversion, value, contrarian). A type taking over shows selection at work.",
        data,
        _layout("bots", barmode="stack"),
    )


def genes_chart(gens: Sequence[GenerationRecord]) -> Chart:
    """Each gene's distribution per generation: box plots, one gene at a time (a drop-down)."""
    data: list[dict[str, Any]] = []
    buttons = []
    n = len(gens)
    for gi, name in enumerate(GENE_NAMES):
        data.extend(
            {
                "type": "box",
                "y": g.genes[name],
                "name": f"gen {g.generation}",
                "x0": g.generation,
                "visible": gi == 0,
                "boxpoints": False,
                "showlegend": False,
                "marker": {"color": "#1f77b4"},
            }
            for g in gens
        )
        visible = [gj == gi for gj in range(len(GENE_NAMES)) for _ in range(n)]
        buttons.append(
            {
                "label": name,
                "method": "update",
                "args": [
                    {"visible": visible},
                    {"yaxis": {"title": {"text": name}, "range": [0, 1]}},
                ],
            }
        )
    layout = _layout(GENE_NAMES[0], updatemenus=[{"buttons": buttons, "x": 0, "y": 1.15}])
    layout["yaxis"]["range"] = [0, 1]
    layout["margin"]["t"] = 60
    return Chart(
        "chart-genes",
        "Gene distributions",
        "One box per generation: the spread of a gene's raw value (0-1) over the population "
        "(median, quartiles, whiskers). Pick the gene in the drop-down. A box that narrows over "
        "generations is a gene the population converges on.",
        data,
        layout,
    )


def bots_roi_chart(gens: Sequence[GenerationRecord]) -> Chart | None:
    """Per-bot ROI on bankroll and on stake per generation, when per-bot results exist."""
    with_bots = [g for g in gens if g.bots]
    if not with_bots:
        return None
    data: list[dict[str, Any]] = []
    for key, label in (
        ("roi_bankroll_pct", "ROI % on bankroll"),
        ("roi_stake_pct", "ROI % on stake"),
    ):
        xs: list[int] = []
        ys: list[float] = []
        for g in with_bots:
            for b in g.bots or []:
                v = b.get(key)
                if v is not None:
                    xs.append(g.generation)
                    ys.append(v)
        if ys:
            data.append({"type": "box", "x": xs, "y": ys, "name": label, "boxpoints": False})
    if not data:
        return None
    return Chart(
        "chart-bot-roi",
        "Per-bot ROI",
        "One box per generation and measure: each bot's return on its starting bankroll and on "
        "the money it staked (the second is larger in size: it ignores cash left idle).",
        data,
        _layout("ROI %", boxmode="group"),
    )


def _cell(value: float | None, fmt: str) -> str:
    return NOT_RECORDED if value is None else format(value, fmt)


def hall_of_fame_table(hof: Mapping[str, Any] | None, top: int = 20) -> str:
    """The hall of fame as an HTML table: in-sample columns, then out-of-sample ones."""
    if hof is None or not hof.get("entries"):
        return f"<p>Hall of fame: {NOT_RECORDED} yet.</p>"
    head = (
        "<tr><th rowspan=2>#</th><th rowspan=2>genome</th><th rowspan=2>gen</th>"
        "<th rowspan=2>signal</th><th colspan=5>in-sample (its generation)</th>"
        "<th colspan=3>out-of-sample (later windows, means)</th></tr>"
        "<tr><th>fitness</th><th>ROI % on bankroll</th><th>trades</th><th>win rate</th>"
        "<th>P&amp;L $</th><th>windows</th><th>fitness</th><th>ROI % on bankroll</th></tr>"
    )
    rows = []
    bankroll_note = False
    for i, e in enumerate(list(hof["entries"])[:top], start=1):
        oos = hof_oos(e)
        roi = number(e.get("roi_bankroll_pct"))
        if roi is None:
            roi = number(e.get("roi_pct"))
        bankroll_note |= roi is None
        cells = [
            str(i),
            html.escape(str(e["genome"]["id"])),
            str(e.get("generation", "")),
            html.escape(str(e.get("signal_type", ""))),
            _cell(number(e.get("fitness_roi_pct")), "+.2f"),
            _cell(roi, "+.2f"),
            str(e.get("total_trades", "")),
            _cell(_pct(number(e.get("win_rate"))), ".0f")
            + ("%" if e.get("win_rate") is not None else ""),
            _cell(number(e.get("realized_pnl")), "+.2f"),
        ]
        if oos is None:
            cells += [NOT_RECORDED] * 3
        else:
            windows = oos.get("windows")
            cells += [
                NOT_RECORDED if windows is None else str(int(windows)),
                _cell(oos.get("fitness"), "+.2f"),
                _cell(oos.get("roi_bankroll_pct"), "+.2f"),
            ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    note = (
        "<p class=note>ROI % on bankroll = realized P&amp;L ÷ starting bankroll; fitness is that "
        "ROI for bots with enough settled trades and the inactive penalty otherwise."
        + (
            " ROI on bankroll is shown as not recorded for entries saved without it."
            if bankroll_note
            else ""
        )
        + "</p>"
    )
    return f"<table class=hof><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>{note}"


def _pct(x: float | None) -> float | None:
    return None if x is None else 100 * x


def history_table(gens: Sequence[GenerationRecord]) -> str:
    """The per-generation figures as an HTML table (what ``evoarena history`` prints)."""
    head = (
        "<tr><th>gen</th><th>bots</th><th>best fitness</th><th>median fitness</th>"
        "<th>best ROI % (bankroll)</th><th>active</th><th>trades</th><th>settled</th>"
        "<th>fees $</th><th>force-closed</th><th>OOS ROI %</th><th>luck p</th></tr>"
    )
    rows = []
    for g in gens:
        cells = [
            str(g.generation),
            str(g.population),
            f"{g.best_fitness:+.2f}",
            f"{g.median_fitness:+.2f}",
            f"{g.best_roi:+.2f}",
            str(g.active_bots),
            str(g.total_trades),
            str(g.settled_trades),
            f"{g.fees_usd:.2f}",
            NOT_RECORDED if g.force_closed is None else str(g.force_closed),
            _cell(g.oos_mean_roi_pct, "+.2f"),
            _cell(g.luck_p_value, ".3f"),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def build_charts(gens: Sequence[GenerationRecord]) -> tuple[list[Chart], list[str]]:
    """Every chart the state supports, and notes on what is not recorded."""
    if not gens:
        return [], ["No finished generation yet: charts appear after the first one."]
    fit, notes = fitness_chart(gens)
    act, act_notes = activity_chart(gens)
    charts = [fit, act, signal_mix_chart(gens), genes_chart(gens)]
    bots = bots_roi_chart(gens)
    if bots is None:
        notes.append(f"Per-bot results (ROI on bankroll and on stake): {NOT_RECORDED}.")
    else:
        charts.append(bots)
    return charts, notes + act_notes


def _json(obj: object) -> str:
    # "</" inside a <script> would end it early.
    return orjson.dumps(obj).decode().replace("</", "<\\/")


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th{background:#f3f3f3} .note,.desc{color:#555;font-size:.9em} .chart{min-height:380px}
.problems{color:#a00}
"""


def render_report(history: History, *, generated_at_ms: int, js: str | None = None) -> str:
    """The whole page as text (``js``: the plotly.js bundle; default: the installed one)."""
    gens = history.generations
    charts, notes = build_charts(gens)
    generated = datetime.fromtimestamp(generated_at_ms / 1000, tz=UTC).isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>evoarena report — {html.escape(str(history.state_dir))}</title>",
        f"<style>{_CSS}</style>",
        f"<script>{js if js is not None else plotly_js()}</script></head><body>",
        f"<h1>evoarena report — {html.escape(str(history.state_dir))}</h1>",
        f"<p class=note>{len(gens)} finished generation(s); generated {generated} by evoarena "
        f"{__version__}. Paper trading only.</p>",
    ]
    if history.problems:
        items = "".join(f"<li>{html.escape(p)}</li>" for p in history.problems)
        parts.append(
            f"<div class=problems><p>Files that could not be read:</p><ul>{items}</ul></div>"
        )
    if notes:
        parts.append(
            "<ul class=note>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"
        )
    parts.extend(
        f"<h2>{html.escape(c.title)}</h2><p class=desc>{html.escape(c.description)}</p>"
        f'<div class=chart id="{c.id}"></div>'
        f'<script>Plotly.newPlot("{c.id}", {_json(c.data)}, {_json(c.layout)}, '
        f"{_json(_CONFIG)});</script>"
        for c in charts
    )
    parts.append("<h2>Generations</h2>" + history_table(gens))
    parts.append("<h2>Hall of fame</h2>" + hall_of_fame_table(history.hall_of_fame))
    parts.append("</body></html>\n")
    return "\n".join(parts)
