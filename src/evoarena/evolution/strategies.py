"""Vectorized market filters and entry signals over a shared :class:`MarketView`.

A signal array holds :data:`SIGNAL_YES` (+1), :data:`SIGNAL_NO` (-1) or :data:`SIGNAL_NONE` (0)
per market, aligned with ``view.tickers``. Missing prices are NaN in the view and never qualify.

Every rule broadcasts: with scalar parameters it evaluates one bot over all markets (shape
``(n_markets,)``); with ``(n_bots, 1)`` column parameters it evaluates many bots at once (shape
``(n_bots, n_markets)``) through the very same expressions, so the population path and the
per-bot path agree element for element.

Rules (the issue's wording, with the ambiguous cases settled here):

* **price_level** — buy a side whose ask lies in ``[low, high]``.
* **momentum** — fractional change ``m`` of the YES ask over the lookback: ``m > t`` ⇒ YES,
  ``m < −t`` ⇒ NO, with ``t = |trigger|``. The gene decodes to [−0.10, 0.10]; read literally, a
  negative trigger would make both sides qualify between ``t`` and ``−t``, so the sign is ignored
  and the rule stays symmetric (a zero trigger fires on any strict move).
* **mean_reversion** — z-score of the current YES ask against its rolling history (at least
  :data:`~evoarena.engine.view.MIN_ZSCORE_POINTS` points, non-zero spread): ``z > k`` ⇒ NO,
  ``z < −k`` ⇒ YES.
* **value** — buy a side whose ask is strictly below ``0.50 − edge``.
* **contrarian** — an ask strictly above the threshold ⇒ buy the other side.

Whenever both sides qualify in one market (a wide band, a crossed or very wide book), the bot buys
the cheaper side, YES on an exact tie.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from types import ModuleType

import numpy as np
import numpy.typing as npt

from evoarena.compiled import load_kernels
from evoarena.engine.view import MIN_ZSCORE_POINTS, FloatArray, MarketView
from evoarena.evolution.genome import SIGNAL_TYPES, BotParams

SignalArray = npt.NDArray[np.int8]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Param = float | FloatArray
"""A scalar (one bot) or an ``(n_bots, 1)`` column (many bots)."""

SIGNAL_NONE = 0
SIGNAL_YES = 1
SIGNAL_NO = -1


def pick_sides(yes_ok: BoolArray, no_ok: BoolArray, view: MarketView) -> SignalArray:
    """+1 where only YES qualifies, −1 where only NO does; the cheaper ask where both do."""
    yes_ok, no_ok = np.broadcast_arrays(yes_ok, no_ok)
    out = np.zeros(yes_ok.shape, dtype=np.int8)
    out[yes_ok] = SIGNAL_YES
    out[no_ok] = SIGNAL_NO
    both = yes_ok & no_ok
    if both.any():
        out[both & (view.yes_ask <= view.no_ask)] = SIGNAL_YES
    return out


def within(prices: FloatArray, low: Param, high: Param) -> BoolArray:
    """``low ≤ prices ≤ high`` (NaN is never within)."""
    return (prices >= low) & (prices <= high)


def price_level_signal(view: MarketView, low: Param, high: Param) -> SignalArray:
    """Buy a side whose ask lies in ``[low, high]`` dollars."""
    return pick_sides(within(view.yes_ask, low, high), within(view.no_ask, low, high), view)


def momentum_signal(view: MarketView, lookback: int, trigger: Param) -> SignalArray:
    """Follow a YES-ask move larger than ``|trigger|`` (a fraction) over ``lookback`` ticks."""
    return _momentum_rule(view.momentum(lookback), np.abs(trigger))


def momentum_signal_rows(
    view: MarketView, lookbacks: Sequence[int], triggers: FloatArray
) -> SignalArray:
    """:func:`momentum_signal` for many bots: one row per (lookback, ``(n, 1)`` trigger) pair."""
    moves = np.stack([view.momentum(lb) for lb in lookbacks])
    return _momentum_rule(moves, np.abs(triggers))


def _momentum_rule(moves: FloatArray, t: Param) -> SignalArray:
    out = np.zeros(np.broadcast_shapes(np.shape(moves), np.shape(t)), dtype=np.int8)
    out[np.broadcast_to(moves > t, out.shape)] = SIGNAL_YES
    out[np.broadcast_to(moves < -t, out.shape)] = SIGNAL_NO
    return out


def mean_reversion_signal(view: MarketView, threshold: Param) -> SignalArray:
    """Bet against a YES ask more than ``threshold`` standard deviations from its mean."""
    z = view.zscore
    above = z > threshold
    below = z < -threshold
    out = np.zeros(above.shape, dtype=np.int8)
    out[above] = SIGNAL_NO
    out[below] = SIGNAL_YES
    return out


def value_signal(view: MarketView, edge: Param) -> SignalArray:
    """Buy a side whose ask is below ``0.50 − edge`` dollars."""
    limit = 0.5 - edge
    return pick_sides(view.yes_ask < limit, view.no_ask < limit, view)


def contrarian_signal(view: MarketView, threshold: Param) -> SignalArray:
    """Where a side's ask is above ``threshold`` dollars, buy the other side."""
    return pick_sides(view.no_ask > threshold, view.yes_ask > threshold, view)


