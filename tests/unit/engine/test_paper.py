"""Paper exchange: fills against book depth, refusals, settlement, day roll, persistence."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest

from evoarena.engine.book import MarketBook
from evoarena.engine.paper import (
    DAY_MS,
    BotAccount,
    ChangeLog,
    Fill,
    PaperExchange,
    Position,
    Rejection,
    RejectReason,
)
from evoarena.feeds.events import (
    PRICE_ONE,
    BookInvalidated,
    BookSnapshot,
    EventFeeChanged,
    EventInfo,
    Level,
    MarketDetermined,
    MarketInfo,
    MarketStatus,
    MarketStatusChanged,
    SeriesInfo,
    Side,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
BANKROLL = 100 * PRICE_ONE


def usd(text: str) -> int:
    """Dollar string to micro-dollars."""
    return int(Decimal(text) * PRICE_ONE)


def add_market(
    book: MarketBook,
    ticker: str,
    *,
    yes_bids: tuple[Level, ...] = (),
    no_bids: tuple[Level, ...] = (),
    status: MarketStatus = MarketStatus.ACTIVE,
    event: str | None = None,
    snapshot: bool = True,
    close_ms: int = T0 + 7 * DAY_MS,
) -> None:
    """An active market with the given bid ladders."""
    book.apply(
        MarketInfo(
            ticker=ticker,
            event_ticker=event,
            status=status,
            open_ms=T0 - DAY_MS,
            close_ms=close_ms,
            title=ticker,
            result=None,
            settlement_value=None,
            volume_24h=None,
            open_interest=None,
            yes_bid=None,
            yes_ask=None,
            ts_ms=T0,
        )
    )
    if snapshot:
        book.apply(BookSnapshot(ticker, yes_bids, no_bids, T0))


def ladder_book() -> MarketBook:
    """One market: YES asks 0.40×3, 0.45×2, 0.50×10 (NO bids 0.60, 0.55, 0.50); NO ask 0.45×5."""
    book = MarketBook()
    add_market(
        book,
        "M",
        yes_bids=((usd("0.55"), 500),),
        no_bids=((usd("0.60"), 300), (usd("0.55"), 200), (usd("0.50"), 1000)),
    )
    return book


def fill(result: Fill | Rejection) -> Fill:
    """Narrow a buy result to a fill (fails the test otherwise)."""
    assert isinstance(result, Fill), result
    return result


def reason(result: Fill | Rejection) -> RejectReason:
    """Narrow a buy result to a rejection reason."""
    assert isinstance(result, Rejection), result
    return result.reason


# -- fills --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "budget", "bounds"),
    [
        (Side.YES, "3.00", (0, PRICE_ONE)),
        (Side.YES, "3.00", (0, usd("0.45"))),
        (Side.NO, "1.00", (0, PRICE_ONE)),
        (Side.YES, "0.30", (0, PRICE_ONE)),  # not one contract: refused
        (Side.YES, "3.00", (usd("0.41"), PRICE_ONE)),  # best ask below the bounds: refused
    ],
)
def test_open_position_is_buy_without_the_records(
    side: Side, budget: str, bounds: tuple[int, int]
) -> None:
    """The same position, levels and account as :meth:`PaperExchange.buy`, or the same reason
    for a refusal."""
    by_buy = PaperExchange(ladder_book(), BANKROLL)
    by_open = PaperExchange(ladder_book(), BANKROLL)
    low, high = bounds
    result = by_buy.buy("b", "M", side, usd(budget), T0, min_price=low, max_price=high)
    levels: list[tuple[int, int]] = []
    acct = by_open.account("b")
    opened = by_open.open_position(acct, "M", side, usd(budget), T0, low, high, levels)
    if isinstance(result, Rejection):
        assert opened == result.reason
        assert levels == []
    else:
        assert opened == by_buy.account("b").open_positions["M"]
        assert isinstance(opened, Position)
        assert (opened.contracts, opened.cost, opened.fee) == (
            result.contracts,
            result.cost,
            result.fee,
        )
        assert tuple(levels) == result.levels
    assert by_open.to_dict() == by_buy.to_dict()
    assert by_open.held_tickers() == by_buy.held_tickers()


def test_yes_buy_walks_no_bids_across_levels() -> None:
    """$3 buys 3 @0.40, 2 @0.45 and 1 @0.50 with a $0.11 fee (one more would exceed it)."""
    ex = PaperExchange(ladder_book(), BANKROLL)
    f = fill(ex.buy("b", "M", Side.YES, usd("3.00"), T0))
    assert f.levels == ((usd("0.40"), 3), (usd("0.45"), 2), (usd("0.50"), 1))
    assert f.contracts == 6
    assert f.cost == usd("2.60")
    assert f.fee == usd("0.11")
    assert f.avg_price * 6 == usd("2.60")
    acct = ex.account("b")
    assert acct.cash == BANKROLL - usd("2.71")
    assert acct.fees_paid == usd("0.11")
    assert acct.equity == BANKROLL - usd("0.11")


def test_no_buy_takes_yes_bids_at_one_minus_p() -> None:
    """A NO buy pays 1 − best YES bid."""
    ex = PaperExchange(ladder_book(), BANKROLL)
    f = fill(ex.buy("b", "M", Side.NO, usd("1.00"), T0))
    assert f.levels == ((usd("0.45"), 2),)
    assert f.cost + f.fee <= usd("1.00")


def test_fractional_level_allows_whole_contracts_only() -> None:
    """150 centi-contracts at a level allow one whole contract."""
    book = MarketBook()
    add_market(book, "M", no_bids=((usd("0.70"), 150),))
    ex = PaperExchange(book, BANKROLL)
    f = fill(ex.buy("b", "M", Side.YES, usd("10"), T0))
    assert f.levels == ((usd("0.30"), 1),)


def test_level_below_one_contract_is_no_liquidity() -> None:
    """A ladder with only fractional sizes cannot fill a whole contract."""
    book = MarketBook()
    add_market(book, "M", no_bids=((usd("0.70"), 60), (usd("0.69"), 90)))
    ex = PaperExchange(book, BANKROLL)
    assert reason(ex.buy("b", "M", Side.YES, usd("10"), T0)) is RejectReason.NO_LIQUIDITY


def test_fill_never_exceeds_budget() -> None:
    """Cost plus fee stays within the budget, and one more contract would not."""
    ex = PaperExchange(ladder_book(), BANKROLL)
    for budget in (usd("0.42"), usd("1.00"), usd("2.19"), usd("2.20"), usd("5.55")):
        f = fill(ex.buy(f"b{budget}", "M", Side.YES, budget, T0))
        assert f.cost + f.fee <= budget


def test_budget_capped_by_cash() -> None:
    """A budget above the cash spends at most the cash; cash never goes negative."""
    ex = PaperExchange(ladder_book(), usd("1.00"))
    f = fill(ex.buy("b", "M", Side.YES, usd("50"), T0))
    assert f.total <= usd("1.00")
    assert ex.account("b").cash >= 0
    assert f.levels == ((usd("0.40"), 2),)


def test_budget_too_small_for_one_contract_with_fee() -> None:
    """$0.40 cannot buy a $0.40 contract once its 2-cent fee is added."""
    ex = PaperExchange(ladder_book(), BANKROLL)
    assert reason(ex.buy("b", "M", Side.YES, usd("0.40"), T0)) is RejectReason.BUDGET_TOO_SMALL
    assert reason(ex.buy("b", "M", Side.YES, 0, T0)) is RejectReason.BUDGET_TOO_SMALL
    assert ex.account("b").cash == BANKROLL
    assert ex.account("b").total_trades == 0


def test_max_price_stops_the_walk() -> None:
    """Levels above max_price are not taken."""
    ex = PaperExchange(ladder_book(), BANKROLL)
    f = fill(ex.buy("b", "M", Side.YES, usd("10"), T0, max_price=usd("0.45")))
    assert f.levels == ((usd("0.40"), 3), (usd("0.45"), 2))


def test_best_ask_outside_bounds_is_refused() -> None:
    """A best ask above max_price or below min_price refuses the order."""
    ex = PaperExchange(ladder_book(), BANKROLL)
    r1 = ex.buy("b", "M", Side.YES, usd("10"), T0, max_price=usd("0.39"))
    r2 = ex.buy("b", "M", Side.YES, usd("10"), T0, min_price=usd("0.41"))
    assert reason(r1) is RejectReason.OUTSIDE_PRICE_BOUNDS
    assert reason(r2) is RejectReason.OUTSIDE_PRICE_BOUNDS


def test_bounds_are_inclusive() -> None:
    """An ask equal to a bound is allowed."""
    ex = PaperExchange(ladder_book(), BANKROLL)
    f = fill(ex.buy("b", "M", Side.YES, usd("1"), T0, min_price=usd("0.40"), max_price=usd("0.40")))
    assert f.levels == ((usd("0.40"), 2),)


def test_unknown_stale_closed_and_bookless_markets_refused() -> None:
    """Each untradable state has its own reason."""
    book = ladder_book()
    add_market(book, "STALE", no_bids=((usd("0.5"), 1000),))
    book.apply(BookInvalidated(("STALE",), "gap", T0))
    add_market(book, "CLOSED", no_bids=((usd("0.5"), 1000),))
    book.apply(MarketStatusChanged("CLOSED", MarketStatus.CLOSED, T0))
    add_market(book, "NOBOOK", snapshot=False)
    add_market(book, "EMPTY", yes_bids=((usd("0.5"), 1000),))
    ex = PaperExchange(book, BANKROLL)
    budget = usd("5")
    assert reason(ex.buy("b", "NOPE", Side.YES, budget, T0)) is RejectReason.UNKNOWN_MARKET
    assert reason(ex.buy("b", "STALE", Side.YES, budget, T0)) is RejectReason.STALE
    assert reason(ex.buy("b", "CLOSED", Side.YES, budget, T0)) is RejectReason.NOT_TRADABLE
    assert reason(ex.buy("b", "NOBOOK", Side.YES, budget, T0)) is RejectReason.NO_LIQUIDITY
    assert reason(ex.buy("b", "EMPTY", Side.YES, budget, T0)) is RejectReason.NO_LIQUIDITY
    assert ex.account("b").cash == BANKROLL


def test_market_past_its_close_time_refused() -> None:
    """An active market whose close time has come is not traded, even before a status event."""
    book = MarketBook()
    add_market(book, "M", no_bids=((usd("0.5"), 1000),), close_ms=T0 + 60_000)
    ex = PaperExchange(book, BANKROLL)
    at_close = ex.buy("b", "M", Side.YES, usd("5"), T0 + 60_000)
    assert reason(at_close) is RejectReason.MARKET_CLOSED
    assert ex.account("b").cash == BANKROLL
    fill(ex.buy("b", "M", Side.YES, usd("5"), T0 + 59_999))


def test_cash_never_goes_negative_over_many_buys() -> None:
    """Budgets far above the cash drain it to at most zero, never below."""
    book = MarketBook()
    for i in range(6):
        add_market(book, f"M{i}", no_bids=((usd("0.5"), 100_000),))
    ex = PaperExchange(book, usd("3.00"))
    for i in range(6):
        ex.buy("b", f"M{i}", Side.YES, usd("100"), T0)
        assert ex.account("b").cash >= 0
    acct = ex.account("b")
    assert acct.cash < usd("0.52")  # nothing left that buys one more contract with its fee
    assert acct.cash == usd("3.00") - acct.total_cost - acct.fees_paid


def test_second_buy_on_held_market_refused() -> None:
    """One open position per market per bot, whatever the side."""
    ex = PaperExchange(ladder_book(), BANKROLL)
    fill(ex.buy("b", "M", Side.YES, usd("1"), T0))
    assert reason(ex.buy("b", "M", Side.NO, usd("1"), T0)) is RejectReason.ALREADY_HOLDING
    assert ex.account("b").n_open == 1


def test_fills_do_not_consume_liquidity_for_other_bots() -> None:
    """Two bots can each take the whole 3-contract level: counterfactual worlds."""
    ex = PaperExchange(ladder_book(), BANKROLL)
    a = fill(ex.buy("a", "M", Side.YES, usd("1.30"), T0))
    b = fill(ex.buy("b", "M", Side.YES, usd("1.30"), T0))
    assert a.levels == b.levels == ((usd("0.40"), 3),)


def test_fee_multiplier_comes_from_series() -> None:
    """A half-rate series halves the fee: 100 @0.50 pays $0.88 instead of $1.75."""
    book = MarketBook()
    book.apply(SeriesInfo("S", "Financials", "quadratic", Decimal("0.5"), T0))
    book.apply(EventInfo("E", "S", None, None, None, T0))
    add_market(book, "M", event="E", no_bids=((usd("0.50"), 100_00),))
    ex = PaperExchange(book, BANKROLL)
    f = fill(ex.buy("b", "M", Side.YES, usd("50.88"), T0))
    assert f.contracts == 100
    assert f.fee == usd("0.88")


def test_event_fee_override_beats_the_series() -> None:
    """An event's fee multiplier override (here 1.5 over a 0.5 series) sets the fee."""
    book = MarketBook()
    book.apply(SeriesInfo("S", "Financials", "quadratic", Decimal("0.5"), T0))
    book.apply(EventInfo("E", "S", None, None, None, T0))
    book.apply(EventFeeChanged("E", "quadratic", Decimal("1.5"), T0))
    add_market(book, "M", event="E", no_bids=((usd("0.50"), 100_00),))
    ex = PaperExchange(book, BANKROLL)
    f = fill(ex.buy("b", "M", Side.YES, usd("60"), T0))
    assert f.contracts == 100
    assert f.fee == usd("2.63")  # 1.5 × 0.07 × 100 × 0.25 = 2.625 → up to the cent


