"""Book properties: valid deltas keep sizes non-negative; snapshot + deltas = direct build;
an impossible delta makes the market stale (and untradable) until a fresh snapshot; price
histories behave like bounded deques."""

from __future__ import annotations

from collections import deque

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from evoarena.engine.book import MarketBook, PriceHistory, PriceHistoryStore
from evoarena.feeds.events import (
    PRICE_ONE,
    BookDelta,
    BookInvalidated,
    BookSnapshot,
    Level,
    MarketInfo,
    MarketStatus,
    Side,
)

T = 1_700_000_000_000
TICKER = "P-1"

prices = st.integers(1, 99).map(lambda c: c * 10_000) | st.integers(1, PRICE_ONE - 1)
sizes = st.integers(1, 50_000)
ladders = st.dictionaries(prices, sizes, max_size=8)
# A "move": side, an index used to pick an existing price (or a new one), and a raw amount.
moves = st.lists(
    st.tuples(st.sampled_from(Side), st.integers(0, 20), prices, st.integers(-60_000, 60_000)),
    max_size=40,
)


def _fresh(yes: dict[int, int], no: dict[int, int]) -> MarketBook:
    book = MarketBook()
    book.apply(
        MarketInfo(
            TICKER,
            None,
            MarketStatus.ACTIVE,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            T,
        )
    )
    book.apply(BookSnapshot(TICKER, _levels(yes), _levels(no), T))
    return book


def _levels(ladder: dict[int, int]) -> tuple[Level, ...]:
    return tuple(sorted(ladder.items(), reverse=True))


def _valid_deltas(
    yes: dict[int, int], no: dict[int, int], raw: list[tuple[Side, int, int, int]]
) -> tuple[list[BookDelta], dict[int, int], dict[int, int]]:
    """Turn raw moves into deltas that never take a level below zero, tracking the result."""
    model = {Side.YES: dict(yes), Side.NO: dict(no)}
    out: list[BookDelta] = []
    for side, pick, new_price, amount in raw:
        ladder = model[side]
        existing = sorted(ladder)
        price = existing[pick % len(existing)] if existing and pick % 3 else new_price
        current = ladder.get(price, 0)
        d = max(amount, -current)  # clamp: at most remove what rests there
        if d == 0:
            continue
        out.append(BookDelta(TICKER, side, price, d, T))
        if current + d == 0:
            ladder.pop(price, None)
        else:
            ladder[price] = current + d
    return out, model[Side.YES], model[Side.NO]


@settings(max_examples=60, deadline=None)
@given(yes=ladders, no=ladders, raw=moves)
def test_valid_deltas_keep_sizes_positive_and_book_fresh(
    yes: dict[int, int], no: dict[int, int], raw: list[tuple[Side, int, int, int]]
) -> None:
    """Any sequence of valid deltas: every resting size stays > 0 and the book stays fresh."""
    deltas, _, _ = _valid_deltas(yes, no, raw)
    book = _fresh(yes, no)
    m = book.market(TICKER)
    for d in deltas:
        book.apply(d)
        assert all(s > 0 for s in m.yes_bids.values())
        assert all(s > 0 for s in m.no_bids.values())
    assert not m.stale
    assert book.counters.impossible_deltas == 0


@settings(max_examples=60, deadline=None)
@given(yes=ladders, no=ladders, raw=moves)
def test_snapshot_then_deltas_equals_direct_build(
    yes: dict[int, int], no: dict[int, int], raw: list[tuple[Side, int, int, int]]
) -> None:
    """Snapshot + deltas gives the same ladders and best prices as a snapshot of the result."""
    deltas, final_yes, final_no = _valid_deltas(yes, no, raw)
    incremental = _fresh(yes, no)
    for d in deltas:
        incremental.apply(d)
    direct = _fresh(final_yes, final_no)
    a, b = incremental.market(TICKER), direct.market(TICKER)
    assert a.yes_bids == b.yes_bids == final_yes
    assert a.no_bids == b.no_bids == final_no
    assert (a.best_yes_bid, a.best_no_bid) == (b.best_yes_bid, b.best_no_bid)
    assert (a.best_yes_ask, a.best_no_ask) == (b.best_yes_ask, b.best_no_ask)
    assert a.best_yes_bid == (max(final_yes) if final_yes else None)
    assert a.best_yes_ask == (PRICE_ONE - max(final_no) if final_no else None)
    for side in Side:
        assert a.bid_levels(side) == b.bid_levels(side)
        assert a.ask_levels(side) == b.ask_levels(side)