def signal(params: BotParams, view: MarketView) -> SignalArray:
    """One bot's entry signal (``params.signal_type``) over the whole view."""
    kind = params.signal_type
    if kind == "price_level":
        return price_level_signal(view, params.price_threshold_low, params.price_threshold_high)
    if kind == "momentum":
        return momentum_signal(view, params.momentum_lookback, params.momentum_trigger)
    if kind == "mean_reversion":
        return mean_reversion_signal(view, params.mean_rev_zscore)
    if kind == "value":
        return value_signal(view, params.value_edge_min)
    if kind == "contrarian":
        return contrarian_signal(view, params.contrarian_threshold)
    msg = f"unknown signal type {kind!r}; expected one of {', '.join(SIGNAL_TYPES)}"
    raise ValueError(msg)


def _column(values: Sequence[float]) -> FloatArray:
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


_PARAM_COLUMNS = (
    "price_threshold_low",
    "price_threshold_high",
    "momentum_trigger",
    "mean_rev_zscore",
    "value_edge_min",
    "contrarian_threshold",
    "min_time_to_expiry_hrs",
    "max_time_to_expiry_hrs",
    "min_volume_24h",
    "min_open_interest",
)


class PopulationParams:
    """Many bots' parameters as ``(n_bots, 1)`` columns, built once and sliced per tick.

    ``price_lows``/``price_highs`` are the bots' filter price bounds (dollars). When they are
    given, the parameters are also kept as :attr:`rules` for :func:`population_pairs_of`.
    """

    __slots__ = ("columns", "kind_codes", "lookbacks", "n", "rules")

    def __init__(
        self,
        params: Sequence[BotParams],
        price_lows: Sequence[float] = (),
        price_highs: Sequence[float] = (),
    ) -> None:
        self.n = len(params)
        self.columns: dict[str, FloatArray] = {
            name: _column([getattr(p, name) for p in params]) for name in _PARAM_COLUMNS
        }
        self.columns["price_low"] = _column(price_lows) if price_lows else _column([])
        self.columns["price_high"] = _column(price_highs) if price_highs else _column([])
        codes = {k: i for i, k in enumerate(SIGNAL_TYPES)}
        try:
            self.kind_codes = np.array([codes[p.signal_type] for p in params], dtype=np.int64)
        except KeyError as e:
            msg = f"unknown signal type {e.args[0]!r}; expected one of {', '.join(SIGNAL_TYPES)}"
            raise ValueError(msg) from None
        self.lookbacks = np.array([p.momentum_lookback for p in params], dtype=np.int64)
        self.rules: PairRules | None = (
            PairRules.of(params, price_lows, price_highs) if price_lows else None
        )

    def take(self, rows: npt.NDArray[np.intp]) -> PopulationParams:
        """The sub-population ``rows`` (in that order)."""
        sub = PopulationParams.__new__(PopulationParams)
        sub.n = len(rows)
        sub.columns = {k: v[rows] if len(v) else v for k, v in self.columns.items()}
        sub.kind_codes = self.kind_codes[rows]
        sub.lookbacks = self.lookbacks[rows]
        sub.rules = None if self.rules is None else self.rules.take(rows)
        return sub