# -- settlement ---------------------------------------------------------------------------------


def determined_book(value: str) -> tuple[PaperExchange, Fill, Fill]:
    """Bot y holds YES, bot n holds NO in M; then M settles at ``value``."""
    ex = PaperExchange(ladder_book(), BANKROLL)
    y = fill(ex.buy("y", "M", Side.YES, usd("1.30"), T0))
    n = fill(ex.buy("n", "M", Side.NO, usd("0.95"), T0))
    result = {"1": Side.YES, "0": Side.NO}.get(value)
    ex.book.apply(MarketDetermined("M", result, usd(value), T0 + 1000))
    return ex, y, n


@pytest.mark.parametrize(
    ("value", "yes_per_contract", "no_per_contract"),
    [("1", "1", "0"), ("0", "0", "1"), ("0.35", "0.35", "0.65")],
)
def test_settlement_pays_each_side(value: str, yes_per_contract: str, no_per_contract: str) -> None:
    """YES gets the settlement value per contract, NO gets one minus it."""
    ex, y, n = determined_book(value)
    assert ex.held_tickers() == {"M"}
    assert ex.settle("M", T0 + 2000) == 2
    assert ex.held_tickers() == set()
    for bot, f, per in (("y", y, yes_per_contract), ("n", n, no_per_contract)):
        acct = ex.account(bot)
        payout = f.contracts * usd(per)
        assert acct.n_open == 0
        assert acct.n_settled == 1
        closed = acct.closed_positions[0]
        assert closed.payout == payout
        assert closed.realized_pnl == payout - f.cost - f.fee
        assert acct.realized_pnl == payout - f.cost - f.fee
        assert acct.cash == BANKROLL - f.cost - f.fee + payout
        assert acct.win_rate == (1.0 if payout > f.cost + f.fee else 0.0)
        assert acct.roi_pct == pytest.approx(acct.realized_pnl / BANKROLL * 100)