@settings(max_examples=50, deadline=None)
@given(
    yes=ladders,
    no=ladders,
    before=moves,
    side=st.sampled_from(Side),
    price=prices,
    excess=st.integers(1, 1_000),
    after=moves,
    new_yes=ladders,
    new_no=ladders,
)
def test_impossible_delta_stales_until_snapshot(
    yes: dict[int, int],
    no: dict[int, int],
    before: list[tuple[Side, int, int, int]],
    side: Side,
    price: int,
    excess: int,
    after: list[tuple[Side, int, int, int]],
    new_yes: dict[int, int],
    new_no: dict[int, int],
) -> None:
    """A level going negative freezes the book as it was, stale and untradable, whatever deltas
    follow; the next snapshot makes it fresh and tradable again."""
    deltas, cur_yes, cur_no = _valid_deltas(yes, no, before)
    book = _fresh(yes, no)
    m = book.market(TICKER)
    for d in deltas:
        book.apply(d)
    assert m.tradable
    resting = (cur_yes if side is Side.YES else cur_no).get(price, 0)
    book.apply(BookDelta(TICKER, side, price, -(resting + excess), T))
    assert m.stale
    assert not m.tradable
    frozen = (dict(m.yes_bids), dict(m.no_bids))
    assert frozen == (cur_yes, cur_no)
    later, _, _ = _valid_deltas(cur_yes, cur_no, after)
    for d in later:
        book.apply(d)
        assert m.stale
        assert not m.tradable
    assert (m.yes_bids, m.no_bids) == frozen
    book.apply(BookSnapshot(TICKER, _levels(new_yes), _levels(new_no), T))
    assert not m.stale
    assert m.tradable
    assert (m.yes_bids, m.no_bids) == (new_yes, new_no)


# One history operation: (which of 5 histories, values to append; one value uses ``append``).
history_ops = st.lists(
    st.tuples(st.integers(0, 4), st.lists(st.integers(0, PRICE_ONE), min_size=1, max_size=9)),
    max_size=25,
)


@settings(max_examples=80, deadline=None)
@given(
    maxlen=st.integers(0, 7),
    ops=history_ops,
    batches=st.lists(st.dictionaries(st.integers(0, 4), st.integers(0, PRICE_ONE)), max_size=6),
    picks=st.lists(st.integers(0, 4), max_size=12),
)
def test_history_store_matches_bounded_deques(
    maxlen: int,
    ops: list[tuple[int, list[int]]],
    batches: list[dict[int, int]],
    picks: list[int],
) -> None:
    """Single appends, extends and batched appends keep each row equal to a bounded deque, and
    a gather over any rows (repeated, in any order) is their concatenation."""
    store = PriceHistoryStore(maxlen, capacity=2)  # small: the store grows during the test
    histories = [PriceHistory(store) for _ in range(5)]
    models: list[deque[int]] = [deque(maxlen=maxlen) for _ in range(5)]
    for i, values in ops:
        if len(values) == 1:
            histories[i].append(values[0])
        else:
            histories[i].extend(values)
        models[i].extend(values)
    for batch in batches:
        rows = [histories[i].own_row() for i in batch]
        store.append_rows(np.array(rows, dtype=np.int64), np.array(list(batch.values())))
        for i, v in batch.items():
            models[i].append(v)
    for h, model in zip(histories, models, strict=True):
        assert list(h) == list(model)
        assert len(h) == len(model)
    lengths, values = store.gather(np.array([histories[i].row for i in picks], dtype=np.int64))
    assert lengths.tolist() == [len(models[i]) for i in picks]
    assert values.tolist() == [v for i in picks for v in models[i]]