def population_signals(params: Sequence[BotParams], view: MarketView) -> SignalArray:
    """Every bot's :func:`signal` at once: shape ``(len(params), len(view))``."""
    return population_signals_of(PopulationParams(params), view)


def population_signals_of(pop: PopulationParams, view: MarketView) -> SignalArray:
    """:func:`population_signals` from prepared columns."""
    out = np.zeros((pop.n, len(view)), dtype=np.int8)
    cols = pop.columns
    for code in np.unique(pop.kind_codes).tolist():
        kind = SIGNAL_TYPES[code]
        rows = np.flatnonzero(pop.kind_codes == code)
        if kind == "price_level":
            low = cols["price_threshold_low"][rows]
            high = cols["price_threshold_high"][rows]
            out[rows] = price_level_signal(view, low, high)
        elif kind == "momentum":
            triggers = cols["momentum_trigger"][rows]
            lookbacks = pop.lookbacks[rows].tolist()
            view.momenta(lookbacks)  # every lookback needed, in one pass
            out[rows] = momentum_signal_rows(view, lookbacks, triggers)
        elif kind == "mean_reversion":
            out[rows] = mean_reversion_signal(view, cols["mean_rev_zscore"][rows])
        elif kind == "value":
            out[rows] = value_signal(view, cols["value_edge_min"][rows])
        else:  # contrarian (the codes come from SIGNAL_TYPES)
            out[rows] = contrarian_signal(view, cols["contrarian_threshold"][rows])
    return out


def category_table(params: BotParams, categories: list[str]) -> BoolArray:
    """Allowed flags indexed by ``view.category_idx + 1`` (slot 0 = unknown/unlisted category).

    Built from :meth:`BotParams.allows_category`, so the vectorized mask agrees with it exactly.
    """
    table = np.empty(len(categories) + 1, dtype=np.bool_)
    table[0] = params.allows_category(None, categories)
    for i, c in enumerate(categories):
        table[i + 1] = params.allows_category(c, categories)
    return table


def filter_mask(
    view: MarketView,
    *,
    price_low: Param,
    price_high: Param,
    min_hours: Param,
    max_hours: Param,
    min_volume: Param,
    min_open_interest: Param,
    categories_allowed: BoolArray,
) -> BoolArray:
    """Markets passing the market filter (see :func:`market_filter`); broadcasts over bots.

    ``categories_allowed`` is a :func:`category_table` (or an ``(n_bots, n_categories + 1)``
    stack of them).
    """
    ok = within(view.yes_ask, price_low, price_high) | within(view.no_ask, price_low, price_high)
    ok &= within(view.hours_to_expiry, min_hours, max_hours)
    ok &= ~(view.volume_24h < min_volume)  # NaN (unreported) passes
    ok &= ~(view.open_interest < min_open_interest)
    ok &= categories_allowed[..., view.category_idx + 1]
    return ok


def market_filter(
    params: BotParams,
    view: MarketView,
    *,
    price_low: float,
    price_high: float,
    categories_allowed: BoolArray | None = None,
) -> BoolArray:
    """Markets one bot may consider at all.

    * 24 h volume and open interest (contracts) at least the genome's minimums, checked only where
      the market reports them (NaN passes);
    * category admitted by the genome's mask (``categories_allowed`` from :func:`category_table`
      over ``view.categories``; computed here when not given);
    * hours to expiry within ``[min, max]`` (an unknown close time fails);
    * at least one side's ask within ``[price_low, price_high]`` dollars.
    """
    table = (
        categories_allowed
        if categories_allowed is not None
        else category_table(params, view.categories)
    )
    return filter_mask(
        view,
        price_low=price_low,
        price_high=price_high,
        min_hours=params.min_time_to_expiry_hrs,
        max_hours=params.max_time_to_expiry_hrs,
        min_volume=params.min_volume_24h,
        min_open_interest=params.min_open_interest,
        categories_allowed=table,
    )


