"""MarketBook: ladders, derived prices, staleness, lifecycle, outcome, category, fees, history."""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evoarena.engine.book import MAX_HISTORY_LEN, MarketBook, MarketState, PriceHistoryStore
from evoarena.errors import ConfigError
from evoarena.feeds.events import (
    PRICE_ONE,
    BookDelta,
    BookInvalidated,
    BookSnapshot,
    CloseTimeChanged,
    EventFeeChanged,
    EventInfo,
    MarketDetermined,
    MarketInfo,
    MarketStatus,
    MarketStatusChanged,
    SeriesInfo,
    Side,
    TickerUpdate,
    TradePrint,
)
from evoarena.settings import load_settings

T = 1_700_000_000_000


def info(ticker: str, **kw: Any) -> MarketInfo:
    """A MarketInfo with every unspecified field unknown (``None``)."""
    fields: dict[str, Any] = dict.fromkeys(
        (
            "event_ticker",
            "status",
            "open_ms",
            "close_ms",
            "title",
            "result",
            "settlement_value",
            "volume_24h",
            "open_interest",
            "yes_bid",
            "yes_ask",
        )
    )
    fields.update(kw)
    return MarketInfo(ticker=ticker, ts_ms=T, **fields)


def open_book(ticker: str = "A") -> MarketBook:
    """A book with one active market: YES bids 0.40×5, 0.38×2; NO bids 0.55×3, 0.50×10."""
    book = MarketBook(history_len=3)
    book.apply(info(ticker, status=MarketStatus.ACTIVE))
    book.apply(
        BookSnapshot(
            ticker, ((400_000, 500), (380_000, 200)), ((550_000, 300), (500_000, 1_000)), T
        )
    )
    return book


def test_snapshot_sets_ladders_and_derived_prices() -> None:
    """Best bids are the ladder tops; asks are one minus the opposite side's best bid."""
    m = open_book().market("A")
    assert m.best_yes_bid == 400_000
    assert m.best_no_bid == 550_000
    assert m.best_yes_ask == 450_000  # 1 − 0.55
    assert m.best_no_ask == 600_000  # 1 − 0.40
    assert m.bid_levels(Side.YES) == [(400_000, 500), (380_000, 200)]
    assert m.bid_levels(Side.NO) == [(550_000, 300), (500_000, 1_000)]
    assert m.ask_levels(Side.YES) == [(450_000, 300), (500_000, 1_000)]
    assert m.ask_levels(Side.NO) == [(600_000, 500), (620_000, 200)]
    assert m.has_book
    assert m.tradable


def test_snapshot_replaces_the_whole_book() -> None:
    """A new snapshot drops every old level, including on an omitted (empty) side."""
    book = open_book()
    book.apply(BookSnapshot("A", ((100_000, 1),), (), T))
    m = book.market("A")
    assert m.bid_levels(Side.YES) == [(100_000, 1)]
    assert m.bid_levels(Side.NO) == []
    assert m.best_no_bid is None
    assert m.best_yes_ask is None


def test_deltas_add_change_and_remove_levels() -> None:
    """Deltas are relative; a level reaching zero disappears; best prices follow."""
    book = open_book()
    m = book.market("A")
    book.apply(BookDelta("A", Side.YES, 420_000, 100, T))
    assert m.best_yes_bid == 420_000
    assert m.best_no_ask == 580_000
    book.apply(BookDelta("A", Side.YES, 420_000, -100, T))
    assert m.best_yes_bid == 400_000
    assert 420_000 not in m.yes_bids
    book.apply(BookDelta("A", Side.NO, 550_000, -300, T))
    assert m.best_no_bid == 500_000
    assert m.best_yes_ask == 500_000
    book.apply(BookDelta("A", Side.NO, 500_000, 250, T))
    assert m.no_bids == {500_000: 1_250}
    book.apply(BookDelta("A", Side.NO, 500_000, -1_250, T))
    assert m.no_bids == {}
    assert m.best_no_bid is None
    assert m.best_yes_ask is None
    assert not m.stale
    assert book.counters.deltas == 5


