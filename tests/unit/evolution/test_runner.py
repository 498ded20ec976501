"""The generation lifecycle and the runner: phases, settlement wait, resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evoarena.engine.book import MarketBook
from evoarena.engine.paper import Fill
from evoarena.engine.view import MarketView
from evoarena.evolution import persistence
from evoarena.evolution.generation import GenerationRun, Phase
from evoarena.evolution.genome import Genome
from evoarena.evolution.runner import EvolutionRunner, evolve_rng, genesis_rng
from evoarena.feeds.events import (
    PRICE_ONE,
    BookSnapshot,
    MarketDetermined,
    MarketInfo,
    MarketStatus,
    SeriesInfo,
    Side,
)
from evoarena.settings import Settings, load_settings

pytestmark = pytest.mark.timeout(30)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN = 60_000


def _settings(tmp_path: Path, **trading: int) -> Settings:
    t = {
        "generation_duration_secs": 600,
        "tick_interval_secs": 30,
        "settlement_wait_secs": 600,
        "settlement_poll_secs": 60,
        "checkpoint_every_ticks": 5,
        "settlement_check_every_ticks": 4,
        "progress_log_every_ticks": 10,
        "settlement_margin_secs": 240,
    }
    t.update(trading)
    return load_settings(
        None,
        {
            "evolution": {
                "population_size": 10,
                "elite_count": 2,
                "tournament_size": 3,
                "immigrant_count": 2,
                "min_settled_trades": 1,
                "seed": 5,
            },
            "trading": t,
            "state": {"dir": str(tmp_path / "state")},
        },
    )


def _market(book: MarketBook, ticker: str, close_ms: int, *, mid_cents: int = 50) -> None:
    book.apply(SeriesInfo("S", "Politics", "quadratic", None, T0))
    book.apply(
        MarketInfo(
            ticker,
            None,
            MarketStatus.ACTIVE,
            T0 - 3_600_000,
            close_ms,
            ticker,
            None,
            None,
            None,
            None,
            None,
            None,
            T0,
        )
    )
    c = 10_000  # one cent in micro-dollars
    yes = tuple((p * c, 50_000) for p in range(mid_cents - 5, mid_cents))
    no = tuple((p * c, 50_000) for p in range(100 - mid_cents - 5, 100 - mid_cents))
    book.apply(BookSnapshot(ticker, yes, no, T0))


def _genomes(seed: int, n: int) -> list[Genome]:
    rng = genesis_rng(seed)
    return [Genome.random(rng, 0) for _ in range(n)]


def _buy_everywhere(run: GenerationRun, ticker: str, now_ms: int) -> int:
    """Open one position per bot in ``ticker`` (direct exchange orders)."""
    n = 0
    for bot in run.bots:
        if not run.exchange.accounts[bot.bot_id].holds(ticker):
            fill = run.exchange.buy(bot.bot_id, ticker, Side.YES, 2 * PRICE_ONE, now_ms)
            n += isinstance(fill, Fill)
    return n


def test_schedule_ticks_then_settling_then_done(tmp_path: Path) -> None:
    """Ticks fall at start + k·tick; after the period, polls run until the deadline."""
    s = _settings(tmp_path)
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "M1", T0 + 5 * MIN)
    run = GenerationRun(s, book, _genomes(1, 4), 0, T0)
    dues = []
    while run.phase is Phase.TRADING:
        due = run.next_due_ms()
        assert due is not None
        dues.append(due)
        run.fire_due(due)
    assert dues[:3] == [T0, T0 + 30_000, T0 + 60_000]
    assert run.tick_count == 20
    assert dues[-1] == T0 + 600_000  # the end of the trading period enters settling
    # nothing is held, so the first settlement poll ends the generation
    run.fire_due(T0 + 600_000)
    assert run.phase is Phase.DONE
    assert run.finished_ms == T0 + 600_000


def test_settlement_wait_ends_early_when_everything_settles(tmp_path: Path) -> None:
    """Held positions settle from the book's result and the wait ends at that poll."""
    s = _settings(tmp_path)
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "M1", T0 + 9 * MIN)
    run = GenerationRun(s, book, _genomes(2, 3), 0, T0)
    run.fire_due(T0)
    _buy_everywhere(run, "M1", T0 + 1000)
    held_before = run.open_positions()
    assert held_before >= 3
    run.fire_due(T0 + 600_000)  # trading over, first poll: no result yet
    assert run.phase is Phase.SETTLING
    book.apply(MarketDetermined("M1", Side.YES, PRICE_ONE, T0 + 640_000))
    run.fire_due(T0 + 660_000)  # next poll at +60 s settles everything
    assert run.phase is Phase.DONE
    assert run.finished_ms == T0 + 660_000
    assert run.open_positions() == 0
    assert run.stats.force_closed == 0
    assert all(a.n_settled >= 1 for a in run.exchange.accounts.values())


