"""Entry signals and market filters on hand-built views; population forms equal per-bot forms."""

from __future__ import annotations

import random
import sys
from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest
import structlog.testing

from evoarena.engine.book import MarketBook
from evoarena.engine.view import MarketView
from evoarena.evolution.genome import GENE_NAMES, SIGNAL_TYPES, BotParams, Genome
from evoarena.evolution.strategies import (
    SIGNAL_NO,
    SIGNAL_NONE,
    SIGNAL_YES,
    PairBuffers,
    PopulationParams,
    category_table,
    contrarian_signal,
    evaluate_pairs,
    market_filter,
    mean_reversion_signal,
    momentum_signal,
    pair_kernels,
    population_filter,
    population_pairs_of,
    population_signals,
    price_level_signal,
    signal,
    value_signal,
)
from evoarena.feeds.events import (
    PRICE_ONE,
    BookSnapshot,
    EventInfo,
    MarketInfo,
    MarketStatus,
    SeriesInfo,
)

T0 = 1_767_225_600_000
HOUR = 3_600_000
Y, N, NONE = SIGNAL_YES, SIGNAL_NO, SIGNAL_NONE


def usd(text: str) -> int:
    """Dollar string to micro-dollars."""
    return int(Decimal(text) * PRICE_ONE)


def add_market(
    book: MarketBook,
    ticker: str,
    yes_ask: str | None,
    no_ask: str | None,
    *,
    history: tuple[str, ...] = (),
    close_ms: int | None = T0 + 5 * HOUR,
    volume_24h: int | None = None,
    open_interest: int | None = None,
    event: str | None = None,
) -> None:
    """A market whose asks are as given (NO bids at 1 − YES ask, YES bids at 1 − NO ask)."""
    book.apply(
        MarketInfo(
            ticker, event, MarketStatus.ACTIVE, T0 - HOUR, close_ms, ticker, None, None,
            volume_24h, open_interest, None, None, T0,
        )
    )  # fmt: skip
    no_bids = () if yes_ask is None else ((PRICE_ONE - usd(yes_ask), 1000),)
    yes_bids = () if no_ask is None else ((PRICE_ONE - usd(no_ask), 1000),)
    book.apply(BookSnapshot(ticker, yes_bids, no_bids, T0))
    book.market(ticker).history.extend(usd(h) for h in history)


def view_of(*asks: tuple[str | None, str | None], history: tuple[str, ...] = ()) -> MarketView:
    """A view of markets M00, M01, ... with the given (YES ask, NO ask) pairs."""
    book = MarketBook()
    for i, (y, n) in enumerate(asks):
        add_market(book, f"M{i:02d}", y, n, history=history)
    return MarketView.build(book, T0, [])


def params(**overrides: object) -> BotParams:
    """Decoded mid-range genes, with some parameters set directly."""
    genes = dict.fromkeys(GENE_NAMES, 0.5)
    decoded = Genome("0000000a", 0, [], genes).decode()
    return replace(decoded, **overrides)  # type: ignore[arg-type]  # fields vary in type


def permissive(**overrides: object) -> BotParams:
    """Parameters whose filter admits every market unless an override narrows it."""
    base: dict[str, object] = {
        "min_volume_24h": 0.0,
        "min_open_interest": 0.0,
        "min_time_to_expiry_hrs": 0.0,
        "max_time_to_expiry_hrs": 48.0,
        "category_mask": 0,
    }
    return params(**(base | overrides))


# -- signals ------------------------------------------------------------------------------------


def test_price_level_buys_the_side_in_band() -> None:
    """A side whose ask is in [low, high] qualifies (inclusive); both ⇒ cheaper, tie ⇒ YES."""
    v = view_of(
        ("0.30", "0.75"),
        ("0.80", "0.25"),
        ("0.35", "0.35"),
        ("0.38", "0.36"),
        ("0.50", "0.55"),
        ("0.20", None),
        (None, "0.40"),
        ("0.19", "0.41"),
    )
    assert price_level_signal(v, 0.20, 0.40).tolist() == [Y, N, Y, N, NONE, Y, N, NONE]