def test_impossible_delta_marks_stale_until_a_fresh_snapshot() -> None:
    """A level going negative: the book is untouched, stale, not tradable, deaf to deltas."""
    book = open_book()
    m = book.market("A")
    book.apply(BookDelta("A", Side.YES, 380_000, -201, T))
    assert m.stale
    assert not m.tradable
    assert m.yes_bids == {400_000: 500, 380_000: 200}
    assert book.counters.impossible_deltas == 1
    assert book.stale_tickers() == ["A"]
    book.apply(BookDelta("A", Side.YES, 400_000, 7, T))
    assert m.yes_bids[400_000] == 500  # ignored while stale
    book.apply(BookSnapshot("A", ((300_000, 4),), ((600_000, 9),), T))
    assert not m.stale
    assert m.tradable
    assert book.stale_tickers() == []


def test_removing_a_missing_level_is_impossible() -> None:
    """A negative delta at a price with no resting size is impossible."""
    book = open_book()
    book.apply(BookDelta("A", Side.NO, 990_000, -1, T))
    assert book.market("A").stale


def test_delta_without_a_book_is_ignored_and_counted() -> None:
    """A delta for a market with no snapshot yet creates nothing and changes nothing."""
    book = MarketBook()
    book.apply(BookDelta("Z", Side.YES, 500_000, 100, T))
    assert book.get("Z") is None
    book.apply(info("Z", status=MarketStatus.ACTIVE))
    book.apply(BookDelta("Z", Side.YES, 500_000, 100, T))
    assert book.market("Z").yes_bids == {}
    assert not book.market("Z").tradable
    assert book.counters.deltas_without_book == 2


def test_invalidation_marks_known_markets_stale() -> None:
    """BookInvalidated distrusts the named books (unknown tickers are ignored)."""
    book = open_book()
    book.apply(BookInvalidated(("A", "NEVER-SEEN"), "seq gap on sid 2", T))
    assert book.market("A").stale
    assert not book.market("A").tradable
    assert book.get("NEVER-SEEN") is None
    assert book.counters.invalidations == 1


def test_tradable_needs_an_active_market() -> None:
    """A fresh book on a paused, closed or unknown-status market is not tradable."""
    book = open_book()
    m = book.market("A")
    for status in (MarketStatus.INACTIVE, MarketStatus.CLOSED, MarketStatus.INITIALIZED):
        book.apply(MarketStatusChanged("A", status, T))
        assert not m.tradable
    book.apply(MarketStatusChanged("A", MarketStatus.ACTIVE, T))
    assert m.tradable
    book.apply(BookSnapshot("B", (), (), T))
    assert book.market("B").status is MarketStatus.UNKNOWN
    assert not book.market("B").tradable


def test_market_info_updates_only_known_fields() -> None:
    """``None`` fields in MarketInfo leave what the book has."""
    book = MarketBook()
    book.apply(
        info("A", event_ticker="EV", title="t", open_ms=1, close_ms=2, status=MarketStatus.ACTIVE)
    )
    book.apply(info("A", volume_24h=500, open_interest=700))
    m = book.market("A")
    assert (m.event_ticker, m.title, m.open_ms, m.close_ms) == ("EV", "t", 1, 2)
    assert (m.status, m.volume_24h, m.open_interest) == (MarketStatus.ACTIVE, 500, 700)
    book.apply(CloseTimeChanged("A", 99, T))
    assert m.close_ms == 99


def test_ticker_and_trade_update_activity() -> None:
    """Ticker frames update volume, open interest and last price; trades the last price."""
    book = MarketBook()
    book.apply(TickerUpdate("A", 480_000, 450_000, 530_000, 3_000, None, 2_000, T))
    m = book.market("A")
    assert (m.last_price, m.volume, m.open_interest) == (480_000, 3_000, 2_000)
    book.apply(TickerUpdate("A", None, None, None, None, None, None, T))
    assert m.last_price == 480_000
    book.apply(TradePrint("A", 360_000, 100, Side.NO, T))
    assert m.last_price == 360_000


