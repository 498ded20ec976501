"""Money conservation of the paper exchange over random trade / settle / force-close sequences."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import Decimal

from hypothesis import event, given, settings
from hypothesis import strategies as st

from evoarena.engine.book import MarketBook
from evoarena.engine.paper import Fill, PaperExchange, Rejection
from evoarena.feeds.events import (
    COUNT_ONE,
    PRICE_ONE,
    BookSnapshot,
    EventInfo,
    Level,
    MarketDetermined,
    MarketInfo,
    MarketStatus,
    SeriesInfo,
    Side,
)

T0 = 1_767_225_600_000
HOUR = 3_600_000
TICKERS = ("A", "B", "C", "D")
BOTS = ("x", "y", "z")
BANKROLL = 5 * PRICE_ONE
TICK = 1_000  # prices on a 0.1-cent grid, including sub-penny levels


def oracle_fee(levels: tuple[tuple[int, int], ...], multiplier: Decimal) -> int:
    """ceil(M × 0.07 × Σ C·P·(1−P) in cents), computed with Decimal dollars."""
    total = sum(
        (c * (Decimal(p) / PRICE_ONE) * (1 - Decimal(p) / PRICE_ONE) for p, c in levels),
        Decimal(0),
    )
    return math.ceil(multiplier * Decimal("0.07") * total * 100) * (PRICE_ONE // 100)


ladders = st.lists(
    st.tuples(st.integers(1, 999).map(lambda k: k * TICK), st.integers(1, 800)),
    min_size=1,
    max_size=5,
    unique_by=lambda lv: lv[0],
).map(tuple)

buy_ops = st.tuples(
    st.just("buy"),
    st.sampled_from(BOTS),
    st.sampled_from(TICKERS),
    st.sampled_from((Side.YES, Side.NO)),
    st.one_of(
        st.integers(0, 800).map(lambda c: c * PRICE_ONE // 100), st.integers(0, 8 * PRICE_ONE)
    ),
    st.one_of(
        st.just((0, PRICE_ONE)),
        st.tuples(
            st.integers(0, 1000).map(lambda k: k * TICK),
            st.integers(0, 1000).map(lambda k: k * TICK),
        ),
    ),
)
settle_ops = st.tuples(
    st.just("settle"),
    st.sampled_from(TICKERS),
    st.sampled_from((0, PRICE_ONE, 350_000, 1)),
)
ops = st.lists(st.one_of(buy_ops, buy_ops, buy_ops, settle_ops), min_size=1, max_size=30)


@dataclass
class Ledger:
    """The test's own bookkeeping, independent of the exchange's counters."""

    cost: dict[str, int] = field(default_factory=dict)
    fee: dict[str, int] = field(default_factory=dict)
    payout: dict[str, int] = field(default_factory=dict)
    open: dict[tuple[str, str], Fill] = field(default_factory=dict)
    realized: dict[str, int] = field(default_factory=dict)


def make_book(books: dict[str, tuple[tuple[Level, ...], tuple[Level, ...]]]) -> MarketBook:
    """Active markets with the given (YES bids, NO bids); C has a 0.5 fee multiplier."""
    book = MarketBook()
    book.apply(SeriesInfo("HALF", "Financials", "quadratic", Decimal("0.5"), T0))
    book.apply(EventInfo("EV-C", "HALF", None, None, None, T0))
    for t, (yes, no) in books.items():
        book.apply(
            MarketInfo(
                t, "EV-C" if t == "C" else None, MarketStatus.ACTIVE, T0, T0 + 48 * HOUR,
                t, None, None, None, None, None, None, T0,
            )
        )  # fmt: skip
        book.apply(BookSnapshot(t, yes, no, T0))
    return book


def check_fill(ex: PaperExchange, f: Fill, budget: int, cash_before: int, lo: int, hi: int) -> None:
    """A fill respects budget, cash, bounds and depth, and its fee is the formula's."""
    assert f.cost + f.fee <= budget
    assert f.cost + f.fee <= cash_before
    assert f.contracts == sum(c for _, c in f.levels) > 0
    assert f.cost == sum(p * c for p, c in f.levels)
    m = ex.book.markets[f.ticker]
    depth = dict(m.ask_levels(f.side))
    for p, c in f.levels:
        assert lo <= p <= hi
        assert c <= depth[p] // COUNT_ONE
    assert [p for p, _ in f.levels] == sorted(p for p, _ in f.levels)
    _, mult = ex.book.fee_params(f.ticker)
    assert f.fee == oracle_fee(f.levels, mult)


