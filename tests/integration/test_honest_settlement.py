"""Honest settlement: what a fixed rule books agrees with the outcomes the recording holds."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from evoarena.engine.book import MarketBook
from evoarena.evolution.generation import GenerationRun, Phase
from evoarena.evolution.genome import GENE_NAMES, Genome
from evoarena.evolution.stats import bot_result
from evoarena.feeds.events import PRICE_ONE, BookSnapshot, Side
from evoarena.feeds.kalshi.decoder import KalshiDecoder
from evoarena.feeds.replay import ReplaySource
from evoarena.feeds.synth import DEFAULT_START_MS, generate_day
from evoarena.settings import Settings, load_settings

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]  # two short replays, ~2 s each


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The issue's 7 h reproduction day, with fewer markets."""
    path = tmp_path_factory.mktemp("honest") / "day.jsonl.gz"
    generate_day(path, markets=120, hours=7, seed=1, start_ms=DEFAULT_START_MS)
    return path


def _recorded_outcomes(path: Path) -> dict[str, int]:
    """Settlement values (µ$) read straight from the recording's ``determined`` frames."""
    out: dict[str, int] = {}
    with gzip.open(path, "rb") as f:
        for line in f:
            ws = orjson.loads(line).get("ws")
            if not ws or ws.get("type") != "market_lifecycle_v2":
                continue
            msg = ws["msg"]
            if msg.get("event_type") == "determined":
                out[msg["market_ticker"]] = round(float(msg["settlement_value"]) * PRICE_ONE)
    return out


def _settings(margin_secs: int) -> Settings:
    return load_settings(
        None,
        {
            "trading": {
                "generation_duration_secs": 14_400,
                "settlement_wait_secs": 3_600,
                "market_close_window_secs": 14_400,
                "settlement_margin_secs": margin_secs,
            }
        },
    )


def _wide_rule(i: int) -> Genome:
    """A fixed price-level rule that buys any side priced 0.01-0.99 in any market."""
    genes = dict.fromkeys(GENE_NAMES, 0.0)
    genes.update(
        price_threshold_high=1.0,
        max_time_to_expiry_hrs=1.0,
        max_price=1.0,
        side_bias=0.5,
        bankroll_fraction=0.1,
        max_concurrent_positions=1.0,
        max_single_market_pct=1.0,
        daily_loss_limit_pct=1.0,
        max_trades_per_day=1.0,
    )
    genes["side_bias"] = i / 4  # varies the side a bot prefers when both qualify
    return Genome(id=f"{i:08x}", generation=0, parent_ids=[], genes=genes)


def _run_generation(day: Path, settings: Settings) -> GenerationRun:
    """One generation over the day, driven as ``evoarena replay`` drives it."""
    book = MarketBook(settings.trading.price_history_ticks)
    run: GenerationRun | None = None
    snapshot_ms: int | None = None
    with ReplaySource(day, decoder=KalshiDecoder()) as source:
        for step in source:
            if run is None and snapshot_ms is not None and step.t_ms > snapshot_ms:
                run = GenerationRun(
                    settings, book, [_wide_rule(i) for i in range(5)], 0, snapshot_ms
                )
            if run is not None:
                run.fire_due(step.t_ms - 1)
                if run.phase is Phase.DONE:
                    break
            for ev in step.events:
                book.apply(ev)
            if snapshot_ms is None and any(type(ev) is BookSnapshot for ev in step.events):
                snapshot_ms = step.t_ms
    assert run is not None
    assert run.phase is Phase.DONE
    return run


def test_booked_results_of_a_fixed_rule_agree_with_recorded_outcomes(day: Path) -> None:
    """Every position settles at the recorded outcome; booked P&L is exactly their sum."""
    outcomes = _recorded_outcomes(day)
    run = _run_generation(day, _settings(1800))
    trades = 0
    for bot in run.bots:
        acct = run.exchange.accounts[bot.bot_id]
        pnl = 0
        for p in acct.closed_positions:
            assert not p.forced, p.ticker
            value = outcomes[p.ticker]
            assert p.settlement_value == value
            per = value if p.side is Side.YES else PRICE_ONE - value
            assert p.payout == p.contracts * per
            pnl += p.contracts * per - p.cost - p.fee
        result: dict[str, Any] = bot_result(acct, 0.0, bot.genome)
        assert result["pnl_usd"] == round(pnl / PRICE_ONE, 6)
        assert result["force_closed"] == 0
        assert result["settled"] == result["trades"] == len(acct.closed_positions)
        trades += result["trades"]
    assert trades >= 20  # the rule really traded
    assert run.stats.force_closed == 0


def test_without_a_margin_positions_miss_the_deadline(day: Path) -> None:
    """The same rule with no settlement margin buys markets that cannot settle in time."""
    run = _run_generation(day, _settings(0))
    assert run.stats.force_closed > 0
