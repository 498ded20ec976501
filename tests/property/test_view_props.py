"""The vectorised market view equals a slow reference computed with loops over random books."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from evoarena.engine.book import MarketBook
from evoarena.engine.view import MIN_ZSCORE_POINTS, MarketView
from evoarena.feeds.events import (
    COUNT_ONE,
    PRICE_ONE,
    BookInvalidated,
    BookSnapshot,
    EventInfo,
    Level,
    MarketInfo,
    MarketStatus,
    SeriesInfo,
)

NOW = 1_767_225_600_000
HOUR = 3_600_000
TICKERS = ("KX-A", "KX-B", "KX-C", "KX-D", "KX-E", "KX-F")
CATEGORIES = ["Crypto", "Sports", "World"]
SERIES = {"S-CRYPTO": "Crypto", "S-SPORTS": "Sports", "S-OTHER": "Politics", "S-NONE": None}
NAN = float("nan")


@dataclass(frozen=True)
class Spec:
    """Everything the generator decides about one market."""

    yes_bids: tuple[Level, ...]
    no_bids: tuple[Level, ...]
    status: MarketStatus
    snapshot: bool
    stale: bool
    close_ms: int | None
    volume_24h: int | None
    open_interest: int | None
    series: str | None
    history: tuple[int, ...]


ladders = st.lists(
    st.tuples(st.integers(1, 999_999), st.integers(1, 50_000)),
    max_size=4,
    unique_by=lambda lv: lv[0],
).map(tuple)

# YES asks the book recorded; 0 (a NO bid at $1) exercises the zero-base momentum rule.
history_points = st.integers(1, PRICE_ONE - 1) | st.sampled_from((0, 400_000, 400_001))

specs = st.builds(
    Spec,
    yes_bids=ladders,
    no_bids=ladders,
    status=st.sampled_from(
        (MarketStatus.ACTIVE, MarketStatus.ACTIVE, MarketStatus.ACTIVE, MarketStatus.CLOSED)
    ),
    snapshot=st.integers(0, 5).map(lambda k: k != 0),
    stale=st.integers(0, 4).map(lambda k: k == 0),
    close_ms=st.none()
    | st.sampled_from((NOW - 1, NOW, NOW + 1))
    | st.integers(-2 * HOUR, 48 * HOUR).map(lambda d: NOW + d),
    volume_24h=st.none() | st.integers(0, 10**7),
    open_interest=st.none() | st.integers(0, 10**7),
    series=st.none() | st.sampled_from(sorted(SERIES)),
    history=st.one_of(
        st.lists(history_points, max_size=8),
        st.lists(history_points, max_size=30),
        st.lists(history_points, min_size=MIN_ZSCORE_POINTS - 1, max_size=MIN_ZSCORE_POINTS),
    ).map(tuple),
)

books = st.dictionaries(st.sampled_from(TICKERS), specs, max_size=len(TICKERS))


def make_book(markets: dict[str, Spec], history_len: int = 64) -> MarketBook:
    """Apply each spec to a fresh book (history written straight into the market's history)."""
    book = MarketBook(history_len=history_len)
    for series, cat in SERIES.items():
        book.apply(SeriesInfo(series, cat, None, None, NOW))
    for ticker, s in markets.items():
        event = None
        if s.series is not None:
            event = f"EV-{ticker}"
            book.apply(EventInfo(event, s.series, None, None, None, NOW))
        book.apply(
            MarketInfo(
                ticker, event, s.status, NOW - HOUR, s.close_ms, ticker, None, None,
                s.volume_24h, s.open_interest, None, None, NOW,
            )
        )  # fmt: skip
        if s.snapshot:
            book.apply(BookSnapshot(ticker, s.yes_bids, s.no_bids, NOW))
        if s.stale:
            book.apply(BookInvalidated((ticker,), "gap", NOW))
        book.market(ticker).history.extend(s.history)
    return book


def ratio(num: int, den: int) -> float:
    """Exact quotient, correctly rounded to a float."""
    return float(Fraction(num, den))


def best(levels: tuple[Level, ...]) -> Level | None:
    """Highest-priced level, by a plain loop."""
    top: Level | None = None
    for price, size in levels:
        if top is None or price > top[0]:
            top = (price, size)
    return top


def reference(
    markets: dict[str, Spec], lookbacks: list[int]
) -> tuple[list[str], dict[str, list[float]]]:
    """The tradable tickers in order, and every view feature by hand (NaN where undefined)."""
    tickers: list[str] = []
    out: dict[str, list[float]] = {}

    def put(key: str, value: float) -> None:
        out.setdefault(key, []).append(value)

    for ticker in sorted(markets):
        s = markets[ticker]
        if not (s.status is MarketStatus.ACTIVE and s.snapshot and not s.stale):
            continue
        if s.close_ms is not None and s.close_ms <= NOW:
            continue
        tickers.append(ticker)
        yes, no = best(s.yes_bids), best(s.no_bids)
        put("yes_bid", NAN if yes is None else ratio(yes[0], PRICE_ONE))
        put("no_bid", NAN if no is None else ratio(no[0], PRICE_ONE))
        put("yes_ask", NAN if no is None else ratio(PRICE_ONE - no[0], PRICE_ONE))
        put("no_ask", NAN if yes is None else ratio(PRICE_ONE - yes[0], PRICE_ONE))
        put("yes_ask_depth", NAN if no is None else ratio(no[1], COUNT_ONE))
        put("no_ask_depth", NAN if yes is None else ratio(yes[1], COUNT_ONE))
        put("hours_to_expiry", NAN if s.close_ms is None else ratio(s.close_ms - NOW, HOUR))
        put("volume_24h", NAN if s.volume_24h is None else ratio(s.volume_24h, COUNT_ONE))
        put("open_interest", NAN if s.open_interest is None else ratio(s.open_interest, COUNT_ONE))
        cat = None if s.series is None else SERIES[s.series]
        put("category_idx", CATEGORIES.index(cat) if cat in CATEGORIES else -1)
        h = s.history
        n = len(h)
        put("hist_len", n)
        mean = Fraction(sum(h), n) if n else None
        var = sum(((x - mean) ** 2 for x in h), Fraction(0)) / n if mean is not None else None
        put("hist_mean", NAN if mean is None else float(mean / PRICE_ONE))
        std = NAN if var is None else math.sqrt(var) / PRICE_ONE
        put("hist_std", std)
        z = NAN
        if mean is not None and var and n >= MIN_ZSCORE_POINTS and no is not None:
            z = float((PRICE_ONE - no[0] - mean) / PRICE_ONE) / std
        put("zscore", z)
        for lb in lookbacks:
            mom = NAN
            if n > lb and h[n - 1 - lb] > 0:
                mom = ratio(h[n - 1] - h[n - 1 - lb], h[n - 1 - lb])
            put(f"momentum_{lb}", mom)
    return tickers, out


def same(actual: list[float], expected: list[float], *, rel: float = 0.0) -> bool:
    """Element-wise equality (NaN equals NaN), within ``rel`` if given."""
    if len(actual) != len(expected):
        return False
    for a, e in zip(actual, expected, strict=True):
        if math.isnan(e) or math.isnan(a):
            if not (math.isnan(e) and math.isnan(a)):
                return False
        elif not (a == e if rel == 0.0 else math.isclose(a, e, rel_tol=rel, abs_tol=1e-12)):
            return False
    return True


EXACT = (
    "yes_bid",
    "no_bid",
    "yes_ask",
    "no_ask",
    "yes_ask_depth",
    "no_ask_depth",
    "hours_to_expiry",
    "volume_24h",
    "open_interest",
    "category_idx",
    "hist_len",
)


@settings(max_examples=80, deadline=None)
@given(markets=books, lookbacks=st.lists(st.integers(1, 10), max_size=4, unique=True))
def test_view_matches_hand_computed_reference(
    markets: dict[str, Spec], lookbacks: list[int]
) -> None:
    """Prices, depth, expiry, activity, category, history stats, z-scores and momenta agree."""
    book = make_book(markets)
    view = MarketView.build(book, NOW, CATEGORIES, lookbacks[:2])  # the rest computed lazily
    tickers, ref = reference(markets, lookbacks)
    assert view.tickers == tickers
    for key in EXACT:
        assert same(getattr(view, key).tolist(), ref.get(key, [])), key
    assert same(view.hist_mean.tolist(), ref.get("hist_mean", []), rel=1e-12)
    assert same(view.hist_std.tolist(), ref.get("hist_std", []), rel=1e-9)
    assert same(view.zscore.tolist(), ref.get("zscore", []), rel=1e-9)
    for lb in lookbacks:
        assert same(view.momentum(lb).tolist(), ref.get(f"momentum_{lb}", [])), lb


@settings(max_examples=40, deadline=None)
@given(
    markets=books,
    history_len=st.integers(1, 12),
    lookbacks=st.lists(st.integers(1, 12), max_size=3, unique=True),
)
def test_view_keeps_the_last_history_len_points(
    markets: dict[str, Spec], history_len: int, lookbacks: list[int]
) -> None:
    """With histories longer than the book keeps, the view equals the reference over each
    market's last ``history_len`` points."""
    book = make_book(markets, history_len)
    view = MarketView.build(book, NOW, CATEGORIES, lookbacks)
    kept = {t: replace(s, history=s.history[-history_len:]) for t, s in markets.items()}
    tickers, ref = reference(kept, lookbacks)
    assert view.tickers == tickers
    assert same(view.hist_len.tolist(), ref.get("hist_len", []))
    assert same(view.hist_mean.tolist(), ref.get("hist_mean", []), rel=1e-12)
    assert same(view.hist_std.tolist(), ref.get("hist_std", []), rel=1e-9)
    assert same(view.zscore.tolist(), ref.get("zscore", []), rel=1e-9)
    for lb in lookbacks:
        assert same(view.momentum(lb).tolist(), ref.get(f"momentum_{lb}", [])), lb