def test_settle_without_outcome_does_nothing() -> None:
    """A market with no settlement value yet leaves positions open."""
    ex = PaperExchange(ladder_book(), BANKROLL)
    fill(ex.buy("y", "M", Side.YES, usd("1"), T0))
    assert ex.settle("M", T0) == 0
    assert ex.settle("UNKNOWN", T0) == 0
    assert ex.account("y").n_open == 1


def test_settle_determined_settles_every_known_outcome() -> None:
    """Only markets with a known outcome are settled."""
    book = ladder_book()
    add_market(book, "OTHER", no_bids=((usd("0.5"), 1000),))
    ex = PaperExchange(book, BANKROLL)
    fill(ex.buy("y", "M", Side.YES, usd("1"), T0))
    fill(ex.buy("y", "OTHER", Side.YES, usd("1"), T0))
    book.apply(MarketDetermined("M", Side.YES, PRICE_ONE, T0))
    assert ex.settle_determined(T0) == 1
    assert ex.held_tickers() == {"OTHER"}


def test_force_close_is_a_total_loss() -> None:
    """Force-closed positions pay nothing and lose cost plus fee."""
    ex = PaperExchange(ladder_book(), BANKROLL)
    f = fill(ex.buy("y", "M", Side.YES, usd("1.30"), T0))
    g = fill(ex.buy("n", "M", Side.NO, usd("0.95"), T0))
    assert ex.force_close_remaining(T0 + 5) == 2
    assert ex.held_tickers() == set()
    for bot, x in (("y", f), ("n", g)):
        acct = ex.account(bot)
        assert acct.realized_pnl == -(x.cost + x.fee)
        assert acct.cash == BANKROLL - x.cost - x.fee
        assert acct.n_settled == 1
        assert acct.n_forced == 1
        assert acct.win_rate == 0.0
        assert acct.closed_positions[0].forced
    assert ex.force_close_remaining(T0 + 6) == 0