def test_momentum_follows_moves_beyond_the_trigger() -> None:
    """+10 % ⇒ YES, −10 % ⇒ NO, +2.5 % or exactly the trigger ⇒ nothing, short history ⇒ nothing."""
    book = MarketBook()
    add_market(book, "A-UP", "0.44", "0.57", history=("0.40", "0.41", "0.44"))
    add_market(book, "B-DOWN", "0.36", "0.65", history=("0.40", "0.38", "0.36"))
    add_market(book, "C-FLAT", "0.41", "0.60", history=("0.40", "0.45", "0.41"))
    add_market(book, "D-EDGE", "0.42", "0.60", history=("0.40", "0.39", "0.42"))
    add_market(book, "E-SHORT", "0.50", "0.51", history=("0.40", "0.50"))
    v = MarketView.build(book, T0, [])
    assert momentum_signal(v, 2, 0.05).tolist() == [Y, N, NONE, NONE, NONE]
    # The decoded trigger may be negative; its magnitude is what counts.
    assert momentum_signal(v, 2, -0.05).tolist() == [Y, N, NONE, NONE, NONE]
    assert momentum_signal(v, 1, 0.05).tolist() == [Y, N, N, Y, Y]


def test_mean_reversion_bets_against_extremes() -> None:
    """z above the threshold ⇒ NO, below −threshold ⇒ YES; fewer than 10 points ⇒ nothing."""
    ten = ("0.40", "0.42", "0.44", "0.46", "0.48") * 2  # mean 0.44, std ≈ 0.0283
    book = MarketBook()
    add_market(book, "A-HIGH", "0.50", "0.51", history=ten)  # z ≈ +2.1
    add_market(book, "B-LOW", "0.38", "0.63", history=ten)  # z ≈ −2.1
    add_market(book, "C-MID", "0.45", "0.56", history=ten)  # z ≈ +0.35
    add_market(book, "D-NINE", "0.60", "0.41", history=ten[:9])
    add_market(book, "E-NOASK", None, "0.41", history=ten)
    v = MarketView.build(book, T0, [])
    assert mean_reversion_signal(v, 1.5).tolist() == [N, Y, NONE, NONE, NONE]
    assert mean_reversion_signal(v, 2.5).tolist() == [NONE] * 5
    assert mean_reversion_signal(v, 0.3).tolist() == [N, Y, N, NONE, NONE]


def test_value_buys_a_side_cheaper_than_half_minus_edge() -> None:
    """Edge 0.10: an ask strictly below 0.40 qualifies."""
    v = view_of(("0.35", "0.70"), ("0.70", "0.39"), ("0.40", "0.62"), ("0.45", "0.58"))
    assert value_signal(v, 0.10).tolist() == [Y, N, NONE, NONE]


def test_contrarian_buys_against_an_expensive_side() -> None:
    """Threshold 0.70: a side asked strictly above it ⇒ buy the other side."""
    v = view_of(("0.75", "0.28"), ("0.26", "0.80"), ("0.70", "0.32"), ("0.50", "0.52"))
    assert contrarian_signal(v, 0.70).tolist() == [N, Y, NONE, NONE]


@pytest.mark.parametrize("kind", SIGNAL_TYPES)
def test_signal_dispatches_on_the_genome_signal_type(kind: str) -> None:
    """signal() evaluates the rule named by signal_type with the genome's parameters."""
    v = view_of(
        ("0.10", "0.91"),
        ("0.45", "0.56"),
        ("0.90", "0.12"),
        history=("0.60", "0.40", "0.55", "0.45", "0.50") * 3,
    )
    p = params(
        signal_type=kind,
        price_threshold_low=0.05,
        price_threshold_high=0.50,
        momentum_lookback=1,
        momentum_trigger=0.05,
        mean_rev_zscore=0.5,
        value_edge_min=0.20,
        contrarian_threshold=0.85,
    )
    expected = {
        "price_level": price_level_signal(v, 0.05, 0.50),
        "momentum": momentum_signal(v, 1, 0.05),
        "mean_reversion": mean_reversion_signal(v, 0.5),
        "value": value_signal(v, 0.20),
        "contrarian": contrarian_signal(v, 0.85),
    }[kind]
    assert expected.any()
    np.testing.assert_array_equal(signal(p, v), expected)


