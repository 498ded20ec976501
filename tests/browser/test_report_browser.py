"""`evoarena report` on a demo's state directory, opened in real headless chromium."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cdp import chromium_page

from evoarena.cli import main

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(60)]

# Every .chart div: its SVG roots and the drawn traces (bars, lines, boxes) inside them.
_CHECK = """
new Promise(resolve => {
  const started = Date.now();
  const look = () => {
    const charts = [...document.querySelectorAll('div.chart')].map(d => ({
      id: d.id,
      svgs: d.querySelectorAll('svg.main-svg').length,
      traces: d.querySelectorAll('g.trace').length,
      paths: d.querySelectorAll('g.trace path').length,
    }));
    const done = charts.length > 0 && charts.every(c => c.svgs > 0 && c.paths > 0);
    if (done || Date.now() - started > 10000) resolve(JSON.stringify(charts));
    else requestAnimationFrame(look);
  };
  look();
})
"""


def _demo_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    cfg = tmp_path / "small.toml"
    cfg.write_text(
        "[evolution]\npopulation_size = 20\nelite_count = 2\nimmigrant_count = 2\n"
        "tournament_size = 3\nmin_settled_trades = 1\n",
        encoding="utf-8",
    )
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--markets", "30", "--generations", "3"]
    assert main([*args, "--generation-hours", "1", "--config", str(cfg)]) == 0
    state = out / "state"
    printed = capsys.readouterr().out
    assert "hall of fame (top 5)" in printed
    assert "fitness" in printed
    assert "ROI %" in printed
    for line in printed.splitlines():  # tables fit 80 columns, no cell cut short
        assert len(line) <= 80, line
        assert "…" not in line, line
    return state


async def test_report_of_the_demo_draws_every_chart_without_console_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    state = _demo_state(tmp_path, capsys)
    report = tmp_path / "report.html"
    assert main(["report", "--state-dir", str(state), "--out", str(report)]) == 0
    text = report.read_text(encoding="utf-8")
    assert "<script src" not in text, "the page must not load anything from the network"
    capsys.readouterr()

    async with chromium_page(tmp_path / "profile") as page:
        await page.call("Page.navigate", url=report.as_uri())
        await page.wait_event("Page.loadEventFired")
        result = await page.call(
            "Runtime.evaluate", expression=_CHECK, awaitPromise=True, returnByValue=True
        )
        charts = json.loads(result["result"]["value"])
        shot = await page.call("Page.captureScreenshot", format="png")
        errors = page.errors()
        # The detector itself: a page that logs an error and throws is caught.
        bad = tmp_path / "bad.html"
        bad.write_text("<script>console.error('boom'); null.x;</script>", encoding="utf-8")
        await page.call("Page.navigate", url=bad.as_uri())
        await page.wait_event("Runtime.exceptionThrown")
        caught = page.errors()

    assert errors == []
    assert any("boom" in e for e in caught), caught
    assert any("exception" in e for e in caught), caught
    ids = {c["id"] for c in charts}
    assert {"chart-fitness", "chart-activity", "chart-signals", "chart-genes"} <= ids
    for c in charts:
        assert c["svgs"] > 0, f"{c['id']} has no SVG: {c}"
        assert c["paths"] > 0, f"{c['id']} drew no trace: {c}"
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG")
    assert len(png) > 20_000
    (tmp_path / "report.png").write_bytes(png)