# -- accounting ---------------------------------------------------------------------------------


def test_daily_counters_reset_at_utc_midnight() -> None:
    """Trades today and daily P&L restart at the UTC day boundary of now_ms."""
    book = ladder_book()
    add_market(book, "N", no_bids=((usd("0.5"), 1000),))
    ex = PaperExchange(book, BANKROLL)
    before_midnight = T0 + DAY_MS - 1
    f = fill(ex.buy("b", "M", Side.YES, usd("1.30"), before_midnight))
    acct = ex.account("b")
    assert acct.trades_today == 1
    assert acct.daily_pnl == -f.fee
    acct.roll_to(T0 + DAY_MS)
    assert acct.trades_today == 0
    assert acct.daily_pnl == 0
    book.apply(MarketDetermined("M", Side.NO, 0, T0 + DAY_MS + 10))
    ex.settle("M", T0 + DAY_MS + 20)
    assert acct.daily_pnl == -f.cost
    g = fill(ex.buy("b", "N", Side.YES, usd("1"), T0 + DAY_MS + 30))
    assert acct.trades_today == 1
    assert acct.daily_pnl == -f.cost - g.fee
    assert acct.total_trades == 2
    acct.roll_to(T0)  # time never runs backwards for the day counter
    assert acct.trades_today == 1


