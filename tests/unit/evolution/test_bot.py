"""Genetic bots: sizing, every limit, the category filter, side choice, determinism, population."""

from __future__ import annotations

import random
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pytest

from evoarena.engine.book import MarketBook
from evoarena.engine.paper import (
    DAY_MS,
    BotAccount,
    ChangeLog,
    PaperExchange,
    Position,
    Rejection,
    RejectReason,
)
from evoarena.engine.view import MarketView
from evoarena.evolution import bot as bot_module
from evoarena.evolution.bot import GeneticBot, needed_lookbacks, run_population_tick
from evoarena.evolution.genome import GENE_NAMES, Genome
from evoarena.evolution.strategies import pair_kernels
from evoarena.feeds.events import (
    PRICE_ONE,
    BookSnapshot,
    EventInfo,
    MarketDetermined,
    MarketInfo,
    MarketStatus,
    SeriesInfo,
    Side,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000
BANKROLL = 100 * PRICE_ONE
CATS = ["Crypto", "Sports", "World"]

# Genes of a bot that admits every market and follows a price_level signal over [0.01, 0.99]:
# 10 % of equity per order (25 % cap), 20 positions, 100 trades a day, 30 % daily loss limit.
OPEN_GENES = {
    "min_volume_24h": 0.0,
    "min_open_interest": 0.0,
    "min_time_to_expiry_hrs": 0.0,
    "max_time_to_expiry_hrs": 1.0,
    "category_mask": 0.0,
    "signal_type": 0.0,
    "price_threshold_low": 0.0,
    "price_threshold_high": 1.0,
    "momentum_lookback": 0.5,
    "momentum_trigger": 0.5,
    "mean_rev_zscore": 0.5,
    "value_edge_min": 0.5,
    "contrarian_threshold": 0.5,
    "side_bias": 0.5,
    "side_flip_prob": 0.0,
    "bankroll_fraction": 1.0,
    "max_concurrent_positions": 1.0,
    "max_single_market_pct": 1.0,
    "daily_loss_limit_pct": 1.0,
    "max_trades_per_day": 1.0,
    "min_price": 0.0,
    "max_price": 1.0,
}
assert set(OPEN_GENES) == set(GENE_NAMES)


def usd(text: str) -> int:
    """Dollar string to micro-dollars."""
    return int(Decimal(text) * PRICE_ONE)


def make_bot(seed: int = 0, gid: str = "0000000b", **genes: float) -> GeneticBot:
    """A bot from :data:`OPEN_GENES` with some genes overridden, its RNG seeded."""
    return GeneticBot(Genome(gid, 0, [], OPEN_GENES | genes), random.Random(seed))


def add_market(
    book: MarketBook,
    ticker: str,
    yes_ask: str = "0.40",
    no_ask: str = "0.65",
    *,
    close_ms: int = T0 + 20 * HOUR,
    event: str | None = None,
    contracts: int = 1000,
) -> None:
    """An active market with ``contracts`` at each ask (NO bids at 1 − YES ask and vice versa)."""
    book.apply(
        MarketInfo(
            ticker, event, MarketStatus.ACTIVE, T0 - HOUR, close_ms, ticker, None, None,
            None, None, None, None, T0,
        )
    )  # fmt: skip
    size = contracts * 100
    book.apply(
        BookSnapshot(
            ticker,
            ((PRICE_ONE - usd(no_ask), size),),
            ((PRICE_ONE - usd(yes_ask), size),),
            T0,
        )
    )


def book_with(n: int, close_ms: int = T0 + 20 * HOUR) -> MarketBook:
    """``n`` identical markets M0..M(n−1): YES asked at 0.40, NO at 0.65."""
    book = MarketBook()
    for i in range(n):
        add_market(book, f"M{i}", close_ms=close_ms)
    return book


def view(book: MarketBook, now_ms: int = T0 + HOUR) -> MarketView:
    """The market view at ``now_ms`` with the test categories."""
    return MarketView.build(book, now_ms, CATS)


def held(ex: PaperExchange, bot: GeneticBot) -> list[tuple[str, Side]]:
    """The bot's open positions as (ticker, side), in ticker order."""
    acct = ex.account(bot.bot_id)
    return sorted((t, p.side) for t, p in acct.open_positions.items())


# -- sizing -------------------------------------------------------------------------------------


def test_order_budget_is_the_smallest_of_fraction_cap_and_cash() -> None:
    """10 % of equity under a 25 % cap; 1 % when the cap is lower; the cash when that is less."""
    ex = PaperExchange(book_with(1), BANKROLL)
    acct = ex.account("0000000b")
    assert make_bot().order_budget(acct) == usd("10")
    assert make_bot(max_single_market_pct=0.0).order_budget(acct) == usd("1")
    half = make_bot(bankroll_fraction=0.5)  # 0.005 + 0.0475 = 5.25 %
    assert half.order_budget(acct) == usd("5.25")
    small = PaperExchange(book_with(1), usd("10"))
    small.buy("0000000b", "M0", Side.YES, usd("9.50"), T0)
    low = small.account("0000000b")
    assert low.cash < low.equity // 10
    assert make_bot().order_budget(low) == low.cash


def test_tick_buys_every_candidate_in_ticker_order_within_budget() -> None:
    """Three markets, three fills, each costing at most 10 % of the equity at the time."""
    book = book_with(3)
    ex = PaperExchange(book, BANKROLL)
    bot = make_bot()
    assert bot.tick(view(book), ex, T0 + HOUR) == 3
    acct = ex.account(bot.bot_id)
    assert list(acct.open_positions) == ["M0", "M1", "M2"]
    for pos in acct.open_positions.values():
        assert pos.side is Side.YES  # the cheaper side in the band
        assert pos.cost + pos.fee <= usd("10")
        assert pos.cost + pos.fee > usd("10") - usd("0.40") - usd("0.02")  # one more won't fit
    assert acct.cash == BANKROLL - sum(p.cost + p.fee for p in acct.open_positions.values())


def test_held_markets_are_skipped() -> None:
    """A second tick over the same markets buys nothing more."""
    book = book_with(3)
    ex = PaperExchange(book, BANKROLL)
    bot = make_bot()
    bot.tick(view(book), ex, T0 + HOUR)
    assert bot.tick(view(book), ex, T0 + HOUR + 30_000) == 0
    assert ex.account(bot.bot_id).total_trades == 3


def test_budget_below_a_cent_buys_nothing() -> None:
    """With 10 % of a 9-cent bankroll the order would be under a cent: no trade."""
    book = book_with(2)
    ex = PaperExchange(book, usd("0.09"))
    bot = make_bot()
    assert bot.tick(view(book), ex, T0 + HOUR) == 0
    assert ex.account(bot.bot_id).cash == usd("0.09")


def test_a_budget_below_the_best_ask_skips_the_market_without_an_order() -> None:
    """A 30-cent budget cannot pay one contract asked at 40 cents: the exchange is not asked
    (it would refuse, changing nothing), and the next, cheaper market is bought."""
    book = MarketBook()
    add_market(book, "M0", yes_ask="0.40", no_ask="0.65")
    add_market(book, "M1", yes_ask="0.20", no_ask="0.85")
    ex = PaperExchange(book, usd("3"))
    bot = make_bot()
    assert bot.order_budget(ex.account(bot.bot_id)) == usd("0.30")
    refused = PaperExchange(book, usd("3")).buy(bot.bot_id, "M0", Side.YES, usd("0.30"), T0)
    assert isinstance(refused, Rejection)
    asked: list[str] = []
    real_open = ex.open_position  # what a bot's buy calls (PaperExchange.buy without records)

    def spy(acct: BotAccount, ticker: str, *args: Any, **kwargs: Any) -> Position | RejectReason:
        asked.append(ticker)
        return real_open(acct, ticker, *args, **kwargs)

    ex.open_position = spy  # type: ignore[method-assign]
    assert bot.tick(view(book), ex, T0 + HOUR) == 1
    assert asked == ["M1"]
    assert held(ex, bot) == [("M1", Side.YES)]


# -- limits -------------------------------------------------------------------------------------


def test_max_concurrent_positions() -> None:
    """Two allowed positions: the tick stops after the second fill, later ticks buy nothing."""
    book = book_with(5)
    ex = PaperExchange(book, BANKROLL)
    bot = make_bot(max_concurrent_positions=0.1)
    assert bot.params.max_concurrent_positions == 2
    assert bot.tick(view(book), ex, T0 + HOUR) == 2
    assert bot.at_limit(ex.account(bot.bot_id))
    assert bot.tick(view(book), ex, T0 + 2 * HOUR) == 0
    assert held(ex, bot) == [("M0", Side.YES), ("M1", Side.YES)]


def test_max_trades_per_day_resets_at_utc_midnight() -> None:
    """Three trades a day: settled positions do not free more trades until the next UTC day."""
    book = book_with(8, close_ms=T0 + 30 * HOUR)  # within 24 h of both trading times
    ex = PaperExchange(book, BANKROLL)
    bot = make_bot(max_trades_per_day=0.03)
    assert bot.params.max_trades_per_day == 3
    late = T0 + 23 * HOUR
    assert bot.tick(view(book, late), ex, late) == 3
    for t in ("M0", "M1", "M2"):
        book.apply(MarketDetermined(t, Side.YES, PRICE_ONE, late))
        ex.settle(t, late)
    assert ex.account(bot.bot_id).n_open == 0
    assert bot.tick(view(book, late + 60_000), ex, late + 60_000) == 0
    next_day = T0 + DAY_MS + 60_000
    assert bot.tick(view(book, next_day), ex, next_day) == 3
    assert [t for t, _ in held(ex, bot)] == ["M3", "M4", "M5"]


def test_daily_loss_limit_stops_trading_for_the_day() -> None:
    """A lost $10 position exceeds a 2 % ($2) limit: no trades until the next UTC day."""
    book = book_with(4, close_ms=T0 + 30 * HOUR)
    ex = PaperExchange(book, BANKROLL)
    careful = make_bot(gid="0000000c", daily_loss_limit_pct=0.0, max_concurrent_positions=0.0)
    bold = make_bot(gid="0000000d", max_concurrent_positions=0.0)  # 30 % limit
    assert careful.loss_limit(ex.account(careful.bot_id)) == usd("2")
    now = T0 + 10 * HOUR
    for bot in (careful, bold):
        assert bot.tick(view(book, now), ex, now) == 1
    book.apply(MarketDetermined("M0", Side.NO, 0, now))
    ex.settle("M0", now)
    assert ex.account(careful.bot_id).daily_pnl < -usd("2")
    later = now + HOUR
    assert careful.tick(view(book, later), ex, later) == 0
    assert bold.tick(view(book, later), ex, later) == 1
    next_day = T0 + DAY_MS + HOUR
    assert careful.tick(view(book, next_day), ex, next_day) == 1


def test_category_mask_limits_markets() -> None:
    """A Sports-only mask buys only the Sports market; markets without a category still pass."""
    book = MarketBook()
    for i, cat in enumerate(CATS):
        book.apply(SeriesInfo(f"S{i}", cat, None, None, T0))
        book.apply(EventInfo(f"E{i}", f"S{i}", None, None, None, T0))
        add_market(book, f"M-{cat}", event=f"E{i}")
    add_market(book, "M-NONE")
    ex = PaperExchange(book, BANKROLL)
    bot = make_bot(category_mask=2 / 0xFFFF)  # bit 1: CATS[1] == "Sports"
    assert bot.params.category_mask == 0b10
    bot.tick(view(book), ex, T0 + HOUR)
    assert [t for t, _ in held(ex, bot)] == ["M-NONE", "M-Sports"]


def test_price_bounds_and_expiry_window_filter_markets() -> None:
    """Asks outside [min_price, max_price] and closes beyond the window are not bought."""
    book = MarketBook()
    add_market(book, "A-CHEAP", "0.05", "0.97")
    add_market(book, "B-OK", "0.40", "0.65")
    add_market(book, "C-FAR", "0.40", "0.65", close_ms=T0 + 40 * HOUR)
    ex = PaperExchange(book, BANKROLL)
    bot = make_bot(min_price=0.05, max_price=0.5)  # [0.059, 0.50]
    bot.tick(view(book), ex, T0 + HOUR)
    assert held(ex, bot) == [("B-OK", Side.YES)]


# -- side choice --------------------------------------------------------------------------------


def test_side_follows_the_signal_in_the_neutral_band() -> None:
    """Bias 0.5: YES where YES is the cheaper side in the band, NO where only NO is in it."""
    book = MarketBook()
    add_market(book, "A", "0.30", "0.75")
    add_market(book, "B", "0.75", "0.30")
    ex = PaperExchange(book, BANKROLL)
    bot = make_bot(price_threshold_high=0.5)  # band [0.01, 0.50]
    bot.tick(view(book), ex, T0 + HOUR)
    assert held(ex, bot) == [("A", Side.YES), ("B", Side.NO)]


@pytest.mark.parametrize(("bias", "side"), [(0.1, Side.NO), (0.9, Side.YES)])
def test_side_bias_overrides_the_signal_direction(bias: float, side: Side) -> None:
    """Bias below 0.2 always buys NO, above 0.8 always YES, wherever the signal fires."""
    book = MarketBook()
    add_market(book, "A", "0.30", "0.75")
    add_market(book, "B", "0.75", "0.30")
    ex = PaperExchange(book, BANKROLL)
    bot = make_bot(side_bias=bias, price_threshold_high=0.5)
    bot.tick(view(book), ex, T0 + HOUR)
    assert held(ex, bot) == [("A", side), ("B", side)]


class ScriptedRandom(random.Random):
    """A Random whose ``random()`` returns the scripted values in turn."""

    def __init__(self, values: Iterable[float]) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        """The next scripted value."""
        return self.values.pop(0)


def test_flip_draw_below_the_probability_flips_the_side() -> None:
    """Flip probability 0.5: a draw of 0.4 flips, 0.5 and 0.6 do not; one draw per decision."""
    bot = GeneticBot(
        Genome("0000000e", 0, [], OPEN_GENES | {"side_flip_prob": 1.0}),
        ScriptedRandom([0.4, 0.5, 0.6, 0.0]),
    )
    assert bot.choose_side(1) is Side.NO
    assert bot.choose_side(1) is Side.YES
    assert bot.choose_side(-1) is Side.NO
    assert bot.choose_side(-1) is Side.YES
    never = GeneticBot(Genome("0000000f", 0, [], dict(OPEN_GENES)), ScriptedRandom([0.0]))
    assert never.choose_side(1) is Side.YES  # probability 0: even a 0.0 draw does not flip


def test_held_markets_and_tiny_budgets_draw_no_randomness() -> None:
    """Held markets are skipped before the flip draw; an order under a cent ends the tick."""
    book = book_with(3)
    ex = PaperExchange(book, BANKROLL)
    rng = ScriptedRandom([0.9] * 5)
    bot = GeneticBot(Genome("00000012", 0, [], OPEN_GENES | {"side_flip_prob": 1.0}), rng)
    assert bot.tick(view(book), ex, T0 + HOUR) == 3
    assert len(rng.values) == 2
    add_market(book, "M9")
    assert bot.tick(view(book), ex, T0 + HOUR) == 1  # only M9 is new: one draw
    assert len(rng.values) == 1
    poor_rng = ScriptedRandom([0.9] * 5)
    poor = GeneticBot(Genome("00000013", 0, [], dict(OPEN_GENES)), poor_rng)
    tiny = PaperExchange(book, usd("0.09"))
    assert poor.tick(view(book), tiny, T0 + HOUR) == 0
    assert len(poor_rng.values) == 4


def test_same_seed_same_trades_different_seed_different_flips() -> None:
    """Randomness comes only from the bot's RNG: equal seeds give identical accounts."""
    book = book_with(12)

    def run(seed: int) -> dict[str, object]:
        ex = PaperExchange(book, BANKROLL)
        bot = make_bot(seed=seed, side_flip_prob=1.0)
        bot.tick(view(book), ex, T0 + HOUR)
        return ex.to_dict()

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_bot_state_round_trips_with_its_random_stream() -> None:
    """A restored bot makes the same random choices as the original from that point on."""
    bot = make_bot(seed=9, side_flip_prob=1.0)
    bot.choose_side(1)
    restored = GeneticBot.from_dict(bot.to_dict())
    assert restored.genome.to_dict() == bot.genome.to_dict()
    assert [restored.choose_side(1) for _ in range(20)] == [bot.choose_side(1) for _ in range(20)]
    with pytest.raises(ValueError, match="rng_state"):
        GeneticBot.from_dict({"genome": bot.genome.to_dict(), "rng_state": "nope"})


# -- population ---------------------------------------------------------------------------------


def moving_book(rng: random.Random, book: MarketBook | None = None) -> MarketBook:
    """Thirty markets in three categories at random prices (re-snapshotted on each call)."""
    if book is None:
        book = MarketBook()
        for i, cat in enumerate(CATS):
            book.apply(SeriesInfo(f"S{i}", cat, None, None, T0))
            book.apply(EventInfo(f"E{i}", f"S{i}", None, None, None, T0))
    for i in range(30):
        t = f"M{i:02d}"
        if t in book.markets and not book.markets[t].tradable:
            continue
        y = rng.randint(3, 97)
        n = max(1, min(99, 100 - y + rng.randint(-1, 4)))
        add_market(
            book, t, f"{y / 100:.2f}", f"{n / 100:.2f}",
            close_ms=T0 + (i % 20 + 2) * HOUR, event=f"E{i % 3}", contracts=rng.randint(1, 300),
        )  # fmt: skip
    book.record_tick()
    return book


@pytest.mark.parametrize("short_log", [False, True], ids=["log", "short-log"])
@pytest.mark.parametrize("compiled", [True, False], ids=["kernels", "dense"])
@pytest.mark.parametrize("n_bots", [3, 40])
def test_population_tick_equals_ticking_each_bot(
    n_bots: int, compiled: bool, short_log: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stacked evaluation trades exactly like per-bot ticks, over moving, settling markets,
    through the compiled pair kernels and, where numba cannot compile them, the dense rules;
    also when the exchange's change log keeps too little to say what changed since a tick."""
    assert pair_kernels() is not None  # numba is a dependency: the kernels are there
    if not compiled:
        monkeypatch.setattr(bot_module, "pair_kernels", lambda: None)
    if short_log:
        monkeypatch.setattr(ChangeLog, "KEEP", 1)
    grng = random.Random(11)
    genomes = [Genome.random(grng) for _ in range(n_bots)]
    bots_a = [GeneticBot(g, random.Random(g.id)) for g in genomes]
    bots_b = [GeneticBot(g, random.Random(g.id)) for g in genomes]
    mrng = random.Random(12)
    book = moving_book(mrng)
    ex_a = PaperExchange(book, BANKROLL)
    ex_b = PaperExchange(book, BANKROLL)
    lookbacks = needed_lookbacks(bots_a)
    total = 0
    for k in range(12):
        now = T0 + HOUR + k * 20 * 60_000
        v = MarketView.build(book, now, CATS, lookbacks)
        fills_a = run_population_tick(bots_a, v, ex_a, now)
        fills_b = sum(b.tick(v, ex_b, now) for b in bots_b)
        assert fills_a == fills_b
        total += fills_a
        if k % 4 == 3:
            t = f"M{k:02d}"
            book.apply(MarketDetermined(t, Side.YES if k % 8 == 3 else Side.NO, 0, now))
            ex_a.settle(t, now)
            ex_b.settle(t, now)
        moving_book(mrng, book)
    assert total > n_bots // 2
    assert ex_a.to_dict() == ex_b.to_dict()
    assert [b.rng.getstate() for b in bots_a] == [b.rng.getstate() for b in bots_b]


def test_needed_lookbacks_are_the_momentum_bots() -> None:
    """Only momentum bots contribute their lookback."""
    mom = make_bot(gid="00000010", signal_type=0.3, momentum_lookback=0.5)
    other = make_bot(gid="00000011", signal_type=0.9, momentum_lookback=0.9)
    assert mom.params.signal_type == "momentum"
    assert needed_lookbacks([mom, other]) == {30}


def test_population_tick_equals_ticking_each_bot_across_a_day_and_a_restored_exchange() -> None:
    """Limits kept between ticks follow the UTC-day roll, settlements and an exchange swapped for
    a restored copy exactly as per-bot ticks do (many bots are held to one trade a day)."""
    grng = random.Random(21)
    genomes = [Genome.random(grng) for _ in range(30)]
    for g in genomes[::2]:
        g.genes["max_trades_per_day"] = 0.0
    bots_a = [GeneticBot(g, random.Random(g.id)) for g in genomes]
    bots_b = [GeneticBot(g, random.Random(g.id)) for g in genomes]
    assert sum(b.params.max_trades_per_day <= 2 for b in bots_a) >= 15
    mrng = random.Random(22)
    book = moving_book(mrng)
    ex_a = PaperExchange(book, BANKROLL)
    ex_b = PaperExchange(book, BANKROLL)
    lookbacks = needed_lookbacks(bots_a)
    fills = []
    for k in range(11):
        now = T0 - 6 * HOUR + k * 2 * HOUR  # crosses midnight at T0
        if k == 2:  # as a resumed generation does: a new exchange from the saved state
            ex_a = PaperExchange.from_dict(ex_a.to_dict(), book)
            ex_b = PaperExchange.from_dict(ex_b.to_dict(), book)
        v = MarketView.build(book, now, CATS, lookbacks)
        fills_a = run_population_tick(bots_a, v, ex_a, now)
        assert fills_a == sum(b.tick(v, ex_b, now) for b in bots_b)
        fills.append(fills_a)
        if k % 3 == 2:
            for t in sorted(ex_a.held_tickers())[:3]:
                book.apply(MarketDetermined(t, Side.NO, 0, now))
                ex_a.settle(t, now)
                ex_b.settle(t, now)
        moving_book(mrng, book)
    assert sum(fills[:3]) > 0  # the day before midnight
    assert sum(fills[3:]) > 0  # and after it, when the day's limits start over
    assert ex_a.to_dict() == ex_b.to_dict()
    assert [b.rng.getstate() for b in bots_a] == [b.rng.getstate() for b in bots_b]


def test_two_populations_ticking_in_turn_each_trade_as_their_bots_would() -> None:
    """Populations ticked alternately keep their own state (accounts, limits) apart."""
    grng = random.Random(31)
    groups = [[Genome.random(grng) for _ in range(12)] for _ in range(2)]
    pops = [[GeneticBot(g, random.Random(g.id)) for g in gs] for gs in groups]
    singles = [[GeneticBot(g, random.Random(g.id)) for g in gs] for gs in groups]
    mrng = random.Random(32)
    book = moving_book(mrng)
    ex_pop = [PaperExchange(book, BANKROLL) for _ in groups]
    ex_single = [PaperExchange(book, BANKROLL) for _ in groups]
    total = 0
    for k in range(8):
        now = T0 + HOUR + k * 20 * 60_000
        v = MarketView.build(book, now, CATS, needed_lookbacks(pops[0] + pops[1]))
        for p in range(2):
            fills = run_population_tick(pops[p], v, ex_pop[p], now)
            assert fills == sum(b.tick(v, ex_single[p], now) for b in singles[p])
            total += fills
        moving_book(mrng, book)
    assert total > 4
    for p in range(2):
        assert ex_pop[p].to_dict() == ex_single[p].to_dict()