def test_settlement_timeout_force_closes_as_losses(tmp_path: Path) -> None:
    """No result by the deadline: remaining positions are force-closed and counted."""
    s = _settings(tmp_path)
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "M1", T0 + 9 * MIN)
    run = GenerationRun(s, book, _genomes(3, 3), 0, T0)
    run.fire_due(T0)
    _buy_everywhere(run, "M1", T0 + 1000)
    opened = run.open_positions()
    requests = run.fire_due(T0 + 600_000 + 540_000)
    assert run.phase is Phase.SETTLING
    # every poll asked the shell to check the closed, held market
    checks = [r for r in requests if r.kind == "settlement_check"]
    assert len(checks) >= 10
    assert all(r.tickers == ("M1",) for r in checks)
    run.fire_due(run.deadline_ms)
    assert run.phase is Phase.DONE
    assert run.finished_ms == run.deadline_ms
    assert run.stats.force_closed == opened
    for acct in run.exchange.accounts.values():
        assert acct.n_open == 0
        assert acct.realized_pnl_usd < 0  # a forced close is a loss of the stake and fee


def test_checkpoint_round_trip_keeps_accounts_and_rngs(tmp_path: Path) -> None:
    """A generation rebuilt from its checkpoint continues identically."""
    s = _settings(tmp_path)
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "M1", T0 + 9 * MIN)
    _market(book, "M2", T0 + 30 * MIN, mid_cents=70)
    genomes = _genomes(4, 6)
    a = GenerationRun(s, book, genomes, 0, T0)
    a.fire_due(T0 + 90_000)
    b = GenerationRun.from_checkpoint(s, book, 0, a.tick_count, a.checkpoint())
    assert b.checkpoint() == a.checkpoint()
    for bot_a, bot_b in zip(a.bots, b.bots, strict=True):
        assert bot_a.rng.random() == bot_b.rng.random()


def _drive(runner: EvolutionRunner, book: MarketBook, start: int, until: int) -> None:
    runner.start(start)
    runner.fire_due(until)


def test_runner_completes_generations_and_saves_state(tmp_path: Path) -> None:
    """Each completed generation writes gen_NNNN.json, latest.json and the hall of fame."""
    s = _settings(tmp_path, settlement_wait_secs=120)
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "M1", T0 + 9 * MIN)
    runner = EvolutionRunner(s, book, max_generations=2)
    _drive(runner, book, T0, T0 + 10 * 3_600_000)
    assert runner.done
    assert [g.generation for g in runner.completed] == [0, 1]
    state = Path(s.state.dir)
    assert persistence.list_generations(state) == [0, 1]
    latest = persistence.load_latest_state(state_dir=state)
    assert latest is not None
    assert latest[0] == 1
    assert persistence.load_hall_of_fame(state_dir=state) is not None
    # generation 1 starts when generation 0 finished (trading + at most the wait)
    g0, g1 = runner.completed
    assert g0.start_ms == T0
    assert g1.start_ms == g0.end_ms
    assert T0 + 600_000 <= g0.end_ms <= T0 + 720_000


def test_resume_from_latest_breeds_the_saved_generation(tmp_path: Path) -> None:
    """A restart starts generation N+1, bred from gen N's saved genomes and fitness."""
    s = _settings(tmp_path, settlement_wait_secs=120)
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "M1", T0 + 9 * MIN)
    first = EvolutionRunner(s, book, max_generations=1)
    _drive(first, book, T0, T0 + 3_600_000)
    saved = persistence.load_generation(0, state_dir=Path(s.state.dir))
    assert saved is not None

    second = EvolutionRunner(s, MarketBook(s.trading.price_history_ticks))
    second.start(T0 + 7_200_000)
    assert second.resumed_from == 0
    assert second.generation == 1
    assert second.run is not None
    from evoarena.evolution.operators import evolve

    expected = evolve(
        [Genome.from_dict(g) for g in saved["genomes"]],
        [float(f) for f in saved["fitness_scores"]],
        evolve_rng(s.evolution.seed, 0),
        s.evolution,
        1,
    )
    assert [b.genome.to_dict() for b in second.run.bots] == [g.to_dict() for g in expected]
    # an uninterrupted run would have bred exactly the same generation 1
    assert first.generation == 1
    # and it knows last generation's elites, as the uninterrupted run does
    assert second.carried_elites == first.carried_elites
    assert (second.oos_z_sum, second.oos_windows) == (first.oos_z_sum, first.oos_windows)
    assert second.carried_elites is not None
    assert len(second.carried_elites.gene_hashes) >= 1


