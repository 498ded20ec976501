"""The paper exchange: one account per bot, filled against the shared :class:`MarketBook`.

Money is integer micro-dollars everywhere (``PRICE_ONE`` = $1); contracts are whole contracts.
Time is the ``now_ms`` each call receives; the exchange holds no clock.

**Counterfactual fills.** Each bot trades against the observed book as its own counterfactual
world: a fill walks the book's depth but never consumes it, so every bot sees the same liquidity
whatever the other bots did. Our orders are assumed too small to move the market.

Account arithmetic (exact, checked by property tests)::

    cash = initial − Σ cost − Σ fee + Σ payout
    equity = cash + Σ cost of open positions
    realized P&L = Σ over closed positions of (payout − cost − fee)

A buy is a taker order: it pays its fee up front (see :mod:`evoarena.engine.fees`); a closed
position's realized P&L includes that fee. The daily P&L is the change of equity since the start of
the current UTC day of ``now_ms``: fees of today's buys, plus ``payout − cost`` of positions closed
today.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

import structlog

from evoarena.engine.book import MarketBook, MarketState
from evoarena.engine.fees import CENT, FeeRate, fee_variance_term
from evoarena.feeds.events import COUNT_ONE, PRICE_ONE, Side

log = structlog.get_logger(__name__)

DAY_MS = 86_400_000
"""One UTC day in milliseconds (epoch days start at UTC midnight)."""

SCHEMA_VERSION = 1
"""Version of :meth:`PaperExchange.to_dict`'s layout."""


class RejectReason(StrEnum):
    """Why a buy was refused."""

    UNKNOWN_MARKET = "unknown_market"
    NOT_TRADABLE = "not_tradable"
    MARKET_CLOSED = "market_closed"
    STALE = "stale"
    NO_LIQUIDITY = "no_liquidity"
    OUTSIDE_PRICE_BOUNDS = "outside_price_bounds"
    BUDGET_TOO_SMALL = "budget_too_small"
    ALREADY_HOLDING = "already_holding"


@dataclass(frozen=True, slots=True)
class Fill:
    """A completed buy: ``contracts`` whole contracts of ``side`` for ``cost`` plus ``fee`` (µ$).

    ``levels`` are the (ask price µ$, whole contracts) taken, cheapest first.
    """

    bot_id: str
    ticker: str
    side: Side
    contracts: int
    cost: int
    fee: int
    levels: tuple[tuple[int, int], ...]
    ts_ms: int

    @property
    def avg_price(self) -> Fraction:
        """Average price per contract in micro-dollars (exact)."""
        return Fraction(self.cost, self.contracts)

    @property
    def avg_price_usd(self) -> float:
        """Average price per contract in dollars (for reports)."""
        return self.cost / self.contracts / PRICE_ONE

    @property
    def total(self) -> int:
        """What the buy took from cash: cost plus fee (µ$)."""
        return self.cost + self.fee


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused buy; nothing changed."""

    bot_id: str
    ticker: str
    side: Side
    reason: RejectReason
    ts_ms: int


def _opening_to_dict(p: Position | ClosedPosition) -> dict[str, Any]:
    """The fields every position has from the moment it was bought."""
    return {
        "ticker": p.ticker,
        "side": p.side.value,
        "contracts": p.contracts,
        "cost": p.cost,
        "fee": p.fee,
        "opened_ms": p.opened_ms,
    }


def _opening_from_dict(d: Mapping[str, Any]) -> dict[str, Any]:
    """Validated keyword arguments for the fields of :func:`_opening_to_dict`."""
    return {
        "ticker": _str(d, "ticker"),
        "side": _side(d),
        "contracts": _int(d, "contracts", minimum=1),
        "cost": _int(d, "cost", minimum=0),
        "fee": _int(d, "fee", minimum=0),
        "opened_ms": _int(d, "opened_ms"),
    }


@dataclass(frozen=True, slots=True)
class Position:
    """An open position: ``contracts`` of ``side`` bought for ``cost`` plus ``fee`` (µ$)."""

    ticker: str
    side: Side
    contracts: int
    cost: int
    fee: int
    opened_ms: int

    def payout_for(self, settlement_value: int) -> int:
        """What the position pays if YES settles at ``settlement_value`` µ$ per contract."""
        per_contract = settlement_value if self.side is Side.YES else PRICE_ONE - settlement_value
        return self.contracts * per_contract

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return _opening_to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Position:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming the bad field."""
        return cls(**_opening_from_dict(d))