def test_determination_is_recorded_once_and_drained_once() -> None:
    """The first outcome wins; the market stops trading; drain returns it exactly once."""
    book = open_book()
    book.apply(MarketDetermined("A", Side.NO, 0, T))
    m = book.market("A")
    assert (m.result, m.settlement_value, m.status) == (Side.NO, 0, MarketStatus.DETERMINED)
    assert m.is_final
    assert not m.tradable
    book.apply(MarketDetermined("A", Side.YES, 1_000_000, T))
    assert m.result is Side.NO
    assert book.drain_determined() == ["A"]
    assert book.drain_determined() == []
    # A late "active" does not reopen it; "finalized" is accepted.
    book.apply(MarketStatusChanged("A", MarketStatus.ACTIVE, T))
    assert m.status is MarketStatus.DETERMINED
    book.apply(MarketStatusChanged("A", MarketStatus.FINALIZED, T))
    assert m.status is MarketStatus.FINALIZED
    assert book.counters.determined == 1


def test_scalar_determination_has_no_side() -> None:
    """A scalar market settles at its value with no yes/no result."""
    book = MarketBook()
    book.apply(MarketDetermined("S", None, 625_000, T))
    m = book.market("S")
    assert (m.result, m.settlement_value) == (None, 625_000)


def test_rest_info_of_a_finalized_market_determines_it() -> None:
    """Discovery of an already-settled market records its outcome; an open one's does not."""
    book = MarketBook()
    book.apply(
        info("F", status=MarketStatus.FINALIZED, result=Side.YES, settlement_value=1_000_000)
    )
    book.apply(info("O", status=MarketStatus.ACTIVE, settlement_value=1_000_000))
    assert book.market("F").settlement_value == 1_000_000
    assert book.market("F").status is MarketStatus.FINALIZED
    assert book.market("O").settlement_value is None
    assert book.drain_determined() == ["F"]


def test_category_prefers_the_series_then_the_event() -> None:
    """Category: the series' (authoritative), else the event's deprecated one."""
    book = MarketBook()
    book.apply(info("A", event_ticker="EV-A"))
    book.apply(info("B", event_ticker="EV-B"))
    book.apply(info("C"))
    book.apply(EventInfo("EV-A", "SER", "Old Category", None, None, T))
    book.apply(EventInfo("EV-B", "NO-SUCH-SERIES", "Economics", None, None, T))
    assert book.category("A") == "Old Category"  # series not known yet
    book.apply(SeriesInfo("SER", "Climate and Weather", "quadratic", Decimal(1), T))
    assert book.category("A") == "Climate and Weather"
    assert book.category("B") == "Economics"
    assert book.category("C") is None
    assert book.category("UNKNOWN") is None
    assert book.categories() == ["Climate and Weather", "Economics"]


def test_fee_params_event_override_then_series_then_default() -> None:
    """Fees: event override, else the series, else quadratic × 1; a cleared override falls back."""
    book = MarketBook()
    book.apply(info("A", event_ticker="EV"))
    book.apply(info("LONE"))
    assert book.fee_params("A") == ("quadratic", Decimal(1))
    assert book.fee_params("LONE") == ("quadratic", Decimal(1))
    book.apply(EventInfo("EV", "SER", None, None, None, T))
    book.apply(SeriesInfo("SER", "Economics", "flat", Decimal("0.25"), T))
    assert book.fee_params("A") == ("flat", Decimal("0.25"))
    book.apply(EventFeeChanged("EV", "quadratic_with_maker_fees", Decimal("0.5"), T))
    assert book.fee_params("A") == ("quadratic_with_maker_fees", Decimal("0.5"))
    book.apply(EventFeeChanged("EV", None, None, T))
    assert book.fee_params("A") == ("flat", Decimal("0.25"))


