"""Market view: which markets it holds and the features it computes, on hand-built books."""

from __future__ import annotations

import math
import sys
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evoarena.engine.book import MarketBook
from evoarena.engine.view import MarketView
from evoarena.feeds.events import (
    PRICE_ONE,
    BookInvalidated,
    BookSnapshot,
    EventInfo,
    Level,
    MarketInfo,
    MarketStatus,
    SeriesInfo,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000


def usd(text: str) -> int:
    """Dollar string to micro-dollars."""
    return int(Decimal(text) * PRICE_ONE)


def add_market(
    book: MarketBook,
    ticker: str,
    *,
    yes_bids: tuple[Level, ...] = ((usd("0.40"), 300),),
    no_bids: tuple[Level, ...] = ((usd("0.55"), 200),),
    status: MarketStatus = MarketStatus.ACTIVE,
    close_ms: int | None = T0 + 10 * HOUR,
    event: str | None = None,
    volume_24h: int | None = None,
    open_interest: int | None = None,
    snapshot: bool = True,
    history: tuple[int, ...] = (),
) -> None:
    """A market with the given ladders, lifecycle, activity and recorded YES-ask history."""
    book.apply(
        MarketInfo(
            ticker, event, status, T0 - HOUR, close_ms, ticker, None, None,
            volume_24h, open_interest, None, None, T0,
        )
    )  # fmt: skip
    if snapshot:
        book.apply(BookSnapshot(ticker, yes_bids, no_bids, T0))
    book.market(ticker).history.extend(history)


def test_prices_and_depth_come_from_the_best_bids() -> None:
    """YES ask = 1 − best NO bid, NO ask = 1 − best YES bid; depth is the top level's size."""
    book = MarketBook()
    add_market(
        book,
        "M",
        yes_bids=((usd("0.38"), 100), (usd("0.40"), 300)),
        no_bids=((usd("0.55"), 250), (usd("0.50"), 900)),
    )
    v = MarketView.build(book, T0, [])
    assert v.tickers == ["M"]
    assert v.yes_bid[0] == 0.40
    assert v.no_bid[0] == 0.55
    assert v.yes_ask[0] == 0.45
    assert v.no_ask[0] == 0.60
    assert v.yes_ask_depth[0] == 2.5  # contracts resting at the best NO bid
    assert v.no_ask_depth[0] == 3.0


def test_empty_ladder_gives_nan_on_the_other_side() -> None:
    """No NO bids means no YES ask (NaN), while the NO ask is still known."""
    book = MarketBook()
    add_market(book, "M", no_bids=())
    v = MarketView.build(book, T0, [])
    assert math.isnan(v.yes_ask[0])
    assert math.isnan(v.yes_ask_depth[0])
    assert math.isnan(v.no_bid[0])
    assert v.no_ask[0] == 0.60


def test_only_tradable_markets_in_ticker_order() -> None:
    """Stale, closed, book-less and past-close markets are left out; the rest sorted by ticker."""
    book = MarketBook()
    add_market(book, "ZZ")
    add_market(book, "AA")
    add_market(book, "STALE")
    book.apply(BookInvalidated(("STALE",), "gap", T0))
    add_market(book, "CLOSED", status=MarketStatus.CLOSED)
    add_market(book, "NOBOOK", snapshot=False)
    add_market(book, "EXPIRED", close_ms=T0)
    add_market(book, "NOCLOSE", close_ms=None)
    v = MarketView.build(book, T0, [])
    assert v.tickers == ["AA", "NOCLOSE", "ZZ"]
    assert len(v) == 3
    assert v.index == {"AA": 0, "NOCLOSE": 1, "ZZ": 2}
    assert [m.ticker for m in v.markets] == v.tickers


def test_expiry_volume_and_open_interest() -> None:
    """Hours to close, and 24 h volume / open interest in contracts (NaN when unreported)."""
    book = MarketBook()
    add_market(book, "A", close_ms=T0 + 90 * 60_000, volume_24h=12_345, open_interest=700)
    add_market(book, "B", close_ms=None)
    v = MarketView.build(book, T0, [])
    assert v.hours_to_expiry[0] == 1.5
    assert v.volume_24h[0] == 123.45
    assert v.open_interest[0] == 7.0
    assert math.isnan(v.hours_to_expiry[1])
    assert math.isnan(v.volume_24h[1])
    assert math.isnan(v.open_interest[1])


def test_category_index_follows_the_given_list() -> None:
    """Series category, indexed into the generation's list; unknown or unlisted is −1."""
    book = MarketBook()
    book.apply(SeriesInfo("S1", "Sports", None, None, T0))
    book.apply(SeriesInfo("S2", "Weather", None, None, T0))
    book.apply(EventInfo("E1", "S1", None, None, None, T0))
    book.apply(EventInfo("E2", "S2", None, None, None, T0))
    add_market(book, "A", event="E1")
    add_market(book, "B", event="E2")
    add_market(book, "C", event="E1")
    add_market(book, "D")
    v = MarketView.build(book, T0, ["Crypto", "Sports"])
    assert v.category_idx.tolist() == [1, -1, 1, -1]
    assert v.categories == ["Crypto", "Sports"]


def test_momentum_over_recorded_history() -> None:
    """(h[-1] − h[-1−k]) / h[-1−k], NaN without k + 1 points."""
    book = MarketBook()
    add_market(book, "M", history=(usd("0.50"), usd("0.55"), usd("0.60")))
    add_market(book, "N", history=(usd("0.40"),))
    v = MarketView.build(book, T0, [], lookbacks=[2])
    assert v.momentum(1)[0] == pytest.approx(0.05 / 0.55)
    assert v.momentum(2)[0] == pytest.approx(0.2)
    assert math.isnan(v.momentum(3)[0])
    assert math.isnan(v.momentum(1)[1])


def test_momentum_batch_equals_single_lookbacks() -> None:
    """momenta() fills the same rows momentum() computes one lookback at a time."""
    book = MarketBook()
    for i in range(5):
        add_market(
            book, f"M{i}", history=tuple(usd("0.30") + 7_000 * (j * i % 5) for j in range(i * 3))
        )
    batch = MarketView.build(book, T0, [], lookbacks=range(1, 14))
    for lb in range(1, 14):
        single = MarketView.build(book, T0, []).momentum(lb)
        np.testing.assert_array_equal(batch.momentum(lb), single)


def test_momentum_lookback_must_be_positive() -> None:
    """A zero lookback is a caller error."""
    book = MarketBook()
    add_market(book, "M", history=(1, 2, 3))
    v = MarketView.build(book, T0, [])
    with pytest.raises(ValueError, match="lookback"):
        v.momentum(0)
    with pytest.raises(ValueError, match="lookback"):
        MarketView.build(book, T0, [], lookbacks=[0, 3])


def test_mean_std_and_zscore() -> None:
    """Population mean/std of the history; z of the current YES ask against them."""
    hist = tuple(usd(p) for p in ("0.40", "0.42", "0.44", "0.46", "0.48") * 2)
    book = MarketBook()
    add_market(book, "M", history=hist, no_bids=((usd("0.50"), 100),))  # YES ask 0.50
    v = MarketView.build(book, T0, [])
    values = [h / PRICE_ONE for h in hist]
    mean = sum(values) / len(values)
    std = math.sqrt(sum((x - mean) ** 2 for x in values) / len(values))
    assert v.hist_mean[0] == pytest.approx(0.44)
    assert v.hist_std[0] == pytest.approx(std)
    assert v.zscore[0] == pytest.approx((0.50 - mean) / std)
    assert v.hist_len.tolist() == [10]


@settings(max_examples=200, deadline=None)
@given(
    history=st.lists(st.integers(0, PRICE_ONE), min_size=10, max_size=120),
    no_bid=st.integers(1, PRICE_ONE - 1),
)
def test_zscore_is_the_exact_value_rounded_at_most_twice(history: list[int], no_bid: int) -> None:
    """The z-score is within two roundings (a few ulps) of the exact ``(a − mean) / std``,
    however long and wide the history; no spread gives NaN."""
    book = MarketBook()
    add_market(book, "M", history=tuple(history), no_bids=((no_bid, 100),))
    z = float(MarketView.build(book, T0, []).zscore[0])
    n = len(history)
    mean = Fraction(sum(history), n)
    variance = sum((Fraction(x) - mean) ** 2 for x in history) / n
    if variance == 0:
        assert math.isnan(z)
        return
    exact = (PRICE_ONE - no_bid - mean) / Fraction(math.sqrt(variance))  # sqrt: one rounding
    assert math.isclose(z, float(exact), rel_tol=4 * sys.float_info.epsilon, abs_tol=1e-300)


def test_zscore_needs_ten_points_and_a_spread() -> None:
    """Nine points, or ten identical ones, give no z-score."""
    book = MarketBook()
    add_market(book, "NINE", history=tuple(usd("0.40") + k * 1000 for k in range(9)))
    add_market(book, "FLAT", history=(usd("0.45"),) * 12)
    add_market(book, "NONE")
    v = MarketView.build(book, T0, [])
    assert np.isnan(v.zscore).all()
    assert v.tickers == ["FLAT", "NINE", "NONE"]
    assert v.hist_std[0] == 0.0
    assert math.isnan(v.hist_mean[2])


def test_empty_book_gives_an_empty_view() -> None:
    """No tradable market: zero-length arrays, and features still work."""
    v = MarketView.build(MarketBook(), T0, ["Sports"], lookbacks=[1, 5])
    assert len(v) == 0
    assert v.yes_ask.shape == (0,)
    assert v.zscore.shape == (0,)
    assert v.momentum(3).shape == (0,)


def record(book: MarketBook, ticker: str, yes_asks: list[str]) -> None:
    """One tick per price: the market's book moves to that YES ask, then the book records."""
    for ask in yes_asks:
        book.apply(BookSnapshot(ticker, ((usd("0.10"), 100),), ((PRICE_ONE - usd(ask), 100),), T0))
        book.record_tick()


def test_history_features_use_only_the_kept_window() -> None:
    """After the ring wraps, the view sees the last ``history_len`` recorded YES asks, in order."""
    book = MarketBook(history_len=4)
    add_market(book, "M")
    record(book, "M", ["0.10", "0.20", "0.30", "0.40", "0.50", "0.80", "0.60"])  # keeps 0.4-0.6
    v = MarketView.build(book, T0, [])
    assert v.hist_len.tolist() == [4]
    assert v.hist_mean[0] == pytest.approx(0.575)
    assert v.momentum(1)[0] == pytest.approx(0.60 / 0.80 - 1)
    assert v.momentum(3)[0] == pytest.approx(0.60 / 0.40 - 1)
    assert math.isnan(v.momentum(4)[0])


def test_view_is_a_snapshot_of_the_history() -> None:
    """Ticks recorded after the build (even wrapping the ring) do not change a built view."""
    book = MarketBook(history_len=3)
    add_market(book, "M")
    record(book, "M", ["0.40", "0.50", "0.60"])
    v = MarketView.build(book, T0, [])
    record(book, "M", ["0.90", "0.95"])
    assert v.hist_len.tolist() == [3]
    assert v.hist_mean[0] == pytest.approx(0.50)
    assert v.momentum(2)[0] == pytest.approx(0.5)
    assert MarketView.build(book, T0, []).hist_mean[0] == pytest.approx((0.60 + 0.90 + 0.95) / 3)


def test_view_of_markets_from_two_books() -> None:
    """A view made directly over markets of different books reads each market's own history."""
    one, two = MarketBook(), MarketBook(history_len=5)
    add_market(one, "A", history=(usd("0.40"), usd("0.50")))
    add_market(two, "B", history=(usd("0.20"), usd("0.30"), usd("0.60")))
    add_market(two, "C")
    markets = [one.market("A"), two.market("B"), two.market("C")]
    v = MarketView(
        now_ms=T0, markets=markets, categories=[], category_idx=np.full(3, -1, dtype=np.int64)
    )
    assert v.hist_len.tolist() == [2, 3, 0]
    assert v.hist_mean[:2].tolist() == pytest.approx([0.45, 1.1 / 3])
    assert v.momentum(1)[:2].tolist() == pytest.approx([0.25, 1.0])
    assert math.isnan(v.hist_mean[2])


def varied_history_book() -> MarketBook:
    """Thirty markets with histories of 0 to 40 points (some flat), wrapping a 25-point ring."""
    book = MarketBook(history_len=25)
    for i in range(30):
        add_market(book, f"M{i:02d}", no_bids=((usd("0.50") + 1000 * (i % 7), 100),))
        flat = i % 6 == 0
        for k in range(i * 4 // 3):
            book.market(f"M{i:02d}").history.append(
                usd("0.45") + (0 if flat else 997 * (k * i % 11))
            )
    return book


def test_zscore_at_equals_the_full_zscore_bit_for_bit() -> None:
    """Rolling statistics of a subset of markets give exactly the full computation's values."""
    book = varied_history_book()
    full = MarketView.build(book, T0, []).zscore
    assert np.isfinite(full).sum() > 10
    for subset in ([0], [3, 4, 5], list(range(0, 30, 2)), list(range(30)), []):
        at = np.array(subset, dtype=np.int64)
        got = MarketView.build(book, T0, []).zscore_at(at)
        assert got.tobytes() == full[at].tobytes()


def test_momentum_at_equals_momentum_rows_bit_for_bit() -> None:
    """Momentum at (lookback, market) pairs is exactly the momentum rows' values there."""
    book = varied_history_book()
    v = MarketView.build(book, T0, [])
    lookbacks = np.array([1, 2, 5, 24, 1, 30, 7] * 10, dtype=np.int64)
    markets = np.arange(70, dtype=np.int64) % 30
    got = v.momentum_at(lookbacks, markets)
    want = np.array([v.momentum(int(lb))[m] for lb, m in zip(lookbacks, markets, strict=True)])
    assert np.isfinite(want).sum() > 20
    assert got.tobytes() == want.tobytes()
    with pytest.raises(ValueError, match="lookback"):
        v.momentum_at(np.array([0]), np.array([0]))


def test_history_reads_before_and_after_a_write_see_the_built_history() -> None:
    """Point reads straight from the store, and reads after the store changed, agree with a
    view whose history was copied at once."""
    book = varied_history_book()
    eager = MarketView.build(book, T0, [])
    want_z = eager.zscore.copy()
    want_m = eager.momentum(2).copy()
    markets = np.arange(30, dtype=np.int64)
    twos = np.full(30, 2, dtype=np.int64)
    early = MarketView.build(book, T0, [])
    assert early.zscore_at(markets).tobytes() == want_z.tobytes()  # read from the store
    assert early.momentum_at(twos, markets).tobytes() == want_m.tobytes()
    late = MarketView.build(book, T0, [])
    for _ in range(30):  # wraps every ring
        book.record_tick()
    assert early.zscore_at(markets).tobytes() == want_z.tobytes()  # copied before the writes
    assert late.zscore_at(markets).tobytes() == want_z.tobytes()
    assert late.momentum_at(twos, markets).tobytes() == want_m.tobytes()
    assert late.zscore.tobytes() == want_z.tobytes()
    assert MarketView.build(book, T0, []).zscore.tobytes() != want_z.tobytes()


def test_built_features_equal_the_per_market_computation_bit_for_bit() -> None:
    """A view built from the book's arrays holds exactly the features of a view made over the
    same markets one by one (missing values, unknown close times, a close-time bound)."""
    book = varied_history_book()
    add_market(book, "NOASK", no_bids=(), close_ms=None, volume_24h=12_345, open_interest=7)
    add_market(book, "NOBID", yes_bids=(), close_ms=T0 + 3 * HOUR + 17, volume_24h=0)
    for bound in (None, T0 + 5 * HOUR, T0 + 100 * HOUR):
        built = MarketView.build(book, T0 + 1234, ["x"], max_close_ms=bound)
        made = MarketView(
            now_ms=T0 + 1234,
            markets=built.markets,
            categories=["x"],
            category_idx=built.category_idx,
        )
        assert len(built) > 0
        for name in ("yes_ask", "no_ask", "hours_to_expiry", "volume_24h", "open_interest"):
            assert getattr(built, name).tobytes() == getattr(made, name).tobytes(), name
        assert built.hist_len.tolist() == made.hist_len.tolist()