@dataclass(frozen=True, slots=True)
class ClosedPosition:
    """A position closed by settlement, or force-closed at the deadline (``forced``).

    A forced close is a total loss (``payout = 0``) or, under the ``last_bid`` deadline policy, a
    sale at the last fresh best bid: ``payout`` is what the sale brought and ``exit_fee`` the
    taker fee it paid (0 otherwise).
    """

    ticker: str
    side: Side
    contracts: int
    cost: int
    fee: int
    opened_ms: int
    closed_ms: int
    payout: int
    settlement_value: int | None
    forced: bool
    exit_fee: int = 0

    @property
    def realized_pnl(self) -> int:
        """``payout − cost − fee − exit_fee`` in micro-dollars."""
        return self.payout - self.cost - self.fee - self.exit_fee

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (``exit_fee`` only when non-zero, so older files read the same)."""
        out = {
            **_opening_to_dict(self),
            "closed_ms": self.closed_ms,
            "payout": self.payout,
            "settlement_value": self.settlement_value,
            "forced": self.forced,
        }
        if self.exit_fee:
            out["exit_fee"] = self.exit_fee
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClosedPosition:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming the bad field."""
        value = d.get("settlement_value")
        if value is not None and (type(value) is not int or not 0 <= value <= PRICE_ONE):
            msg = f"closed position: 'settlement_value' must be null or 0..{PRICE_ONE}"
            raise ValueError(msg)
        forced = d.get("forced")
        if not isinstance(forced, bool):
            msg = "closed position: 'forced' must be a boolean"
            raise ValueError(msg)
        return cls(
            **_opening_from_dict(d),
            closed_ms=_int(d, "closed_ms"),
            payout=_int(d, "payout", minimum=0),
            settlement_value=value,
            forced=forced,
            exit_fee=_int(d, "exit_fee", minimum=0) if "exit_fee" in d else 0,
        )


class ChangeLog:
    """The accounts of one exchange in the order their :attr:`BotAccount.changes` moved, one
    entry per move: a reader remembers how far it read (:attr:`end`) and later asks which
    accounts changed since (:meth:`since`), instead of looking at every account.

    It keeps at least the last :attr:`KEEP` entries; a reader further behind is told to look at
    every account.
    """

    __slots__ = ("_base", "_entries")

    KEEP = 4096

    def __init__(self) -> None:
        self._entries: list[BotAccount] = []
        self._base = 0  # the position of _entries[0]

    def append(self, acct: BotAccount) -> None:
        """Note that ``acct`` changed."""
        entries = self._entries
        entries.append(acct)
        if len(entries) > 2 * self.KEEP:
            del entries[: self.KEEP]
            self._base += self.KEEP

    @property
    def end(self) -> int:
        """The position after the last entry (what a reader has read up to, having read all)."""
        return self._base + len(self._entries)

    def since(self, position: int) -> list[BotAccount] | None:
        """The accounts that changed from ``position`` on (an account as often as it changed),
        or ``None`` when the log no longer reaches back that far."""
        if position < self._base:
            return None
        return self._entries[position - self._base :]