def test_resume_mid_generation_checkpoint(tmp_path: Path) -> None:
    """With resume_checkpoint, a saved mid-generation checkpoint continues that generation."""
    s = _settings(tmp_path)
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "M1", T0 + 9 * MIN)
    a = EvolutionRunner(s, book)
    a.start(T0)
    a.fire_due(T0 + 150_000)  # tick 6 → a checkpoint at tick 5
    a.stop(T0 + 150_000)
    assert a.run is not None
    ticks = a.run.tick_count
    b = EvolutionRunner(s, book)
    b.start(T0 + 160_000, resume_checkpoint=True)
    assert b.resumed_checkpoint
    assert b.run is not None
    assert b.run.tick_count == ticks
    assert b.run.checkpoint()["exchange"] == a.run.checkpoint()["exchange"]


def test_bots_see_only_markets_that_can_settle_in_the_generation(tmp_path: Path) -> None:
    """The view leaves out markets closing after the deadline less the settlement margin."""
    s = _settings(tmp_path)  # 600 s trading + 600 s wait: deadline T0 + 20 min, margin 4 min
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "SOON", T0 + 15 * MIN)
    _market(book, "EDGE", T0 + 17 * MIN)  # closes before the deadline, but within the margin
    _market(book, "LATE", T0 + 25 * MIN)
    run = GenerationRun(s, book, _genomes(6, 2), 0, T0)
    seen: list[list[str]] = []
    original = MarketView.build

    def spy(*args: Any, **kwargs: Any) -> MarketView:
        view = original(*args, **kwargs)
        seen.append(list(view.tickers))
        return view

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MarketView, "build", spy)
        run.fire_due(T0)
    assert seen == [["SOON"]]
    assert [m.ticker for m in MarketView.build(book, T0, []).markets] == ["EDGE", "LATE", "SOON"]


def test_deadline_policy_last_bid_sells_at_the_last_bid(tmp_path: Path) -> None:
    """Under ``last_bid`` an unsettled position is sold at its market's last fresh bid."""
    s = _settings(tmp_path)
    s = s.model_copy(
        update={"trading": s.trading.model_copy(update={"deadline_policy": "last_bid"})}
    )
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "M1", T0 + 9 * MIN)  # YES bids up to 0.49, never determined
    run = GenerationRun(s, book, _genomes(3, 3), 0, T0)
    run.fire_due(T0)
    opened = _buy_everywhere(run, "M1", T0 + 1000)
    assert opened == 3
    run.fire_due(run.deadline_ms)
    assert run.phase is Phase.DONE
    assert run.stats.force_closed == opened
    for acct in run.exchange.accounts.values():
        (closed,) = acct.closed_positions
        assert closed.forced
        assert closed.payout == closed.contracts * 490_000
        assert closed.exit_fee > 0


def test_generation_file_has_per_bot_results(tmp_path: Path) -> None:
    """gen_NNNN.json carries one result per genome, aligned, agreeing with the seeds' fields."""
    s = _settings(tmp_path, settlement_wait_secs=120)
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "M1", T0 + 9 * MIN)
    runner = EvolutionRunner(s, book, max_generations=1)
    runner.start(T0)
    assert runner.run is not None
    _buy_everywhere(runner.run, "M1", T0 + 1000)
    book.apply(MarketDetermined("M1", Side.YES, PRICE_ONE, T0 + 9 * MIN + 1))
    runner.fire_due(T0 + 3_600_000)
    doc = persistence.load_generation(0, state_dir=Path(s.state.dir))
    assert doc is not None
    results = doc["results"]
    assert [r["genome_id"] for r in results] == [g["id"] for g in doc["genomes"]]
    assert [r["gene_hash"] for r in results] == [
        Genome.from_dict(g).gene_hash for g in doc["genomes"]
    ]
    assert [r["fitness"] for r in results] == doc["fitness_scores"]
    assert doc["stats"]["fitness"] == "roi"
    assert doc["stats"]["luck_verdict"] in ("edge", "no evidence of edge")
    assert 0 < doc["stats"]["luck_p_value"] <= 1
    assert doc["stats"]["luck_simulations"] == s.evolution.luck_simulations
    assert sum(r["trades"] for r in results) == doc["stats"]["total_trades"]
    assert sum(r["force_closed"] for r in results) == doc["stats"]["force_closed"]
    assert round(sum(r["pnl_usd"] for r in results), 6) == doc["stats"]["realized_pnl"]
    for r in results:
        assert r["settled"] + r["force_closed"] + r["open"] == r["trades"]
        assert r["settled"] >= 1  # every bot bought M1, which settled YES
        assert r["wins"] == r["settled"]  # a YES bought below 0.5 and settled at 1 wins
        assert r["roi_bankroll_pct"] == pytest.approx(r["pnl_usd"])  # $100 bankroll
        assert r["roi_stake_pct"] == pytest.approx(100 * r["pnl_usd"] / r["stake_usd"], abs=1e-5)


