"""A genetic bot: a decoded genome that trades on the paper exchange once per tick.

One tick of a bot (:meth:`GeneticBot.tick`):

1. stop if trades today, the daily loss or the open positions are at the genome's limits;
2. evaluate the market filter and the entry signal vectorized over the shared
   :class:`~evoarena.engine.view.MarketView` (see :mod:`evoarena.evolution.strategies`);
3. walk the candidates in ticker order, skipping markets already held; pick the side (side bias
   below 0.2 always NO, above 0.8 always YES, otherwise the signal's; then, with probability
   ``side_flip_prob``, the other side); skip it if that side's ask is missing or outside
   ``[min_price, max_price]``;
4. size the order as ``min(equity × bankroll_fraction, equity × max_single_market_pct, cash)``,
   stop below one cent, skip a market whose best ask alone exceeds it (the exchange would
   refuse the order), buy, and re-check the limits after every fill.

The side bias overrides the signal's direction, not its timing: a bot buys only where its signal
fires. The daily loss limit is ``daily_loss_limit_pct`` of the initial bankroll, compared with the
account's daily P&L (change of equity since UTC midnight). Money stays integer: the genome's
fractions are fixed at construction as integer parts per billion (:data:`PPB`), and budgets and
limits are ``micro-dollars × ppb // PPB``. All randomness comes from the injected
``random.Random``; there is no clock (time is the ``now_ms`` argument).

A whole population ticks through :func:`run_population_tick`, with the same trades, fills and
random draws as ticking each bot in order, but incrementally: the population's parameters, its
accounts and which bots are at a limit are kept between ticks (limits are re-checked only for
accounts that changed, the UTC-day roll is applied once per day), and the candidates of every
active bot come from one evaluation as ``(bot, market)`` pairs, with their markets' asks
(:func:`~evoarena.evolution.strategies.evaluate_pairs`, compiled with numba; the dense masks
where numba cannot run); only the walk over the candidates (step 3-4, :func:`_walk`, one loop
for the whole population) is Python.
"""

from __future__ import annotations

import itertools
import math
import operator
import random
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from evoarena.engine.fees import CENT
from evoarena.engine.paper import DAY_MS, BotAccount, PaperExchange, Position
from evoarena.engine.view import MarketView
from evoarena.evolution.genome import BotParams, Genome
from evoarena.evolution.strategies import (
    SIGNAL_YES,
    BoolArray,
    IntArray,
    PairBuffers,
    PopulationParams,
    category_table,
    evaluate_pairs,
    market_filter,
    pair_kernels,
    population_filter_of,
    population_signals_of,
    signal,
)
from evoarena.feeds.events import PRICE_ONE, Side

PPB = 1_000_000_000
"""Parts per billion: the resolution of the fractions used in money arithmetic."""
SIDE_BIAS_NO_BELOW = 0.2
SIDE_BIAS_YES_ABOVE = 0.8
_BATCH_MIN_BOTS = 4
"""Below this many active bots, per-bot masks are cheaper than a stacked evaluation."""