class BotAccount:
    """One bot's money, positions and counters (micro-dollars; ``*_usd``/``roi_pct`` are floats).

    Only :class:`PaperExchange` mutates an account. ``trades_today`` and ``daily_pnl`` refer to the
    UTC day of the latest ``now_ms`` the account saw (:meth:`roll_to`). :attr:`changes` counts the
    mutations that can move a trading limit (buys, closes, day rolls), so a caller can skip
    re-checking limits of accounts that did not change; an account of an exchange also notes
    each in the exchange's :attr:`PaperExchange.change_log`.
    """

    __slots__ = (
        "_closed_cost",
        "_day",
        "_day_start_equity",
        "_log",
        "_n_forced",
        "_n_wins",
        "_open_cost",
        "bot_id",
        "cash",
        "changes",
        "closed_positions",
        "fees_paid",
        "initial_bankroll",
        "open_positions",
        "payouts",
        "realized_pnl",
        "total_cost",
        "total_trades",
        "trades_today",
    )

    def __init__(self, bot_id: str, initial_bankroll: int) -> None:
        if initial_bankroll <= 0:
            msg = f"initial bankroll must be positive, was {initial_bankroll}"
            raise ValueError(msg)
        self.bot_id = bot_id
        self.initial_bankroll = initial_bankroll
        self.cash = initial_bankroll
        self.open_positions: dict[str, Position] = {}
        self.closed_positions: list[ClosedPosition] = []
        self.total_trades = 0
        self.trades_today = 0
        self.fees_paid = 0
        self.total_cost = 0
        self.payouts = 0
        self.realized_pnl = 0
        self._n_wins = 0
        self._n_forced = 0
        self._open_cost = 0
        self._closed_cost = 0
        self._day: int | None = None
        self._day_start_equity = initial_bankroll
        self.changes = 0
        self._log: ChangeLog | None = None

    # -- derived figures ----------------------------------------------------------------------

    @property
    def equity(self) -> int:
        """Cash plus the cost of open positions (µ$)."""
        return self.cash + self._open_cost

    @property
    def daily_pnl(self) -> int:
        """Change of equity since the start of the current UTC day (µ$)."""
        return self.equity - self._day_start_equity

    @property
    def n_open(self) -> int:
        """Number of open positions."""
        return len(self.open_positions)

    @property
    def n_settled(self) -> int:
        """Number of closed positions (settled or force-closed)."""
        return len(self.closed_positions)

    @property
    def n_forced(self) -> int:
        """Number of positions force-closed as total losses."""
        return self._n_forced

    @property
    def n_wins(self) -> int:
        """Closed positions with a positive realized P&L."""
        return self._n_wins

    @property
    def win_rate(self) -> float:
        """Share of closed positions that made money (0.0 with none closed)."""
        n = len(self.closed_positions)
        return self._n_wins / n if n else 0.0

    @property
    def roi_pct(self) -> float:
        """Realized P&L as a percentage of the initial bankroll."""
        return self.realized_pnl * 100 / self.initial_bankroll

    @property
    def closed_cost(self) -> int:
        """What the closed positions cost, fees excluded (µ$): their stake."""
        return self._closed_cost

    @property
    def roi_stake_pct(self) -> float:
        """Realized P&L as a percentage of the closed positions' stake (0.0 with none closed)."""
        return self.realized_pnl * 100 / self._closed_cost if self._closed_cost else 0.0

    @property
    def realized_pnl_usd(self) -> float:
        """Realized P&L in dollars (for reports)."""
        return self.realized_pnl / PRICE_ONE

    @property
    def cash_usd(self) -> float:
        """Cash in dollars (for reports)."""
        return self.cash / PRICE_ONE

    @property
    def equity_usd(self) -> float:
        """Equity in dollars (for reports)."""
        return self.equity / PRICE_ONE

    @property
    def fees_paid_usd(self) -> float:
        """Fees paid in dollars (for reports)."""
        return self.fees_paid / PRICE_ONE

    def unrealized_pnl(self, book: MarketBook) -> int:
        """Open positions valued at the current best bid of their side, minus their cost (µ$).

        A position whose market has no bid (or is unknown) is valued at zero.
        """
        total = 0
        for pos in self.open_positions.values():
            m = book.get(pos.ticker)
            bid = None
            if m is not None:
                bid = m.best_yes_bid if pos.side is Side.YES else m.best_no_bid
            total += (bid or 0) * pos.contracts - pos.cost
        return total

    def summary(self) -> dict[str, Any]:
        """The seeds' checkpoint figures: cash, trades, P&L and ROI (dollars as floats)."""
        return {
            "cash": self.cash_usd,
            "equity": self.equity_usd,
            "total_trades": self.total_trades,
            "n_open": self.n_open,
            "n_settled": self.n_settled,
            "win_rate": self.win_rate,
            "realized_pnl": self.realized_pnl_usd,
            "fees_paid": self.fees_paid_usd,
            "roi_pct": self.roi_pct,
        }

    def at_limits(self, max_trades_today: int, max_open: int, max_daily_loss: int) -> bool:
        """True if today's trades reach ``max_trades_today``, the open positions ``max_open``
        or the loss since the day began (``−daily_pnl``, µ$) ``max_daily_loss``."""
        return (
            self.trades_today >= max_trades_today
            or len(self.open_positions) >= max_open
            or self._day_start_equity - self.cash - self._open_cost >= max_daily_loss
        )

    def holds(self, ticker: str) -> bool:
        """True if the account has an open position in ``ticker``."""
        return ticker in self.open_positions

    # -- day boundary -------------------------------------------------------------------------

    def roll_to(self, now_ms: int) -> None:
        """Start a new UTC day if ``now_ms`` is past the current one (earlier times are ignored)."""
        day = now_ms // DAY_MS
        if self._day is None or day > self._day:
            self._day = day
            self.trades_today = 0
            self._day_start_equity = self.equity
            self._changed()

    # -- mutation (PaperExchange only) --------------------------------------------------------

    def _open(self, pos: Position) -> None:
        self.cash -= pos.cost + pos.fee
        self.fees_paid += pos.fee
        self.total_cost += pos.cost
        self._open_cost += pos.cost
        self.total_trades += 1
        self.trades_today += 1
        self.open_positions[pos.ticker] = pos
        self._changed()

    def _close(
        self,
        ticker: str,
        now_ms: int,
        payout: int,
        value: int | None,
        *,
        forced: bool,
        exit_fee: int = 0,
    ) -> ClosedPosition:
        pos = self.open_positions.pop(ticker)
        closed = ClosedPosition(
            ticker=pos.ticker,
            side=pos.side,
            contracts=pos.contracts,
            cost=pos.cost,
            fee=pos.fee,
            opened_ms=pos.opened_ms,
            closed_ms=now_ms,
            payout=payout,
            settlement_value=value,
            forced=forced,
            exit_fee=exit_fee,
        )
        self._open_cost -= pos.cost
        self.cash += payout - exit_fee
        self.payouts += payout
        self.fees_paid += exit_fee
        self._record_closed(closed)
        self._changed()
        return closed

    def _changed(self) -> None:
        self.changes += 1
        if self._log is not None:
            self._log.append(self)

    def _record_closed(self, closed: ClosedPosition) -> None:
        self.closed_positions.append(closed)
        self._closed_cost += closed.cost
        self.realized_pnl += closed.realized_pnl
        if closed.realized_pnl > 0:
            self._n_wins += 1
        if closed.forced:
            self._n_forced += 1

    # -- persistence --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (open positions sorted by ticker, closed ones in closing order)."""
        return {
            "bot_id": self.bot_id,
            "initial_bankroll": self.initial_bankroll,
            "cash": self.cash,
            "total_trades": self.total_trades,
            "trades_today": self.trades_today,
            "fees_paid": self.fees_paid,
            "day": self._day,
            "day_start_equity": self._day_start_equity,
            "open_positions": [
                self.open_positions[t].to_dict() for t in sorted(self.open_positions)
            ],
            "closed_positions": [c.to_dict() for c in self.closed_positions],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BotAccount:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` if the books do not balance."""
        acct = cls(_str(d, "bot_id"), _int(d, "initial_bankroll", minimum=1))
        open_raw = d.get("open_positions")
        closed_raw = d.get("closed_positions")
        if not isinstance(open_raw, list) or not isinstance(closed_raw, list):
            msg = f"account {acct.bot_id}: positions must be lists"
            raise ValueError(msg)
        for raw in open_raw:
            pos = Position.from_dict(raw)
            if pos.ticker in acct.open_positions:
                msg = f"account {acct.bot_id}: two open positions in {pos.ticker}"
                raise ValueError(msg)
            acct.open_positions[pos.ticker] = pos
            acct._open_cost += pos.cost
            acct.fees_paid += pos.fee
            acct.total_cost += pos.cost
        for raw in closed_raw:
            closed = ClosedPosition.from_dict(raw)
            acct.fees_paid += closed.fee + closed.exit_fee
            acct.total_cost += closed.cost
            acct.payouts += closed.payout
            acct._record_closed(closed)
        acct.cash = _int(d, "cash", minimum=0)
        acct.total_trades = _int(d, "total_trades", minimum=0)
        acct.trades_today = _int(d, "trades_today", minimum=0)
        day = d.get("day")
        if day is not None and type(day) is not int:
            msg = f"account {acct.bot_id}: 'day' must be null or an integer"
            raise ValueError(msg)
        acct._day = day
        acct._day_start_equity = _int(d, "day_start_equity")
        expected_cash = acct.initial_bankroll - acct.total_cost - acct.fees_paid + acct.payouts
        if _int(d, "fees_paid") != acct.fees_paid or acct.cash != expected_cash:
            msg = f"account {acct.bot_id}: cash and fees do not reconcile with the positions"
            raise ValueError(msg)
        if acct.total_trades != len(acct.open_positions) + len(acct.closed_positions):
            msg = f"account {acct.bot_id}: total_trades does not match the positions"
            raise ValueError(msg)
        return acct


class PaperExchange:
    """Every bot's account, filled against one shared :class:`MarketBook` (read only).

    Accounts open on first mention (:meth:`account`) with ``initial_bankroll`` micro-dollars.
    Fills never consume the book's liquidity: each bot trades in its own counterfactual world.
    """

    def __init__(self, book: MarketBook, initial_bankroll: int) -> None:
        if initial_bankroll <= 0:
            msg = f"initial bankroll must be positive, was {initial_bankroll}"
            raise ValueError(msg)
        self.book = book
        self.initial_bankroll = initial_bankroll
        self._accounts: dict[str, BotAccount] = {}
        self._holders: dict[str, set[str]] = {}
        self._rates: dict[Decimal, FeeRate] = {}
        self._last_bids: dict[str, tuple[int | None, int | None]] = {}
        self.change_log = ChangeLog()
        """Every change of an account's :attr:`BotAccount.changes`, in order."""

    # -- accounts -----------------------------------------------------------------------------

    def account(self, bot_id: str) -> BotAccount:
        """The bot's account, opened with the initial bankroll on first mention."""
        acct = self._accounts.get(bot_id)
        if acct is None:
            acct = BotAccount(bot_id, self.initial_bankroll)
            acct._log = self.change_log
            self._accounts[bot_id] = acct
        return acct

    def open_account(self, bot_id: str) -> BotAccount:
        """Open the bot's account up front (idempotent; same as :meth:`account`)."""
        return self.account(bot_id)

    @property
    def accounts(self) -> Mapping[str, BotAccount]:
        """Every account by bot id (read only)."""
        return self._accounts

    def __iter__(self) -> Iterator[BotAccount]:
        """Accounts in bot-id order."""
        return iter([self._accounts[b] for b in sorted(self._accounts)])

    def _fee_rate(self, ticker: str) -> FeeRate:
        _, mult = self.book.fee_params(ticker)
        rate = self._rates.get(mult)
        if rate is None:
            rate = FeeRate.of(mult if mult > 0 else 0)
            self._rates[mult] = rate
        return rate

    def held_tickers(self) -> set[str]:
        """Markets in which at least one bot holds an open position."""
        return set(self._holders)

    # -- trading ------------------------------------------------------------------------------

    def buy(
        self,
        bot_id: str,
        ticker: str,
        side: Side,
        budget: int,
        now_ms: int,
        *,
        min_price: int = 0,
        max_price: int = PRICE_ONE,
    ) -> Fill | Rejection:
        """Buy as many whole ``side`` contracts of ``ticker`` as ``budget`` µ$ (fee included) buys.

        Walks the ask ladder cheapest first, taking only levels priced within
        ``[min_price, max_price]`` µ$; a best ask below ``min_price`` refuses the order (a real
        order cannot skip cheaper liquidity). Fractional level sizes are rounded down per level.
        The fill stops at the first level the remaining budget cannot take completely. The budget
        is capped at the account's cash, so cash never goes negative. Refuses unknown, stale and
        book-less markets, markets not in the ``active`` status or whose close time is at or
        before ``now_ms`` (Kalshi stops trading at close even before the status event arrives),
        and markets the bot already holds.
        """
        levels: list[tuple[int, int]] = []
        opened = self.open_position(
            self.account(bot_id), ticker, side, budget, now_ms, min_price, max_price, levels
        )
        if isinstance(opened, RejectReason):
            return Rejection(bot_id, ticker, side, opened, now_ms)
        return Fill(
            bot_id, ticker, side, opened.contracts, opened.cost, opened.fee, tuple(levels), now_ms
        )

    def open_position(
        self,
        acct: BotAccount,
        ticker: str,
        side: Side,
        budget: int,
        now_ms: int,
        min_price: int = 0,
        max_price: int = PRICE_ONE,
        levels: list[tuple[int, int]] | None = None,
    ) -> Position | RejectReason:
        """:meth:`buy` for ``acct``, one of this exchange's accounts, without the records: the
        position opened, or why the order was refused. With ``levels``, the (ask price µ$,
        whole contracts) taken are appended to it, cheapest first (:attr:`Fill.levels`)."""
        acct.roll_to(now_ms)
        m = self._market_for(acct, ticker, budget, now_ms)
        if isinstance(m, RejectReason):
            return m
        asks = m.ask_levels(side)
        if not asks:
            return RejectReason.NO_LIQUIDITY
        if asks[0][0] < min_price or asks[0][0] > max_price:
            return RejectReason.OUTSIDE_PRICE_BOUNDS

        rate = self._fee_rate(ticker)
        limit = min(budget, acct.cash)
        contracts = 0
        cost = 0
        terms = 0
        fee = 0
        saw_whole_contract = False
        for price, size in asks:
            if price > max_price:
                break
            avail = size // COUNT_ONE
            if avail <= 0:
                continue
            saw_whole_contract = True
            term = price * (PRICE_ONE - price)
            k = _max_affordable(limit - cost, price, term, terms, rate, avail)
            if k > 0:
                contracts += k
                cost += k * price
                terms += k * term
                fee = rate.fee(terms)
                if levels is not None:
                    levels.append((price, k))
            if k < avail:
                break
        if not contracts:
            return (
                RejectReason.BUDGET_TOO_SMALL if saw_whole_contract else RejectReason.NO_LIQUIDITY
            )
        pos = Position(ticker, side, contracts, cost, fee, now_ms)
        acct._open(pos)
        holders = self._holders.get(ticker)
        if holders is None:
            self._holders[ticker] = {acct.bot_id}
        else:
            holders.add(acct.bot_id)
        return pos

    def _market_for(
        self, acct: BotAccount, ticker: str, budget: int, now_ms: int
    ) -> MarketState | RejectReason:
        """The market :meth:`buy` fills against, or why it refuses before reading the ladder
        (its first checks, in order)."""
        if ticker in acct.open_positions:
            return RejectReason.ALREADY_HOLDING
        m = self.book.get(ticker)
        if m is None:
            return RejectReason.UNKNOWN_MARKET
        if not m.tradable:  # tradable implies a book that is not stale: one read when it is
            if m.stale:
                return RejectReason.STALE
            if not m.has_book:
                return RejectReason.NO_LIQUIDITY
            return RejectReason.NOT_TRADABLE
        close_ms = m.close_ms
        if close_ms is not None and now_ms >= close_ms:
            return RejectReason.MARKET_CLOSED
        if min(budget, acct.cash) <= 0:
            return RejectReason.BUDGET_TOO_SMALL
        return m

    # -- settlement ---------------------------------------------------------------------------

    def settle(self, ticker: str, now_ms: int) -> int:
        """Pay out every open position in ``ticker`` if the book knows its settlement value.

        YES pays ``settlement_value`` per contract, NO pays ``PRICE_ONE − settlement_value``.
        Returns the number of positions closed (0 if the outcome is not known yet).
        """
        m = self.book.get(ticker)
        if m is None or m.settlement_value is None:
            return 0
        value = m.settlement_value
        holders = self._holders.pop(ticker, set())
        self._last_bids.pop(ticker, None)
        for bot_id in sorted(holders):
            acct = self._accounts[bot_id]
            acct.roll_to(now_ms)
            payout = acct.open_positions[ticker].payout_for(value)
            acct._close(ticker, now_ms, payout, value, forced=False)
        return len(holders)

    def settle_determined(self, now_ms: int) -> int:
        """Settle every held market whose outcome the book knows; returns positions closed."""
        return sum(self.settle(t, now_ms) for t in sorted(self._holders))

    def force_close_remaining(self, now_ms: int, *, at_last_bid: bool = False) -> int:
        """Close every open position; returns the number closed (each is marked ``forced``).

        By default each is a total loss (payout 0). With ``at_last_bid`` each is sold at the
        last fresh best bid of its side (:meth:`record_bids`), all contracts at that price, paying
        the taker fee on the sale; a position whose market never showed a fresh bid of its side
        while held gets 0.
        """
        closed = 0
        for ticker in sorted(self._holders):
            bids = self._last_bids.get(ticker, (None, None))
            for bot_id in sorted(self._holders[ticker]):
                acct = self._accounts[bot_id]
                acct.roll_to(now_ms)
                payout, exit_fee = 0, 0
                if at_last_bid:
                    pos = acct.open_positions[ticker]
                    bid = bids[0] if pos.side is Side.YES else bids[1]
                    if bid:
                        payout = bid * pos.contracts
                        term = fee_variance_term(bid, pos.contracts)
                        exit_fee = min(payout, self._fee_rate(ticker).fee(term))
                acct._close(ticker, now_ms, payout, None, forced=True, exit_fee=exit_fee)
                closed += 1
        self._holders.clear()
        self._last_bids.clear()
        if closed:
            log.info("force_closed_positions", positions=closed, at_last_bid=at_last_bid)
        return closed

    def record_bids(self, now_ms: int) -> None:
        """Remember the best YES and NO bids of every held market that is trading at ``now_ms``.

        A market counts as trading while its book is fresh (not stale), its status is open and
        its close time has not passed; one that stopped trading keeps its last remembered bids.
        These are what a ``last_bid`` deadline close sells at (the generation calls this on
        every tick and poll under that policy only).
        """
        for ticker in self._holders:
            m = self.book.get(ticker)
            if m is None or not m.tradable or (m.close_ms is not None and now_ms >= m.close_ms):
                continue
            self._last_bids[ticker] = (m.best_yes_bid, m.best_no_bid)

    # -- persistence --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The whole exchange state (accounts with positions) as plain JSON types.

        ``last_bids`` (``{ticker: [yes bid | null, no bid | null]}``) appears only when bids
        were recorded (the ``last_bid`` deadline policy).
        """
        out: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "initial_bankroll": self.initial_bankroll,
            "accounts": [self._accounts[b].to_dict() for b in sorted(self._accounts)],
        }
        if self._last_bids:
            out["last_bids"] = {t: list(self._last_bids[t]) for t in sorted(self._last_bids)}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], book: MarketBook) -> PaperExchange:
        """Inverse of :meth:`to_dict`, filling against ``book``; ``ValueError`` if invalid."""
        if data.get("schema") != SCHEMA_VERSION:
            msg = (
                f"paper exchange state has schema {data.get('schema')!r}, expected {SCHEMA_VERSION}"
            )
            raise ValueError(msg)
        ex = cls(book, _int(data, "initial_bankroll", minimum=1))
        accounts = data.get("accounts")
        if not isinstance(accounts, list):
            msg = "paper exchange state: 'accounts' must be a list"
            raise ValueError(msg)
        for raw in accounts:
            if not isinstance(raw, Mapping):
                msg = "paper exchange state: every account must be an object"
                raise ValueError(msg)
            acct = BotAccount.from_dict(raw)
            if acct.bot_id in ex._accounts:
                msg = f"paper exchange state: account {acct.bot_id} appears twice"
                raise ValueError(msg)
            acct._log = ex.change_log
            ex._accounts[acct.bot_id] = acct
            for ticker in acct.open_positions:
                ex._holders.setdefault(ticker, set()).add(acct.bot_id)
        ex._last_bids = _last_bids_from(data.get("last_bids", {}))
        return ex


def _max_affordable(
    remaining: int, price: int, term: int, terms: int, rate: FeeRate, avail: int
) -> int:
    """Most contracts (≤ ``avail``) at ``price`` whose cost plus the whole order's fee fits.

    ``remaining`` is the budget left after earlier levels' cost and ``terms`` their fee terms.
    Cost plus fee grows with the count, so the answer is the largest fitting count: the fee
    without its rounding gives an exact upper bound, and rounding costs less than one cent, so a
    short binary search below that bound finds it.
    """
    if price == 0:
        return avail  # free contracts carry no fee either (p × (1 − p) = 0)
    # k·p + CENT·num·(terms + k·term)/den ≤ remaining, solved for k in integers.
    hi = (remaining * rate.den - CENT * rate.num * terms) // (
        price * rate.den + CENT * rate.num * term
    )
    hi = min(avail, hi)
    if hi <= 0:
        return 0
    if hi * price + rate.fee(terms + hi * term) <= remaining:
        return hi  # the bound itself fits (the usual case): nothing larger can
    lo = max(0, hi - CENT // price - 2)
    hi -= 1
    if lo and lo * price + rate.fee(terms + lo * term) > remaining:
        lo = 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid * price + rate.fee(terms + mid * term) <= remaining:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _last_bids_from(raw: object) -> dict[str, tuple[int | None, int | None]]:
    """Validate the optional ``last_bids`` map of :meth:`PaperExchange.to_dict`."""
    if not isinstance(raw, Mapping):
        msg = "paper exchange state: 'last_bids' must be an object"
        raise ValueError(msg)
    out: dict[str, tuple[int | None, int | None]] = {}
    for ticker, pair in raw.items():
        ok = isinstance(pair, list) and len(pair) == 2
        ok = ok and all(b is None or (type(b) is int and 0 <= b <= PRICE_ONE) for b in pair)
        if not ok:
            msg = f"paper exchange state: last_bids[{ticker!r}] must be [bid or null, bid or null]"
            raise ValueError(msg)
        out[str(ticker)] = (pair[0], pair[1])
    return out


def _str(d: Mapping[str, Any], key: str) -> str:
    value = d.get(key)
    if not isinstance(value, str) or not value:
        msg = f"'{key}' must be a non-empty string, was {value!r}"
        raise ValueError(msg)
    return value


def _int(d: Mapping[str, Any], key: str, *, minimum: int | None = None) -> int:
    value = d.get(key)
    if type(value) is not int or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" ≥ {minimum}"
        msg = f"'{key}' must be an integer{bound}, was {value!r}"
        raise ValueError(msg)
    return value


def _side(d: Mapping[str, Any]) -> Side:
    value = d.get("side")
    try:
        return Side(str(value))
    except ValueError:
        msg = f"'side' must be 'yes' or 'no', was {value!r}"
        raise ValueError(msg) from None