def test_carried_elites_are_measured_out_of_sample(tmp_path: Path) -> None:
    """Generation 1's stats and the hall of fame record how gen 0's elites did in window 1."""
    s = _settings(tmp_path, settlement_wait_secs=120)
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "M1", T0 + 9 * MIN)
    _market(book, "M2", T0 + 19 * MIN, mid_cents=30)
    runner = EvolutionRunner(s, book, max_generations=2)
    runner.start(T0)
    runner.fire_due(T0 + 10 * 3_600_000)
    state = Path(s.state.dir)
    g0 = persistence.load_generation(0, state_dir=state)
    g1 = persistence.load_generation(1, state_dir=state)
    assert g0 is not None
    assert g1 is not None
    ranked = sorted(range(len(g0["genomes"])), key=lambda i: (-g0["fitness_scores"][i], i))
    elite_hashes = [g0["results"][i]["gene_hash"] for i in ranked[: s.evolution.elite_count]]
    # the elites trade window 1 unchanged: their genes are in generation 1
    by_hash = {}
    for r in g1["results"]:
        by_hash.setdefault(r["gene_hash"], r)
    assert all(h in by_hash for h in elite_hashes)
    oos = g1["stats"]["carried_elites_oos"]
    expected = [by_hash[h]["fitness"] for h in dict.fromkeys(elite_hashes)]
    assert oos["chosen_in"] == 0
    assert oos["n"] == len(expected)
    assert oos["mean_fitness"] == pytest.approx(sum(expected) / len(expected))
    assert g0["stats"]["carried_elites_oos"]["n"] == 0  # nothing was chosen before gen 0
    assert g0["stats"]["luck_oos_windows"] == 0
    assert g0["stats"]["luck_oos_p_value"] is None
    # gen 1's elites traded unchanged: their window is tested (if they traded at all)
    assert g1["stats"]["luck_oos_windows"] == (g1["stats"]["luck_oos_p_value"] is not None)
    assert g1["stats"]["luck_oos_verdict"] in ("edge", "no evidence of edge")
    hof = persistence.load_hall_of_fame(state_dir=state)
    assert hof is not None
    hashes = [e["gene_hash"] for e in hof["entries"]]
    assert len(hashes) == len(set(hashes))  # one slot per genome
    for e in hof["entries"]:
        windows = e["out_of_sample"]["windows"]
        if e["in_sample"]["generation"] == 0 and e["gene_hash"] in by_hash:
            assert [w["generation"] for w in windows] == [1]
            assert windows[0]["fitness"] == by_hash[e["gene_hash"]]["fitness"]
        else:
            assert windows == []


def test_fitness_setting_selects_the_ranking(tmp_path: Path) -> None:
    """evolution.fitness = "stake_lcb" ranks by the stake LCB the accounts' positions give."""
    s = _settings(tmp_path, settlement_wait_secs=120)
    s = s.model_copy(update={"evolution": s.evolution.model_copy(update={"fitness": "stake_lcb"})})
    book = MarketBook(s.trading.price_history_ticks)
    _market(book, "M1", T0 + 9 * MIN)
    _market(book, "M2", T0 + 9 * MIN, mid_cents=30)
    runner = EvolutionRunner(s, book, max_generations=1)
    runner.start(T0)
    run = runner.run
    assert run is not None
    _buy_everywhere(run, "M1", T0 + 1000)
    _buy_everywhere(run, "M2", T0 + 1000)
    book.apply(MarketDetermined("M1", Side.YES, PRICE_ONE, T0 + 9 * MIN + 1))
    book.apply(MarketDetermined("M2", Side.NO, 0, T0 + 9 * MIN + 1))
    runner.fire_due(T0 + 3_600_000)
    doc = persistence.load_generation(0, state_dir=Path(s.state.dir))
    assert doc is not None
    assert doc["stats"]["fitness"] == "stake_lcb"
    from evoarena.evolution.fitness import compute_fitness

    for bot, score in zip(run.bots, doc["fitness_scores"], strict=True):
        acct = run.exchange.accounts[bot.bot_id]
        assert score == compute_fitness(
            acct, "stake_lcb", min_settled_trades=1, inactive_penalty=-100.0
        )
        if acct.n_settled == 1:  # one position shows no spread: no lower bound
            assert score == -100.0
    # a win and a loss: the bound lies below the return on stake
    both = [run.exchange.accounts[b.bot_id] for b in run.bots]
    two = [a for a in both if a.n_settled == 2]
    assert two
    for acct in two:
        lcb = compute_fitness(acct, "stake_lcb", min_settled_trades=1, inactive_penalty=-100.0)
        assert lcb < acct.roi_stake_pct