def test_price_history_is_bounded_and_skips_untrusted_books() -> None:
    """Each tick appends the YES ask of fresh books; the history keeps the last N."""
    book = open_book()
    m = book.market("A")
    for no_bid in (550_000, 560_000, 570_000, 580_000):
        book.apply(BookSnapshot("A", (), ((no_bid, 1),), T))
        book.record_tick()
    assert list(m.history) == [440_000, 430_000, 420_000]
    book.apply(BookInvalidated(("A",), "gap", T))
    book.record_tick()
    assert list(m.history) == [440_000, 430_000, 420_000]


def test_counters_by_type() -> None:
    """Every applied event is counted by its type."""
    book = open_book()
    book.apply(BookDelta("A", Side.YES, 400_000, 1, T))
    assert book.counters.events == 3
    assert book.counters.by_type == {"MarketInfo": 1, "BookSnapshot": 1, "BookDelta": 1}
    assert book.counters.snapshots == 1


def test_price_history_behaves_like_a_bounded_deque() -> None:
    """append/extend drop the oldest beyond maxlen; len, iteration, indexing and clear agree."""
    h = MarketBook(history_len=4).market("A").history
    ref: deque[int] = deque(maxlen=4)
    assert (len(h), list(h), h.maxlen) == (0, [], 4)
    for chunk in ([5], [6, 7], [8, 9, 10, 11, 12], [13]):
        h.extend(chunk)
        ref.extend(chunk)
        assert list(h) == list(ref)
        assert len(h) == len(ref)
    h.append(14)
    ref.append(14)
    assert list(h) == [11, 12, 13, 14] == list(ref)
    assert all(type(v) is int for v in h)
    assert (h[0], h[-1], h[1:3]) == (11, 14, [12, 13])
    assert h.to_array().tolist() == [11, 12, 13, 14]
    assert 13 in h
    assert repr(h) == "PriceHistory([11, 12, 13, 14], maxlen=4)"
    h.clear()
    assert (len(h), list(h)) == (0, [])
    h.extend([1, 2])
    assert list(h) == [1, 2]


def test_zero_length_history_keeps_nothing() -> None:
    """Like deque(maxlen=0): appends are accepted and forgotten."""
    book = MarketBook(history_len=0)
    book.apply(info("A", status=MarketStatus.ACTIVE))
    book.apply(BookSnapshot("A", (), ((550_000, 1),), T))
    book.record_tick()
    book.market("A").history.append(1)
    assert list(book.market("A").history) == []


def test_histories_live_in_the_books_store_and_survive_its_growth() -> None:
    """Markets take a store row on their first price only; growing the store keeps the values."""
    book = MarketBook(history_len=3)
    store = book.history_store
    book.apply(info("NEVER", status=MarketStatus.ACTIVE))  # no book: never records a price
    tickers = [f"M{i:03d}" for i in range(150)]  # more than the store's initial rows
    for i, t in enumerate(tickers):
        book.apply(info(t, status=MarketStatus.ACTIVE))
        book.apply(BookSnapshot(t, (), ((10_000 * (i % 90 + 1), 1),), T))
    for k in range(5):
        for i, t in enumerate(tickers):
            book.apply(BookSnapshot(t, (), ((10_000 * (i % 90 + 1) + k, 1),), T))
        book.record_tick()
    assert book.market("NEVER").history.row == 0
    assert len(book.market("NEVER").history) == 0
    assert store.n_rows == 1 + len(tickers)
    for i, t in enumerate(tickers):
        h = book.market(t).history
        assert h.store is store
        assert list(h) == [PRICE_ONE - 10_000 * (i % 90 + 1) - k for k in (2, 3, 4)]


def test_market_state_without_a_store_keeps_its_own_history() -> None:
    """A MarketState made on its own records into a private store of the right length."""
    m = MarketState("SOLO", 2)
    m.history.extend([1, 2, 3])
    assert list(m.history) == [2, 3]
    assert m.history.maxlen == 2
    with pytest.raises(ValueError, match="history_len"):
        MarketState("BAD", 3, PriceHistoryStore(2))