class GeneticBot:
    """A genome, its decoded parameters and its own random stream (``bot_id == genome.id``)."""

    __slots__ = (
        "_budget_ppb",
        "_cat_key",
        "_cat_table",
        "_flip_prob",
        "_loss_ppb",
        "_max_open",
        "_max_trades",
        "_price_high",
        "_price_high_micros",
        "_price_low",
        "_price_low_micros",
        "_side",
        "genome",
        "params",
        "rng",
    )

    def __init__(self, genome: Genome, rng: random.Random) -> None:
        self.genome = genome
        self.params: BotParams = genome.decode()
        self.rng = rng
        p = self.params
        # Price bounds in whole micro-dollars; the float twins are those integers / PRICE_ONE,
        # exactly how the view derives its float prices, so filter and fill agree at the edges.
        self._price_low_micros = math.ceil(round(p.min_price * PRICE_ONE, 6))
        self._price_high_micros = math.floor(round(p.max_price * PRICE_ONE, 6))
        self._price_low = self._price_low_micros / PRICE_ONE
        self._price_high = self._price_high_micros / PRICE_ONE
        # min(equity × fraction, equity × cap) = equity × min(fraction, cap): equity is never
        # negative (cash and open costs are not).
        self._budget_ppb = round(min(p.bankroll_fraction, p.max_single_market_pct) * PPB)
        self._loss_ppb = round(p.daily_loss_limit_pct * PPB)
        self._max_trades = p.max_trades_per_day
        self._max_open = p.max_concurrent_positions
        # The side before the flip (choose_side): fixed by the bias, or None (the signal's).
        self._side: Side | None = (
            Side.NO
            if p.side_bias < SIDE_BIAS_NO_BELOW
            else Side.YES
            if p.side_bias > SIDE_BIAS_YES_ABOVE
            else None
        )
        self._flip_prob = p.side_flip_prob
        self._cat_key: list[str] | None = None
        self._cat_table: BoolArray | None = None

    @property
    def bot_id(self) -> str:
        """The genome id."""
        return self.genome.id

    def __repr__(self) -> str:
        """Id and signal type."""
        return f"GeneticBot({self.bot_id}, {self.params.signal_type})"

    # -- limits -------------------------------------------------------------------------------

    def loss_limit(self, acct: BotAccount) -> int:
        """The daily loss (µ$, positive) at which the bot stops trading for the day."""
        return acct.initial_bankroll * self._loss_ppb // PPB

    def at_limit(self, acct: BotAccount) -> bool:
        """True if the account is at the trades-per-day, daily-loss or open-position limit."""
        return acct.at_limits(
            self._max_trades, self._max_open, acct.initial_bankroll * self._loss_ppb // PPB
        )

    def order_budget(self, acct: BotAccount) -> int:
        """``min(equity × bankroll_fraction, equity × max_single_market_pct, cash)`` in µ$.

        Rounded down to the micro-dollar (exact integer arithmetic, see :data:`PPB`).
        """
        return min(acct.equity * self._budget_ppb // PPB, acct.cash)

    # -- decisions ----------------------------------------------------------------------------

    def category_table(self, view: MarketView) -> BoolArray:
        """The genome's category mask over ``view.categories`` (cached while they are equal)."""
        if self._cat_table is None or self._cat_key != view.categories:
            self._cat_table = category_table(self.params, view.categories)
            self._cat_key = view.categories
        return self._cat_table

    def candidates(self, view: MarketView) -> tuple[list[int], list[int]]:
        """View indices (ticker order) passing the filter with a firing signal, and the signals."""
        if len(view) == 0:
            return [], []
        sig = signal(self.params, view)
        if not sig.any():
            return [], []
        ok = (sig != 0) & market_filter(
            self.params,
            view,
            price_low=self._price_low,
            price_high=self._price_high,
            categories_allowed=self.category_table(view),
        )
        idx = np.flatnonzero(ok)
        return idx.tolist(), sig[idx].tolist()

    def choose_side(self, sig: int) -> Side:
        """Apply the side bias to a signal (+1 YES / −1 NO), then the random flip (as
        :func:`_walk` does, inlined)."""
        side = self._side or (Side.YES if sig == SIGNAL_YES else Side.NO)
        if self.rng.random() < self._flip_prob:
            side = Side.NO if side is Side.YES else Side.YES
        return side

    def tick(self, view: MarketView, exchange: PaperExchange, now_ms: int) -> int:
        """Trade once over ``view``; returns the number of fills."""
        acct = exchange.account(self.bot_id)
        acct.roll_to(now_ms)
        if self.at_limit(acct):
            return 0
        indices, signals = self.candidates(view)
        return self.execute(view, exchange, now_ms, indices, signals)

    def execute(
        self,
        view: MarketView,
        exchange: PaperExchange,
        now_ms: int,
        indices: list[int],
        signals: list[int],
    ) -> int:
        """Walk the candidates (from :meth:`candidates`) in order and buy; returns the fills."""
        if not indices:
            return 0
        return _walk(
            [self],
            [exchange.account(self.bot_id)],
            [0],
            [len(indices)],
            exchange,
            now_ms,
            view.tickers_at(indices),
            view.yes_ask[indices].tolist(),
            view.no_ask[indices].tolist(),
            signals,
        )

    # -- persistence --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The genome and the random stream's state, as plain JSON types (for checkpoints)."""
        version, internal, gauss = self.rng.getstate()
        return {
            "genome": self.genome.to_dict(),
            "rng_state": [version, list(internal), gauss],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GeneticBot:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` if malformed."""
        raw_genome = data.get("genome")
        if not isinstance(raw_genome, dict):
            msg = "bot state: 'genome' must be an object"
            raise ValueError(msg)
        genome = Genome.from_dict(raw_genome)
        try:
            version, internal, gauss = data["rng_state"]
            rng = random.Random()
            rng.setstate((version, tuple(internal), gauss))
        except (KeyError, TypeError, ValueError) as e:
            msg = f"bot {genome.id}: bad rng_state ({e})"
            raise ValueError(msg) from e
        return cls(genome, rng)


def _walk(
    bots: Sequence[GeneticBot],
    accounts: Sequence[BotAccount],
    who: Iterable[int],
    counts: Iterable[int],
    exchange: PaperExchange,
    now_ms: int,
    tickers: list[str],
    yes_asks: list[float],
    no_asks: list[float],
    signals: list[int],
    limits: list[tuple[int, bool]] | None = None,
) -> int:
    """:meth:`GeneticBot.execute` for the bots ``who`` (positions in ``bots``, and of their
    accounts in ``accounts``) in turn; returns the fills.

    The candidates (tickers, asks in dollars, signals) are flat lists: the first ``counts[0]``
    those of bot ``who[0]``, and so on. :meth:`GeneticBot.choose_side`
    and :meth:`GeneticBot.order_budget` are inlined: one random draw per candidate not held,
    the budget computed when first needed and again after each fill (nothing else changes the
    account meanwhile), the order placed with :meth:`PaperExchange.open_position` (``buy``
    without the fill's record). With ``limits``, each bot that bought appends its position in
    ``bots`` and whether it ended at a limit (:meth:`GeneticBot.at_limit`, as after its last
    fill).
    """
    yes, no = Side.YES, Side.NO
    open_position = exchange.open_position
    fills = 0
    stop = 0
    for i, count in zip(who, counts, strict=True):
        bot = bots[i]
        acct = accounts[i]
        start = stop
        stop += count
        held = acct.open_positions
        draw = bot.rng.random
        fixed = bot._side
        flip = bot._flip_prob
        low = bot._price_low
        high = bot._price_high
        budget = -1  # not computed yet (a budget is never negative)
        lim = None
        for p in range(start, stop):
            ticker = tickers[p]
            if ticker in held:
                continue
            side = fixed or (yes if signals[p] == SIGNAL_YES else no)
            if draw() < flip:
                side = no if side is yes else yes
            ask = yes_asks[p] if side is yes else no_asks[p]
            if not low <= ask <= high:
                continue  # also skips a missing (NaN) ask
            if budget < 0:
                budget = min(acct.equity * bot._budget_ppb // PPB, acct.cash)  # order_budget
            if budget < CENT:
                break
            if budget < ask * PRICE_ONE - 0.5:
                # Not one contract at the best ask (µ$, the float within 0.5 of the integer):
                # the exchange would refuse the order, changing nothing; skip the call.
                continue
            opened = open_position(
                acct, ticker, side, budget, now_ms, bot._price_low_micros, bot._price_high_micros
            )
            if isinstance(opened, Position):  # filled (else refused, nothing changed)
                fills += 1
                lim = bot.at_limit(acct)
                if lim:
                    break
                budget = -1
        if lim is not None and limits is not None:
            limits.append((i, lim))
    return fills


def needed_lookbacks(bots: Iterable[GeneticBot]) -> set[int]:
    """Momentum lookbacks the momentum bots need (pass to :meth:`MarketView.build`)."""
    return {b.params.momentum_lookback for b in bots if b.params.signal_type == "momentum"}


_Subset = tuple[PopulationParams, BoolArray]
"""What a group of bots is evaluated with on the dense path (see :meth:`_Population.subset`)."""
_changes = operator.attrgetter("changes")


class _Population:
    """Per-population state kept between ticks: parameter columns, category tables (per category
    list) and, for the exchange last ticked, the bots' accounts and which bots are at a limit.

    A bot's limit flag is re-checked only when its account's :attr:`BotAccount.changes` moved (a
    buy, a close or a day roll) since the last check (or is taken from the walk that just
    checked it, :meth:`note_limits`), and the UTC-day roll is applied to every account once per
    new day instead of once per bot and tick. The flags are kept as a list and as the boolean
    array the pair kernels skip bots by (:attr:`skip`).
    """

    __slots__ = (
        "_exchange",
        "accounts",
        "bots",
        "buffers",
        "cat_key",
        "cat_tables",
        "limited",
        "log_read",
        "n_active",
        "owners",
        "params",
        "rolled_day",
        "seen",
        "skip",
        "sub",
        "sub_rows",
    )

    def __init__(self, bots: Sequence[GeneticBot]) -> None:
        self.bots = list(bots)
        self.params = PopulationParams(
            [b.params for b in bots],
            [b._price_low for b in bots],
            [b._price_high for b in bots],
        )
        self.cat_key: list[str] | None = None
        self.cat_tables: BoolArray = np.zeros((0, 0), dtype=np.bool_)
        self._exchange: weakref.ref[PaperExchange] | None = None
        self.accounts: list[BotAccount] = []
        self.rolled_day: int | None = None
        self.seen: list[int] = []
        self.limited: list[bool] = []
        self.skip: BoolArray = np.zeros(0, dtype=np.bool_)
        self.n_active = 0
        self.owners: dict[BotAccount, list[int]] = {}
        self.log_read = -1
        self.sub_rows: list[int] | None = None
        self.sub: _Subset = (self.params, self.cat_tables)
        self.buffers = PairBuffers()

    def is_for(self, bots: Sequence[GeneticBot]) -> bool:
        mine = self.bots
        if type(bots) is list:
            return mine == bots  # GeneticBot compares by identity: one C-level pass
        return len(mine) == len(bots) and all(map(operator.is_, mine, bots))

    def category_tables(self, view: MarketView) -> BoolArray:
        if self.cat_key != view.categories:
            self.cat_tables = np.stack([b.category_table(view) for b in self.bots])
            self.cat_key = view.categories
            self.sub_rows = None
        return self.cat_tables

    def refresh(self, exchange: PaperExchange, now_ms: int) -> int:
        """Bring the limit flags up to ``now_ms``, every account rolled to that day; returns
        how many bots are not at a limit (:meth:`active`).

        The same flags as calling ``roll_to(now_ms)`` and :meth:`GeneticBot.at_limit` for every
        bot; accounts open on first call, in bot order, as :meth:`PaperExchange.account` does.
        The accounts that changed are those the exchange's change log names since the last
        refresh (every account, on a new day or when the log no longer reaches back).
        """
        ref = self._exchange
        if ref is None or ref() is not exchange:
            n = len(self.bots)
            self._exchange = weakref.ref(exchange)
            self.accounts = [exchange.account(b.bot_id) for b in self.bots]
            self.owners = {}
            for i, acct in enumerate(self.accounts):  # bots of one id share an account
                self.owners.setdefault(acct, []).append(i)
            self.rolled_day = None
            self.seen = [-1] * n
            self.limited = [False] * n
            self.skip = np.zeros(n, dtype=np.bool_)
            self.n_active = n
        accounts = self.accounts
        log = exchange.change_log
        day = now_ms // DAY_MS
        if day != self.rolled_day:
            # roll_to never moves an account's day backwards: once all are rolled to ``day``,
            # rolling them again within it is a no-op.
            for acct in accounts:
                acct.roll_to(now_ms)
            self.rolled_day = day
            changed = None
        else:
            changed = log.since(self.log_read)
        self.log_read = log.end
        bots = self.bots
        seen = self.seen
        if changed is None:  # look at every account
            changes = list(map(_changes, accounts))
            if changes != seen:
                rows = itertools.compress(range(len(bots)), map(operator.ne, changes, seen))
                self.seen = changes
                self._set_limits((i, bots[i].at_limit(accounts[i])) for i in rows)
            return self.n_active
        owners = self.owners
        checked = []
        for acct in changed:
            for i in owners.get(acct, ()):
                if acct.changes != seen[i]:
                    seen[i] = acct.changes
                    checked.append((i, bots[i].at_limit(acct)))
        if checked:
            self._set_limits(checked)
        return self.n_active

    def note_limits(self, limits: Sequence[tuple[int, bool]]) -> None:
        """Take the limit flags of bots ``i`` whose accounts :func:`_walk` just checked (after
        their last fill), so that :meth:`refresh` need not check them again."""
        accounts = self.accounts
        seen = self.seen
        for i, _ in limits:
            seen[i] = accounts[i].changes
        self._set_limits(limits)

    def _set_limits(self, limits: Iterable[tuple[int, bool]]) -> None:
        limited = self.limited
        skip = self.skip
        for i, lim in limits:
            if lim != limited[i]:
                limited[i] = skip[i] = lim
                self.n_active += -1 if lim else 1

    def active(self) -> list[int]:
        """Indices of the bots not at a limit (as of the last :meth:`refresh`)."""
        return list(itertools.compress(range(len(self.bots)), map(operator.not_, self.limited)))

    def subset(self, rows: list[int], view: MarketView) -> _Subset:
        """The parameter columns and category tables of the bots ``rows`` (increasing), for the
        dense rules; kept while the rows are the same."""
        tables = self.category_tables(view)
        if rows != self.sub_rows:
            if len(rows) == self.params.n:
                self.sub = (self.params, tables)
            else:
                at = np.array(rows, dtype=np.intp)
                self.sub = (self.params.take(at), tables[at])
            self.sub_rows = list(rows)
        return self.sub


_POPULATIONS_KEPT = 4
_populations: list[_Population] = []
"""The most recently ticked populations, newest first (several may tick in turn)."""


def _population(bots: Sequence[GeneticBot]) -> _Population:
    """The kept state of ``bots`` (the same list of the same bots tick after tick reuses it)."""
    kept = _populations
    for i, pop in enumerate(kept):
        if pop.is_for(bots):
            if i:
                kept.insert(0, kept.pop(i))
            return pop
    pop = _Population(bots)
    kept.insert(0, pop)
    del kept[_POPULATIONS_KEPT:]
    return pop


def population_candidates(
    bots: Sequence[GeneticBot], view: MarketView
) -> list[tuple[list[int], list[int]]]:
    """:meth:`GeneticBot.candidates` of every bot, evaluated as ``(bots × markets)`` masks."""
    found = _candidates(_population(bots), view, everyone=True)
    if found is None:
        return [([], []) for _ in bots]
    cols, sigs, _, _, counts = found
    out = []
    a = 0
    for c in counts.tolist():
        out.append((cols[a : a + c], sigs[a : a + c]))
        a += c
    return out


_Found = tuple[list[int], list[int], list[float], list[float], IntArray]


def _candidates(pop: _Population, view: MarketView, *, everyone: bool) -> _Found | None:
    """``(markets, signals, yes asks, no asks, counts)`` of the population's bots, ``everyone``
    or those not at a limit: every bot's :meth:`GeneticBot.candidates` concatenated in bot
    order, with the markets' asks (dollars), and how many each bot has (one entry per bot of
    the population); ``None`` when there are none."""
    n_markets = len(view)
    n_bots = len(pop.bots)
    if n_markets == 0 or n_bots == 0:
        return None
    rules = pop.params.rules
    if rules is not None and rules.exact and pair_kernels() is not None:
        skip = np.zeros(n_bots, dtype=np.bool_) if everyone else pop.skip
        buf = pop.buffers
        k, counts = evaluate_pairs(rules, view, pop.category_tables(view), skip, buf)
        if not k:
            return None
        return (
            buf.markets[:k].tolist(),
            buf.signals[:k].tolist(),
            buf.yes[:k].tolist(),
            buf.no[:k].tolist(),
            counts,
        )
    # No compiled kernels here (or rules they cannot take exactly): the dense rules.
    rows = list(range(n_bots)) if everyone else pop.active()
    if not rows:
        return None
    params, tables = pop.subset(rows, view)
    sig = population_signals_of(params, view)
    ok = sig != 0
    if not ok.any():
        return None
    ok &= population_filter_of(params, view, tables)
    flat = np.flatnonzero(ok)  # row-major: by bot, then by market (ticker order)
    if not len(flat):
        return None
    r = flat // n_markets
    cols = flat - r * n_markets
    counts = np.zeros(n_bots, dtype=np.int64)
    counts[rows] = np.bincount(r, minlength=len(rows))
    return (
        cols.tolist(),
        sig.reshape(-1)[flat].tolist(),
        view.yes_ask[cols].tolist(),
        view.no_ask[cols].tolist(),
        counts,
    )


def run_population_tick(
    bots: Sequence[GeneticBot], view: MarketView, exchange: PaperExchange, now_ms: int
) -> int:
    """Tick every bot in the given (fixed) order; returns the total number of fills.

    Same result as calling :meth:`GeneticBot.tick` on each bot in order (bots never see each
    other's fills), but the filters and signals of all bots not at a limit are evaluated together
    (:func:`_candidates`), from parameter arrays kept while the population is the same,
    limits are re-checked only for accounts that changed (see :class:`_Population`), and the
    candidates' tickers and asks are read once for the whole population.
    """
    pop = _population(bots)
    if pop.refresh(exchange, now_ms) < _BATCH_MIN_BOTS:
        return sum(
            b.execute(view, exchange, now_ms, *b.candidates(view))
            for b in (bots[i] for i in pop.active())
        )
    found = _candidates(pop, view, everyone=False)
    if found is None:
        return 0
    cols, sigs, yes_asks, no_asks, counts = found
    accounts = pop.accounts
    with_any = counts.nonzero()[0]
    limits: list[tuple[int, bool]] = []
    fills = _walk(
        bots,
        accounts,
        with_any.tolist(),
        counts[with_any].tolist(),
        exchange,
        now_ms,
        view.tickers_at(cols),
        yes_asks,
        no_asks,
        sigs,
        limits,
    )
    if limits:
        pop.note_limits(limits)
    return fills