# Per tick and market: None (untouched), or (NO bid or None for an empty NO side, invalidate?).
tick_moves = st.lists(
    st.lists(
        st.none() | st.tuples(st.none() | st.integers(1, PRICE_ONE - 1), st.booleans()),
        min_size=3,
        max_size=3,
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(maxlen=st.integers(1, 5), ticks=tick_moves)
def test_record_tick_appends_fresh_yes_asks(
    maxlen: int, ticks: list[list[tuple[int | None, bool] | None]]
) -> None:
    """Each tick appends 1 − best NO bid for every fresh book with a NO bid, and nothing else."""
    book = MarketBook(history_len=maxlen)
    tickers = ("H-0", "H-1", "H-2")
    models: dict[str, deque[int]] = {t: deque(maxlen=maxlen) for t in tickers}
    fresh = dict.fromkeys(tickers, False)
    best_no: dict[str, int | None] = dict.fromkeys(tickers)
    for tick in ticks:
        for ticker, move in zip(tickers, tick, strict=True):
            if move is None:
                continue
            no_bid, invalidate = move
            book.apply(BookSnapshot(ticker, (), () if no_bid is None else ((no_bid, 1),), T))
            fresh[ticker], best_no[ticker] = True, no_bid
            if invalidate:
                book.apply(BookInvalidated((ticker,), "gap", T))
                fresh[ticker] = False
        book.record_tick()
        for ticker in tickers:
            no = best_no[ticker]
            if fresh[ticker] and no is not None:
                models[ticker].append(PRICE_ONE - no)
        for ticker in tickers:
            m = book.get(ticker)
            assert list(m.history if m is not None else ()) == list(models[ticker])


# One step of a category story: (kind, market, event, series, category), small pools so that
# markets move between events, events between series, and categories change under them.
category_steps = st.lists(
    st.tuples(
        st.sampled_from(["market", "event", "series", "read", "categories"]),
        st.integers(0, 7),
        st.integers(0, 3),
        st.integers(0, 2),
        st.sampled_from(["Crypto", "Sports", "World", ""]),
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(steps=category_steps)
def test_incremental_category_positions_equal_a_fresh_derivation(
    steps: list[tuple[str, int, int, int, str]],
) -> None:
    """However markets, events and series change, the arrays' category positions (kept up to
    date from the book's change log) equal the positions derived from scratch."""
    from evoarena.feeds.events import EventInfo, SeriesInfo

    book = MarketBook()
    lists = (["Crypto", "Sports", "World"], ["World", "Crypto"])
    cats = lists[0]

    def check() -> None:
        arrays = book.arrays()
        got = arrays.category_pos(book, cats).tolist()
        index = {c: i for i, c in enumerate(cats)}
        want = [
            -1 if (c := book.category(m.ticker)) is None else index.get(c, -1)
            for m in arrays.states
        ]
        assert got == want

    for kind, market, event, series, category in steps:
        if kind == "market":
            book.apply(
                MarketInfo(
                    f"M{market}", f"E{event}", MarketStatus.ACTIVE,
                    None, None, None, None, None, None, None, None, None, T,
                )
            )  # fmt: skip
        elif kind == "event":
            book.apply(
                EventInfo(f"E{event}", f"S{series}" if series else None, category, None, None, T)
            )
        elif kind == "series":
            book.apply(SeriesInfo(f"S{series}", category, None, None, T))
        elif kind == "categories":
            cats = lists[event % 2]
        else:
            check()
    check()


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.text("ABCXYZ-0189", min_size=1, max_size=6), min_size=1, max_size=24),
        max_size=8,
    )
)
def test_ticker_order_stays_sorted_as_markets_arrive(batches: list[list[str]]) -> None:
    """Rows added a few at a time (inserted) or many at once (sorted again) keep the arrays'
    order the ticker order."""
    book = MarketBook()
    for batch in batches:
        for ticker in batch:
            book.market(ticker)
        arrays = book.arrays()
        listed = [arrays.states[i].ticker for i in arrays.order.tolist()]
        assert listed == sorted(book.markets)