def test_history_store_guards_its_rows() -> None:
    """Row 0 is the shared empty history; a negative length or one whose exact sums would
    overflow int64 is refused."""
    store = PriceHistoryStore(3)
    with pytest.raises(ValueError, match="row 0"):
        store.append(0, 1)
    for bad in (-1, MAX_HISTORY_LEN + 1):
        with pytest.raises(ValueError, match=f"between 0 and {MAX_HISTORY_LEN}, was {bad}"):
            PriceHistoryStore(bad)
    assert np.iinfo(np.int64).max > MAX_HISTORY_LEN**2 * PRICE_ONE**2
    load_settings(None, {"trading": {"price_history_ticks": MAX_HISTORY_LEN}})
    with pytest.raises(ConfigError, match="price_history_ticks"):
        load_settings(None, {"trading": {"price_history_ticks": MAX_HISTORY_LEN + 1}})
    row = store.new_row()
    store.append(row, 7)
    lengths, values = store.gather(np.array([row, 0, row], dtype=np.int64))
    assert lengths.tolist() == [1, 0, 1]
    assert values.tolist() == [7, 7]


def test_book_arrays_hold_what_each_market_shows() -> None:
    """Rows (new and re-read dirty ones) equal market_row, tradable, fresh book and history row."""
    from evoarena.engine.book import market_row

    book = MarketBook(history_len=3)
    book.apply(info("A", status=MarketStatus.ACTIVE, close_ms=T + 5, volume_24h=700))
    book.apply(info("B", status=MarketStatus.CLOSED, open_interest=9))
    book.apply(info("C", status=MarketStatus.ACTIVE))
    book.apply(BookSnapshot("A", ((400_000, 500),), ((550_000, 300), (500_000, 1000)), T))
    book.apply(BookSnapshot("B", (), ((200_000, 100),), T))
    book.record_tick()
    book.apply(BookInvalidated(("A",), "gap", T))
    book.apply(BookSnapshot("C", ((10_000, 100),), (), T))
    arrays = book.arrays()
    for row, m in enumerate(arrays.states):
        want = [np.nan if v is None else float(v) for v in market_row(m)]
        np.testing.assert_array_equal(arrays.raw[row], want)
        assert arrays.tradable[row] == m.tradable
        assert arrays.fresh[row] == (m.has_book and not m.stale)
        assert arrays.hist_row[row] == m.history.row
    assert arrays.tradable.tolist() == [False, False, True]
    assert arrays.hist_row[0] > 0


@settings(max_examples=60, deadline=None)
@given(
    maxlen=st.integers(1, 6),
    ops=st.lists(
        st.tuples(
            st.sampled_from(("one", "rows", "clear")),
            st.integers(1, 4),
            st.lists(st.integers(0, PRICE_ONE), min_size=4, max_size=4),
        ),
        max_size=40,
    ),
)
def test_history_store_sums_stay_exact(maxlen: int, ops: list[tuple[str, int, list[int]]]) -> None:
    """Whatever is appended (one row or many at once) or cleared, each row's sums equal the sum
    and the sum of squares of the values it holds."""
    store = PriceHistoryStore(maxlen, capacity=2)  # rows grow as they are taken
    rows = [store.new_row() for _ in range(4)]
    for op, k, values in ops:
        if op == "one":
            store.append(rows[k - 1], values[0])
        elif op == "rows":
            store.append_rows(np.array(rows[:k], dtype=np.int64), np.array(values[:k]))
        else:
            store.clear(rows[k - 1])
    at = np.array(rows, dtype=np.int64)
    total, squares = store.sums(at)
    for row, s, q in zip(rows, total.tolist(), squares.tolist(), strict=True):
        held = [int(v) for v in store.values(row)]
        assert (s, q) == (sum(held), sum(v * v for v in held))