def test_unknown_signal_type_is_an_error() -> None:
    """A signal type outside the five is refused with its name."""
    with pytest.raises(ValueError, match="astrology"):
        signal(params(signal_type="astrology"), view_of(("0.5", "0.5")))


# -- filters ------------------------------------------------------------------------------------


def test_filter_volume_and_open_interest_only_where_reported() -> None:
    """Below the minimum is excluded; unreported volume or open interest passes."""
    book = MarketBook()
    add_market(book, "A", "0.40", "0.61", volume_24h=200_000, open_interest=50_000)
    add_market(book, "B", "0.40", "0.61", volume_24h=99_900, open_interest=50_000)
    add_market(book, "C", "0.40", "0.61", volume_24h=200_000, open_interest=49_900)
    add_market(book, "D", "0.40", "0.61")
    v = MarketView.build(book, T0, [])
    p = permissive(min_volume_24h=1000.0, min_open_interest=500.0)
    ok = market_filter(p, v, price_low=0.01, price_high=0.99)
    assert ok.tolist() == [True, False, False, True]


def test_filter_time_to_expiry_window() -> None:
    """Hours to close within [min, max] (inclusive); an unknown close time fails."""
    book = MarketBook()
    for name, hours in (("A", 1), ("B", 2), ("C", 6), ("D", 7)):
        add_market(book, name, "0.40", "0.61", close_ms=T0 + hours * HOUR)
    add_market(book, "E", "0.40", "0.61", close_ms=None)
    v = MarketView.build(book, T0, [])
    p = permissive(min_time_to_expiry_hrs=2.0, max_time_to_expiry_hrs=6.0)
    assert market_filter(p, v, price_low=0.01, price_high=0.99).tolist() == [
        False, True, True, False, False,
    ]  # fmt: skip


def test_filter_needs_one_side_within_price_bounds() -> None:
    """Either side's ask inside [low, high] is enough; neither side fails."""
    v = view_of(("0.30", "0.72"), ("0.80", "0.21"), ("0.10", "0.91"), (None, "0.95"))
    p = permissive()
    assert market_filter(p, v, price_low=0.20, price_high=0.75).tolist() == [
        True, True, False, False,
    ]  # fmt: skip


def test_filter_category_mask() -> None:
    """Mask bit i admits categories[i]; unknown and unlisted categories always pass."""
    book = MarketBook()
    for series, cat in (("S0", "Crypto"), ("S1", "Sports"), ("S2", "World"), ("SX", "Other")):
        book.apply(SeriesInfo(series, cat, None, None, T0))
        book.apply(EventInfo(f"E-{series}", series, None, None, None, T0))
    add_market(book, "A", "0.40", "0.61", event="E-S0")
    add_market(book, "B", "0.40", "0.61", event="E-S1")
    add_market(book, "C", "0.40", "0.61", event="E-S2")
    add_market(book, "D", "0.40", "0.61", event="E-SX")
    add_market(book, "E", "0.40", "0.61")
    v = MarketView.build(book, T0, ["Crypto", "Sports", "World"])
    only_sports = permissive(category_mask=0b010)
    crypto_world = permissive(category_mask=0b101)
    everything = permissive()

    def admitted(p: BotParams) -> list[bool]:
        return [bool(x) for x in market_filter(p, v, price_low=0.01, price_high=0.99)]

    assert admitted(only_sports) == [False, True, False, True, True]
    assert admitted(crypto_world) == [True, False, True, True, True]
    assert all(admitted(everything))
    assert category_table(only_sports, v.categories).tolist() == [True, False, True, False]


# -- population forms ---------------------------------------------------------------------------