def test_unrealized_pnl_values_positions_at_bids() -> None:
    """An open YES position is worth its contracts at the best YES bid."""
    ex = PaperExchange(ladder_book(), BANKROLL)
    f = fill(ex.buy("b", "M", Side.YES, usd("1.30"), T0))
    assert ex.account("b").unrealized_pnl(ex.book) == 3 * usd("0.55") - f.cost


def test_account_reports_dollar_figures() -> None:
    """Dollar convenience properties mirror the micro-dollar integers."""
    ex = PaperExchange(ladder_book(), BANKROLL)
    fill(ex.buy("b", "M", Side.YES, usd("1.30"), T0))
    acct = ex.account("b")
    assert acct.fees_paid_usd == pytest.approx(0.06)
    assert acct.cash_usd == pytest.approx(100 - 1.20 - 0.06)
    summary = acct.summary()
    assert summary["total_trades"] == 1
    assert summary["n_open"] == 1


def test_invalid_bankroll_refused() -> None:
    """Accounts and exchanges need a positive bankroll."""
    with pytest.raises(ValueError, match="bankroll"):
        PaperExchange(MarketBook(), 0)
    with pytest.raises(ValueError, match="bankroll"):
        BotAccount("b", -1)


# -- persistence --------------------------------------------------------------------------------