def population_filter(
    params: Sequence[BotParams],
    view: MarketView,
    *,
    price_lows: Sequence[float],
    price_highs: Sequence[float],
    categories_allowed: BoolArray,
) -> BoolArray:
    """Every bot's :func:`market_filter` at once: shape ``(len(params), len(view))``."""
    pop = PopulationParams(params, price_lows, price_highs)
    return population_filter_of(pop, view, categories_allowed)


def population_filter_of(
    pop: PopulationParams, view: MarketView, categories_allowed: BoolArray
) -> BoolArray:
    """:func:`population_filter` from prepared columns."""
    cols = pop.columns
    return filter_mask(
        view,
        price_low=cols["price_low"],
        price_high=cols["price_high"],
        min_hours=cols["min_time_to_expiry_hrs"],
        max_hours=cols["max_time_to_expiry_hrs"],
        min_volume=cols["min_volume_24h"],
        min_open_interest=cols["min_open_interest"],
        categories_allowed=categories_allowed,
    )


# -- candidate pairs ------------------------------------------------------------------------------
#
# The population path below finds the (bot, market) pairs where the filter passes and the signal
# fires in two compiled passes (evolution/kernels.py): the filter over every pair, then the
# signal over the pairs that pass, through a single form per rule,
# ``lo <= x <= hi``, with the strict comparisons rewritten exactly: for finite ``c``,
# ``x < c`` is ``-inf <= x <= nextafter(c, -inf)`` and ``x > c`` is
# ``nextafter(c, +inf) <= x <= inf`` (both False for NaN), so every decision is the one the dense
# rules above make.

# Rows of :attr:`PairRules.floats` and :attr:`PairRules.ints`.
F_MIN_H, F_MAX_H, F_MIN_VOL, F_MIN_OI, F_PRICE_LOW, F_PRICE_HIGH = range(6)
F_YES_LO, F_YES_HI, F_NO_LO, F_NO_HI = range(6, 10)
_N_F = 10
I_SOURCE, I_LOOKBACK, I_YES_ON_TIE = range(3)
_N_I = 3
# What a signal reads: the YES side the YES ask and the NO side the NO ask (price_level, value),
# the asks swapped (contrarian), the momentum or the z-score (both sides).
SRC_ASKS, SRC_SWAPPED, SRC_MOMENTUM, SRC_ZSCORE = range(4)
_INF = float("inf")


def _below(c: float) -> float:
    return math.nextafter(c, -_INF)


def _above(c: float) -> float:
    return math.nextafter(c, _INF)