def mixed_view(*, unknown_close: bool = False) -> MarketView:
    """Forty markets with varied asks, histories, expiries, activity and categories (every fifth
    with an unknown close time if ``unknown_close``)."""
    rng = random.Random(7)
    book = MarketBook()
    cats = ["Crypto", "Sports", "World"]
    for i, cat in enumerate(cats):
        book.apply(SeriesInfo(f"S{i}", cat, None, None, T0))
        book.apply(EventInfo(f"E{i}", f"S{i}", None, None, None, T0))
    for i in range(40):
        y = rng.randint(2, 98)
        n = max(1, min(99, 100 - y + rng.randint(-2, 6)))
        hist = tuple(f"{max(1, min(99, y + rng.randint(-8, 8))) / 100:.2f}" for _ in range(30))
        add_market(
            book,
            f"M{i:02d}",
            None if i % 13 == 0 else f"{y / 100:.2f}",
            f"{n / 100:.2f}",
            history=hist[: rng.randint(0, 30)],
            close_ms=None if unknown_close and i % 5 == 1 else T0 + rng.randint(0, 30) * HOUR,
            volume_24h=None if i % 5 == 0 else rng.randint(0, 600_000),
            open_interest=None if i % 7 == 0 else rng.randint(0, 250_000),
            event=None if i % 4 == 0 else f"E{i % 3}",
        )
    return MarketView.build(book, T0, cats)


def test_population_signals_equal_per_bot_signals() -> None:
    """Each row of the stacked evaluation is exactly that bot's own signal."""
    v = mixed_view()
    rng = random.Random(3)
    ps = [Genome.random(rng).decode() for _ in range(60)]
    stacked = population_signals(ps, v)
    assert stacked.shape == (60, len(v))
    assert {p.signal_type for p in ps} == set(SIGNAL_TYPES)
    assert (stacked != 0).any()
    for row, p in enumerate(ps):
        np.testing.assert_array_equal(stacked[row], signal(p, v))


def test_population_filter_equals_per_bot_filter() -> None:
    """Each row of the stacked filter is exactly that bot's own market filter."""
    v = mixed_view()
    rng = random.Random(4)
    ps = [Genome.random(rng).decode() for _ in range(60)]
    lows = [p.min_price for p in ps]
    highs = [p.max_price for p in ps]
    tables = np.stack([category_table(p, v.categories) for p in ps])
    stacked = population_filter(
        ps, v, price_lows=lows, price_highs=highs, categories_allowed=tables
    )
    assert stacked.any()
    assert not stacked.all()
    for row, p in enumerate(ps):
        own = market_filter(p, v, price_low=lows[row], price_high=highs[row])
        np.testing.assert_array_equal(stacked[row], own)