def busy_exchange() -> PaperExchange:
    """Accounts with open, settled and force-closed positions across two days."""
    book = ladder_book()
    add_market(book, "N", yes_bids=((usd("0.3"), 900),), no_bids=((usd("0.6"), 900),))
    ex = PaperExchange(book, BANKROLL)
    fill(ex.buy("a", "M", Side.YES, usd("2"), T0))
    fill(ex.buy("b", "M", Side.NO, usd("0.5"), T0))
    fill(ex.buy("a", "N", Side.NO, usd("1.5"), T0 + DAY_MS))
    book.apply(MarketDetermined("M", Side.YES, PRICE_ONE, T0 + DAY_MS))
    ex.settle("M", T0 + DAY_MS + 1)
    ex.account("c")
    return ex


def test_to_dict_round_trips_exactly() -> None:
    """JSON out and back gives the same state, and the restored exchange keeps working."""
    ex = busy_exchange()
    data = ex.to_dict()
    restored = PaperExchange.from_dict(json.loads(json.dumps(data)), ex.book)
    assert restored.to_dict() == data
    assert restored.held_tickers() == ex.held_tickers() == {"N"}
    for bot in ("a", "b", "c"):
        x, y = ex.account(bot), restored.account(bot)
        assert (x.cash, x.realized_pnl, x.win_rate, x.daily_pnl, x.equity) == (
            y.cash,
            y.realized_pnl,
            y.win_rate,
            y.daily_pnl,
            y.equity,
        )
    assert reason(restored.buy("a", "N", Side.YES, usd("1"), T0)) is RejectReason.ALREADY_HOLDING
    fill(restored.buy("b", "N", Side.YES, usd("1"), T0 + DAY_MS))
    assert restored.force_close_remaining(T0 + 2 * DAY_MS) == 2


def test_from_dict_rejects_unbalanced_books() -> None:
    """Tampered cash, a wrong schema or a bad side are refused with a message."""
    data = busy_exchange().to_dict()
    bad_cash = json.loads(json.dumps(data))
    bad_cash["accounts"][0]["cash"] += 1
    with pytest.raises(ValueError, match="reconcile"):
        PaperExchange.from_dict(bad_cash, MarketBook())
    bad_schema = dict(data, schema=99)
    with pytest.raises(ValueError, match="schema"):
        PaperExchange.from_dict(bad_schema, MarketBook())
    bad_side = json.loads(json.dumps(data))
    bad_side["accounts"][0]["open_positions"][0]["side"] = "maybe"
    with pytest.raises(ValueError, match="side"):
        PaperExchange.from_dict(bad_side, MarketBook())
    bad_trades = json.loads(json.dumps(data))
    bad_trades["accounts"][0]["total_trades"] = 7
    with pytest.raises(ValueError, match="total_trades"):
        PaperExchange.from_dict(bad_trades, MarketBook())


# -- deadline policy: close at the last fresh bid -----------------------------------------------