class PairRules:
    """A population's rules as two matrices, one column per bot (for :func:`population_pairs_of`).

    :attr:`floats` rows: expiry window (hours), minimum volume and open interest, filter price
    bounds, then the YES and NO sides' signal intervals; :attr:`ints` rows: which market values
    the signal reads (asks, swapped asks, momentum, z-score), the momentum lookback, and whether
    YES wins when both sides qualify regardless of price (mean reversion; otherwise the cheaper
    ask wins). :attr:`exact` is False when a signal threshold is not finite: the rewriting of
    strict comparisons above needs finite thresholds, so such a population uses the dense rules.
    """

    __slots__ = ("exact", "floats", "ints")

    def __init__(self, floats: FloatArray, ints: npt.NDArray[np.int64], *, exact: bool) -> None:
        self.floats = floats
        self.ints = ints
        self.exact = exact

    @classmethod
    def of(
        cls, params: Sequence[BotParams], price_lows: Sequence[float], price_highs: Sequence[float]
    ) -> PairRules:
        """The rules of ``params`` with the bots' filter price bounds."""
        floats = np.empty((_N_F, len(params)), dtype=np.float64)
        ints = np.zeros((_N_I, len(params)), dtype=np.int64)
        exact = True
        for j, (p, low, high) in enumerate(zip(params, price_lows, price_highs, strict=True)):
            kind = p.signal_type
            source, yes_on_tie = SRC_ASKS, 0
            if kind == "price_level":
                lo, hi = p.price_threshold_low, p.price_threshold_high
                sides = (lo, hi, lo, hi)
            elif kind == "value":
                limit = 0.5 - p.value_edge_min  # the very float value_signal compares with
                sides = (-_INF, _below(limit), -_INF, _below(limit))
                exact = exact and math.isfinite(limit)
            elif kind == "contrarian":
                t = p.contrarian_threshold
                sides = (_above(t), _INF, _above(t), _INF)
                source = SRC_SWAPPED
                exact = exact and math.isfinite(t)
            elif kind == "momentum":
                t = abs(p.momentum_trigger)
                sides = (_above(t), _INF, -_INF, _below(-t))
                source = SRC_MOMENTUM
                exact = exact and math.isfinite(t) and p.momentum_lookback >= 1
            elif kind == "mean_reversion":
                k = p.mean_rev_zscore
                sides = (-_INF, _below(-k), _above(k), _INF)
                source, yes_on_tie = SRC_ZSCORE, 1  # "below" is assigned last: YES wins
                exact = exact and math.isfinite(k)
            else:
                msg = f"unknown signal type {kind!r}; expected one of {', '.join(SIGNAL_TYPES)}"
                raise ValueError(msg)
            floats[:, j] = (
                p.min_time_to_expiry_hrs,
                p.max_time_to_expiry_hrs,
                p.min_volume_24h,
                p.min_open_interest,
                low,
                high,
                *sides,
            )
            ints[:, j] = (source, p.momentum_lookback, yes_on_tie)
        return cls(floats, ints, exact=exact)

    def take(self, rows: npt.NDArray[np.intp]) -> PairRules:
        """The bots ``rows`` (in that order)."""
        # C order, as :meth:`of` makes them: one compiled specialization of the kernels.
        floats = np.ascontiguousarray(self.floats[:, rows])
        return PairRules(floats, np.ascontiguousarray(self.ints[:, rows]), exact=self.exact)


@functools.cache
def pair_kernels() -> ModuleType | None:
    """:mod:`evoarena.evolution.kernels`, imported and compiled (or loaded from numba's disk
    cache) on first use; ``None``, with a warning logged once, where numba cannot be imported
    or cannot compile there — the population then takes the dense rules, with the same
    results, slower. Imported only by a population tick: commands that never tick do not load
    numba."""
    return load_kernels("evoarena.evolution.kernels", "pair_kernels_unavailable")


class PairBuffers:
    """Scratch arrays of :func:`evaluate_pairs`, grown on demand (to twice the pairs found, at
    least) and reused call after call.

    What a call leaves in them stays valid until the next call with the same buffers (keep one
    per population, used by one thread at a time).
    """

    __slots__ = (
        "bots",
        "markets",
        "momentum_lookbacks",
        "momentum_markets",
        "no",
        "signals",
        "yes",
    )

    def __init__(self, capacity: int = 1024) -> None:
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        self.bots: IntArray = np.empty(capacity, dtype=np.int64)
        self.markets: IntArray = np.empty(capacity, dtype=np.int64)
        self.momentum_lookbacks: IntArray = np.empty(capacity, dtype=np.int64)
        self.momentum_markets: IntArray = np.empty(capacity, dtype=np.int64)
        self.signals: SignalArray = np.empty(capacity, dtype=np.int8)
        self.yes: FloatArray = np.empty(capacity)
        self.no: FloatArray = np.empty(capacity)

    @property
    def room(self) -> int:
        """How many pairs the arrays hold."""
        return len(self.bots)

    def ensure(self, capacity: int) -> None:
        """Room for at least ``capacity`` pairs (twice that when it grows)."""
        if len(self.bots) < capacity:
            self._allocate(2 * capacity)