def check_money(ex: PaperExchange, ledger: Ledger) -> None:
    """cash = bankroll − costs − fees + payouts, to the micro-dollar, and never negative."""
    for bot in BOTS:
        acct = ex.account(bot)
        expected = (
            BANKROLL - ledger.cost.get(bot, 0) - ledger.fee.get(bot, 0) + ledger.payout.get(bot, 0)
        )
        assert acct.cash == expected
        assert acct.cash >= 0
        assert acct.fees_paid == ledger.fee.get(bot, 0)
        assert acct.realized_pnl == ledger.realized.get(bot, 0)
        open_cost = sum(f.cost for (b, _), f in ledger.open.items() if b == bot)
        assert acct.equity == acct.cash + open_cost
        assert acct.n_open == sum(1 for b, _ in ledger.open if b == bot)


def close_all(ledger: Ledger, ticker: str, value: int | None) -> None:
    """Close the ledger's positions in ``ticker`` (``None`` = forced, payout 0)."""
    for key in [k for k in ledger.open if k[1] == ticker]:
        f = ledger.open.pop(key)
        per = 0 if value is None else (value if f.side is Side.YES else PRICE_ONE - value)
        pay = f.contracts * per
        ledger.payout[f.bot_id] = ledger.payout.get(f.bot_id, 0) + pay
        ledger.realized[f.bot_id] = ledger.realized.get(f.bot_id, 0) + pay - f.cost - f.fee


@settings(max_examples=100, deadline=None)
@given(
    books=st.fixed_dictionaries({t: st.tuples(ladders, ladders) for t in TICKERS}),
    script=ops,
)
def test_money_reconciles_exactly(
    books: dict[str, tuple[tuple[Level, ...], tuple[Level, ...]]],
    script: list[tuple[object, ...]],
) -> None:
    """Every step, and a final force-close, keep the books balanced; state round-trips."""
    ex = PaperExchange(make_book(books), BANKROLL)
    ledger = Ledger()
    now = T0
    settled: set[str] = set()
    for op in script:
        now += 1_000
        if op[0] == "buy":
            _, bot, ticker, side, budget, bounds = op
            assert isinstance(bot, str)
            assert isinstance(ticker, str)
            assert isinstance(side, Side)
            assert isinstance(budget, int)
            assert isinstance(bounds, tuple)
            lo, hi = min(bounds), max(bounds)
            cash_before = ex.account(bot).cash
            r = ex.buy(bot, ticker, side, budget, now, min_price=lo, max_price=hi)
            event(f"buy: {'fill' if isinstance(r, Fill) else r.reason.value}")
            if isinstance(r, Fill):
                check_fill(ex, r, budget, cash_before, lo, hi)
                assert (bot, ticker) not in ledger.open
                ledger.open[(bot, ticker)] = r
                ledger.cost[bot] = ledger.cost.get(bot, 0) + r.cost
                ledger.fee[bot] = ledger.fee.get(bot, 0) + r.fee
            else:
                assert isinstance(r, Rejection)
                assert ex.account(bot).cash == cash_before
        else:
            _, ticker, value = op
            assert isinstance(ticker, str)
            assert isinstance(value, int)
            if ticker not in settled:
                ex.book.apply(MarketDetermined(ticker, None, value, now))
                settled.add(ticker)
            value = ex.book.markets[ticker].settlement_value
            n_before = len([k for k in ledger.open if k[1] == ticker])
            assert ex.settle(ticker, now) == n_before
            close_all(ledger, ticker, value)
        check_money(ex, ledger)
    data = ex.to_dict()
    restored = PaperExchange.from_dict(json.loads(json.dumps(data)), ex.book)
    assert restored.to_dict() == data
    n_open = len(ledger.open)
    event(f"force-closed positions > 0: {n_open > 0}")
    assert ex.force_close_remaining(now + 1) == n_open
    for t in TICKERS:
        close_all(ledger, t, None)
    assert ex.held_tickers() == set()
    check_money(ex, ledger)