def _taker_fee(price: int, contracts: int) -> int:
    """Kalshi's taker fee recomputed from scratch: ceil to the cent of 0.07·C·P·(1−P) dollars."""
    raw = (
        Fraction(7, 100) * contracts * Fraction(price, PRICE_ONE) * (1 - Fraction(price, PRICE_ONE))
    )
    cents = -(-(raw * 100).numerator // (raw * 100).denominator)
    return cents * 10_000


def test_force_close_at_last_bid_sells_at_the_last_fresh_bid() -> None:
    """A last-bid close pays the bid remembered while trading, minus the exit fee."""
    book = ladder_book()  # YES bid 0.55, NO bid 0.60
    ex = PaperExchange(book, BANKROLL)
    f = fill(ex.buy("y", "M", Side.YES, usd("1.30"), T0))
    g = fill(ex.buy("n", "M", Side.NO, usd("0.95"), T0))
    ex.record_bids(T0 + 1)
    # the market stops trading and its book empties: the remembered bids stay
    book.apply(MarketStatusChanged("M", MarketStatus.CLOSED, T0 + 2))
    book.apply(BookSnapshot("M", (), (), T0 + 3))
    ex.record_bids(T0 + 4)
    assert ex.force_close_remaining(T0 + 5, at_last_bid=True) == 2
    for bot, x, bid in (("y", f, usd("0.55")), ("n", g, usd("0.60"))):
        acct = ex.account(bot)
        closed = acct.closed_positions[0]
        exit_fee = _taker_fee(bid, x.contracts)
        assert (closed.payout, closed.exit_fee, closed.forced) == (
            bid * x.contracts,
            exit_fee,
            True,
        )
        assert acct.realized_pnl == bid * x.contracts - x.cost - x.fee - exit_fee
        assert acct.fees_paid == x.fee + exit_fee
        assert acct.cash == BANKROLL + acct.realized_pnl
        assert acct.n_forced == 1


def test_last_bid_ignores_bids_after_close_and_defaults_to_zero() -> None:
    """Bids seen after the close time do not count; no fresh bid ever seen ⇒ a total loss."""
    book = MarketBook()
    add_market(
        book, "M", yes_bids=((usd("0.4"), 900),), no_bids=((usd("0.5"), 900),), close_ms=T0 + 10
    )
    ex = PaperExchange(book, BANKROLL)
    f = fill(ex.buy("y", "M", Side.YES, usd("1"), T0))
    ex.record_bids(T0 + 10)  # at the close time: no longer trading
    ex.force_close_remaining(T0 + 20, at_last_bid=True)
    closed = ex.account("y").closed_positions[0]
    assert (closed.payout, closed.exit_fee) == (0, 0)
    assert ex.account("y").realized_pnl == -(f.cost + f.fee)


def test_last_bids_and_exit_fees_survive_persistence() -> None:
    """Remembered bids and exit fees round-trip through to_dict/from_dict."""
    ex = busy_exchange()
    ex.record_bids(T0 + DAY_MS + 2)
    data = json.loads(json.dumps(ex.to_dict()))
    assert data["last_bids"] == {"N": [usd("0.3"), usd("0.6")]}
    restored = PaperExchange.from_dict(data, ex.book)
    assert restored.to_dict() == ex.to_dict()
    restored.force_close_remaining(T0 + 2 * DAY_MS, at_last_bid=True)
    again = PaperExchange.from_dict(json.loads(json.dumps(restored.to_dict())), ex.book)
    assert again.to_dict() == restored.to_dict()
    closed = again.account("a").closed_positions[-1]
    assert closed.exit_fee > 0
    assert again.account("a").fees_paid == restored.account("a").fees_paid
    bad = dict(data, last_bids={"N": [1, 2, 3]})
    with pytest.raises(ValueError, match="last_bids"):
        PaperExchange.from_dict(bad, ex.book)


class _ShortLog(ChangeLog):
    KEEP = 2


def test_change_log_names_the_accounts_that_changed_since_a_position() -> None:
    """Buys, closes and day rolls each note their account once, in order (restored accounts
    too); a reader's position past what the log still keeps gets ``None`` (look at every
    account)."""
    book = ladder_book()
    ex = PaperExchange(book, usd("100"))
    log = ex.change_log
    a, b = ex.account("a"), ex.account("b")
    start = log.end
    a.roll_to(T0)
    b.roll_to(T0)
    a.roll_to(T0 + 1)  # the same day: no change
    assert log.since(start) == [a, b]
    mark = log.end
    assert log.since(mark) == []
    assert isinstance(ex.buy("b", "M", Side.YES, usd("1"), T0 + 2), Fill)
    assert isinstance(ex.buy("a", "M", Side.YES, usd("0.01"), T0 + 3), Rejection)  # no change
    book.apply(MarketDetermined("M", Side.NO, 0, T0 + 4))
    assert ex.settle("M", T0 + DAY_MS) == 1  # rolls b to the next day, then closes
    assert log.since(mark) == [b, b, b]
    assert [a.changes, b.changes] == [1, 4]
    restored = PaperExchange.from_dict(ex.to_dict(), book)
    c = restored.account("a")
    mark = restored.change_log.end
    c.roll_to(T0 + 2 * DAY_MS)
    assert restored.change_log.since(mark) == [c]
    short = _ShortLog()
    for _ in range(5):
        short.append(a)
    assert short.since(0) is None
    assert short.since(short.end - 2) == [a, a]