_NO_FLOATS: FloatArray = np.zeros(0)
_NO_INTS: IntArray = np.zeros(0, dtype=np.int64)


def evaluate_pairs(
    rules: PairRules,
    view: MarketView,
    categories_allowed: BoolArray,
    skip: BoolArray,
    buffers: PairBuffers,
) -> tuple[int, IntArray]:
    """:func:`population_pairs_of` into ``buffers``, the bots flagged in ``skip`` left out:
    returns how many pairs were found, ``k``, and each bot's number of pairs; the pairs are
    ``buffers.bots[:k]``, ``buffers.markets[:k]``, their signals ``buffers.signals[:k]`` and
    their markets' YES and NO asks ``buffers.yes[:k]``/``buffers.no[:k]``.

    Two compiled passes (:mod:`evoarena.evolution.kernels`, which must be available: see
    :func:`pair_kernels`): the filter over every pair, then the signals over the pairs that
    pass; the momenta of the momentum bots' pairs are read from ``view`` in between, and the
    z-score inputs only when a mean-reversion bot has a pair.
    """
    kernels = pair_kernels()
    if kernels is None:
        msg = "the compiled pair kernels are unavailable (see pair_kernels)"
        raise RuntimeError(msg)
    n_bots = len(skip)
    yes_ask = view.yes_ask
    no_ask = view.no_ask
    market_columns = (
        view.category_idx,
        view.hours_to_expiry,
        view.volume_24h,
        view.open_interest,
        yes_ask,
        no_ask,
    )

    def filter_pairs() -> tuple[int, int, int]:
        found: tuple[int, int, int] = kernels.filter_pairs(
            skip,
            rules.floats,
            rules.ints,
            categories_allowed,
            *market_columns,
            buffers.bots,
            buffers.markets,
            buffers.momentum_lookbacks,
            buffers.momentum_markets,
        )
        return found

    k, km, kz = filter_pairs()
    if k > buffers.room:  # counted, not all written: again with room for them
        buffers.ensure(k)
        k, km, kz = filter_pairs()
    counts = np.zeros(n_bots, dtype=np.int64)
    if not k:
        return 0, counts
    momenta = (
        view.momentum_at(buffers.momentum_lookbacks[:km], buffers.momentum_markets[:km])
        if km
        else _NO_FLOATS
    )
    if kz:
        ask_micros, hist_len, sums, squares = view.zscore_inputs()
    else:  # no mean-reversion pair: the kernel reads none of them
        ask_micros, hist_len, sums, squares = _NO_FLOATS, _NO_INTS, _NO_INTS, _NO_INTS
    kept: int = kernels.signal_pairs(
        rules.floats,
        rules.ints,
        yes_ask,
        no_ask,
        ask_micros,
        hist_len,
        sums,
        squares,
        MIN_ZSCORE_POINTS,
        momenta,
        buffers.bots,
        buffers.markets,
        k,
        buffers.signals,
        buffers.yes,
        buffers.no,
        counts,
    )
    return kept, counts


def population_pairs_of(
    rules: PairRules, view: MarketView, categories_allowed: BoolArray
) -> tuple[IntArray, IntArray, SignalArray, IntArray]:
    """``(bots, markets, signals, counts)``: every pair where :func:`population_filter_of`
    passes and :func:`population_signals_of` fires, in row-major (bot, then market) order, and
    how many pairs each bot has.

    Equal to ``np.nonzero(filter & (signals != 0))`` and the signals there, for rules with
    :attr:`PairRules.exact`. ``categories_allowed`` holds the bots' category tables. Computed
    by :func:`evaluate_pairs` (compiled kernels, which must be available).
    """
    buffers = PairBuffers()
    skip = np.zeros(rules.floats.shape[1], dtype=np.bool_)
    kept, counts = evaluate_pairs(rules, view, categories_allowed, skip, buffers)
    return buffers.bots[:kept], buffers.markets[:kept], buffers.signals[:kept], counts