def edge_params(v: MarketView, rng: random.Random, n: int) -> list[BotParams]:
    """Random bots, many with thresholds exactly at values the view holds (asks, z-scores,
    momenta, expiries) or with signs the decoder never makes, to test every boundary."""
    finite = lambda a: [float(x) for x in a if np.isfinite(x)]  # noqa: E731 — local helper
    asks = finite(v.yes_ask) + finite(v.no_ask)
    zs = finite(v.zscore)
    moms = finite(v.momentum(1)) + finite(v.momentum(3))
    hours = finite(v.hours_to_expiry)
    activity = finite(v.volume_24h) + finite(v.open_interest)
    out = []
    for _ in range(n):
        p = Genome.random(rng).decode()
        if rng.random() < 0.7:
            a, b = sorted(rng.sample(asks, 2))
            p = replace(
                p,
                price_threshold_low=a,
                price_threshold_high=b if rng.random() < 0.8 else a,
                value_edge_min=0.5 - rng.choice(asks),
                contrarian_threshold=rng.choice(asks),
                mean_rev_zscore=rng.choice(zs) * rng.choice((1, -1)),
                momentum_trigger=rng.choice([*moms, 0.0]) * rng.choice((1, -1)),
                momentum_lookback=rng.choice((1, 3)),
                min_time_to_expiry_hrs=rng.choice(hours) if rng.random() < 0.5 else 0.0,
                max_time_to_expiry_hrs=rng.choice(hours) if rng.random() < 0.3 else 48.0,
                min_volume_24h=rng.choice(activity) if rng.random() < 0.5 else 0.0,
                min_open_interest=rng.choice(activity) if rng.random() < 0.5 else 0.0,
                min_price=rng.choice(asks) if rng.random() < 0.5 else 0.0,
            )
        out.append(p)
    return out


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_population_pairs_equal_dense_filter_and_signals(seed: int) -> None:
    """The pair evaluation finds exactly the (bot, market) pairs, and signals, of the dense one."""
    v = mixed_view(unknown_close=seed % 2 == 1)
    rng = random.Random(seed)
    ps = edge_params(v, rng, 80)
    lows = [p.min_price for p in ps]
    highs = [p.max_price for p in ps]
    tables = np.stack([category_table(p, v.categories) for p in ps])
    pop = PopulationParams(ps, lows, highs)
    assert pop.rules is not None
    assert pop.rules.exact
    dense_sig = population_signals(ps, v)
    ok = (dense_sig != 0) & population_filter(
        ps, v, price_lows=lows, price_highs=highs, categories_allowed=tables
    )
    bots, markets, sigs, counts = population_pairs_of(pop.rules, v, tables)
    want_bots, want_markets = np.nonzero(ok)
    assert len(want_bots) > 20
    np.testing.assert_array_equal(bots, want_bots)
    np.testing.assert_array_equal(markets, want_markets)
    np.testing.assert_array_equal(sigs, dense_sig[want_bots, want_markets])
    np.testing.assert_array_equal(counts, ok.sum(axis=1))
    rows = np.array(sorted(rng.sample(range(80), 30)), dtype=np.intp)
    sub = pop.take(rows)
    assert sub.rules is not None
    b2, m2, s2, _ = population_pairs_of(sub.rules, v, tables[rows])
    keep = np.isin(bots, rows)
    np.testing.assert_array_equal(rows[b2], bots[keep])
    np.testing.assert_array_equal(m2, markets[keep])
    np.testing.assert_array_equal(s2, sigs[keep])


@pytest.mark.parametrize("seed", [5, 8])
def test_evaluate_pairs_skips_flagged_bots_and_grows_its_buffers(seed: int) -> None:
    """Bots flagged in ``skip`` have no pairs; the others have exactly their pairs of the whole
    population's evaluation, with their markets' asks, even from buffers with room for one."""
    v = mixed_view(unknown_close=seed % 2 == 1)
    rng = random.Random(seed)
    ps = edge_params(v, rng, 80)
    tables = np.stack([category_table(p, v.categories) for p in ps])
    pop = PopulationParams(ps, [p.min_price for p in ps], [p.max_price for p in ps])
    assert pop.rules is not None
    bots, markets, sigs, counts = population_pairs_of(pop.rules, v, tables)
    skip = np.array([rng.random() < 0.4 for _ in ps])
    buffers = PairBuffers(capacity=1)
    k, got_counts = evaluate_pairs(pop.rules, v, tables, skip, buffers)
    keep = ~skip[bots]
    assert k == int(keep.sum()) > 1
    assert buffers.room >= k
    np.testing.assert_array_equal(buffers.bots[:k], bots[keep])
    np.testing.assert_array_equal(buffers.markets[:k], markets[keep])
    np.testing.assert_array_equal(buffers.signals[:k], sigs[keep])
    np.testing.assert_array_equal(buffers.yes[:k], v.yes_ask[markets[keep]])
    np.testing.assert_array_equal(buffers.no[:k], v.no_ask[markets[keep]])
    np.testing.assert_array_equal(got_counts, np.where(skip, 0, counts))
    again, _ = evaluate_pairs(pop.rules, v, tables, skip, buffers)  # reused: the same pairs
    assert again == k
    np.testing.assert_array_equal(buffers.markets[:k], markets[keep])


def test_population_pairs_with_more_category_slots_than_a_mask_holds() -> None:
    """Seventy categories (slots past the kernel's 63-bit masks) and arbitrary tables: the
    pairs are still exactly the dense filter's and signals'."""
    v = mixed_view()
    rng = random.Random(11)
    ps = edge_params(v, rng, 60)
    v.categories = [f"C{i}" for i in range(70)]
    # Half the markets at the masks' edge or past it (slot = index + 1), the rest anywhere.
    v.category_idx = np.array(
        [rng.randrange(61, 70) if i % 2 else rng.randrange(-1, 70) for i in range(len(v))],
        dtype=np.int64,
    )
    tables = np.array([[rng.random() < 0.6 for _ in range(71)] for _ in ps])
    lows = [p.min_price for p in ps]
    highs = [p.max_price for p in ps]
    pop = PopulationParams(ps, lows, highs)
    assert pop.rules is not None
    dense_sig = population_signals(ps, v)
    ok = (dense_sig != 0) & population_filter(
        ps, v, price_lows=lows, price_highs=highs, categories_allowed=tables
    )
    bots, markets, sigs, counts = population_pairs_of(pop.rules, v, tables)
    want_bots, want_markets = np.nonzero(ok)
    assert len(want_bots) > 20
    past = v.category_idx[want_markets] >= 62
    assert past.any()
    assert (~tables[:, 63:]).any()
    np.testing.assert_array_equal(bots, want_bots)
    np.testing.assert_array_equal(markets, want_markets)
    np.testing.assert_array_equal(sigs, dense_sig[want_bots, want_markets])
    np.testing.assert_array_equal(counts, ok.sum(axis=1))


def test_pair_rules_fall_back_on_thresholds_that_are_not_finite() -> None:
    """A non-finite signal threshold cannot be rewritten exactly: the rules say so."""
    p = replace(Genome.random(random.Random(1)).decode(), signal_type="contrarian")
    inf = replace(p, contrarian_threshold=float("inf"))
    assert PopulationParams([p], [0.0], [1.0]).rules.exact  # type: ignore[union-attr]
    assert not PopulationParams([inf], [0.0], [1.0]).rules.exact  # type: ignore[union-attr]
    assert PopulationParams([p]).rules is None


def test_pair_rules_compare_nan_filter_thresholds_as_the_dense_filter() -> None:
    """A NaN filter threshold (hours, volume, open interest) decides as the dense filter does:
    a NaN expiry bound admits nothing, a NaN minimum activity admits everything."""
    v = mixed_view()
    base = edge_params(v, random.Random(8), 40)
    nan = float("nan")
    ps = [
        replace(p, min_time_to_expiry_hrs=nan)
        if i % 4 == 0
        else replace(p, min_volume_24h=nan, min_open_interest=nan)
        if i % 4 == 1
        else p
        for i, p in enumerate(base)
    ]
    lows = [p.min_price for p in ps]
    highs = [p.max_price for p in ps]
    tables = np.stack([category_table(p, v.categories) for p in ps])
    pop = PopulationParams(ps, lows, highs)
    assert pop.rules is not None
    dense_sig = population_signals(ps, v)
    ok = (dense_sig != 0) & population_filter(
        ps, v, price_lows=lows, price_highs=highs, categories_allowed=tables
    )
    assert ok[1::4].any()
    assert not ok[0::4].any()
    bots, markets, sigs, _ = population_pairs_of(pop.rules, v, tables)
    want_bots, want_markets = np.nonzero(ok)
    np.testing.assert_array_equal(bots, want_bots)
    np.testing.assert_array_equal(markets, want_markets)
    np.testing.assert_array_equal(sigs, dense_sig[want_bots, want_markets])


def test_pair_kernels_are_none_where_they_cannot_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the compiled kernels (numba missing or unable to compile), pair_kernels says so
    once, with a warning, and the population takes the dense rules."""
    pair_kernels.cache_clear()
    monkeypatch.setitem(sys.modules, "evoarena.evolution.kernels", None)  # the import fails
    try:
        with structlog.testing.capture_logs() as logs:
            assert pair_kernels() is None
            assert pair_kernels() is None
        assert [e["event"] for e in logs] == ["pair_kernels_unavailable"]
        assert "import of evoarena.evolution.kernels halted" in logs[0]["error"]
    finally:
        pair_kernels.cache_clear()
    monkeypatch.undo()
    assert pair_kernels() is not None
