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

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from evoarena.engine.view import FloatArray, MarketView
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
# fires without evaluating every rule on every pair: the parts of the filter that do not depend on
# prices (expiry window, volume, open interest, category) are evaluated densely, and the price
# bounds and the signals only on the pairs that survive, through a single form per rule,
# ``lo <= x <= hi``, with the strict comparisons rewritten exactly: for finite ``c``,
# ``x < c`` is ``-inf <= x <= nextafter(c, -inf)`` and ``x > c`` is
# ``nextafter(c, +inf) <= x <= inf`` (both False for NaN), so every decision is the one the dense
# rules above make.

_F_MIN_H, _F_MAX_H, _F_MIN_VOL, _F_MIN_OI, _F_PRICE_LOW, _F_PRICE_HIGH = range(6)
_F_YES_LO, _F_YES_HI, _F_NO_LO, _F_NO_HI = range(6, 10)
_N_F = 10
_I_SOURCE, _I_LOOKBACK, _I_YES_ON_TIE = range(3)
_N_I = 3
_K_MIN_H, _K_MAX_H, _K_MIN_VOL, _K_MIN_OI = range(4)
_RANK_MIN_BOTS = 128
"""From this many bots on, the filter's thresholds are compared as ranks (see :class:`PairRules`):
the per-market binary searches then cost less than the float comparisons they replace."""
_SRC_ASKS = 0
"""YES side tested on the YES ask, NO side on the NO ask (price_level, value)."""
_SRC_SWAPPED = 1
"""YES side tested on the NO ask and vice versa (contrarian)."""
_SRC_MOMENTUM = 2
_SRC_ZSCORE = 3
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

    The expiry window and the volume and open-interest minimums are also kept as ranks: with
    ``u`` the sorted distinct thresholds of one kind (:attr:`levels`), a value ``x`` is at least
    ``u[j]`` exactly when ``searchsorted(u, x, "right") > j`` and at most ``u[j]`` exactly when
    ``searchsorted(u, x, "left") <= j`` (NaN sorts after every threshold), so for many bots those
    ``(bots × markets)`` comparisons run on small integers (:attr:`ranks`), several times faster
    than on floats. :attr:`ranked` is False when a filter threshold is NaN (floats are compared).
    """

    __slots__ = ("exact", "floats", "ints", "levels", "ranked", "ranks")

    def __init__(
        self,
        floats: FloatArray,
        ints: npt.NDArray[np.int64],
        levels: tuple[FloatArray, FloatArray, FloatArray],
        ranks: npt.NDArray[np.signedinteger[Any]],
        *,
        exact: bool,
        ranked: bool,
    ) -> None:
        self.floats = floats
        self.ints = ints
        self.levels = levels
        self.ranks = ranks
        self.exact = exact
        self.ranked = ranked

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
            source, yes_on_tie = _SRC_ASKS, 0
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
                source = _SRC_SWAPPED
                exact = exact and math.isfinite(t)
            elif kind == "momentum":
                t = abs(p.momentum_trigger)
                sides = (_above(t), _INF, -_INF, _below(-t))
                source = _SRC_MOMENTUM
                exact = exact and math.isfinite(t) and p.momentum_lookback >= 1
            elif kind == "mean_reversion":
                k = p.mean_rev_zscore
                sides = (-_INF, _below(-k), _above(k), _INF)
                source, yes_on_tie = _SRC_ZSCORE, 1  # "below" is assigned last: YES wins
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
        ranked = not np.isnan(floats[_F_MIN_H:_F_PRICE_LOW]).any()
        hours = np.unique(floats[_F_MIN_H:_F_MIN_VOL])
        volume = np.unique(floats[_F_MIN_VOL])
        interest = np.unique(floats[_F_MIN_OI])
        dtype = np.int16 if 2 * len(params) < np.iinfo(np.int16).max else np.int32
        ranks: npt.NDArray[np.signedinteger[Any]] = np.stack(
            [
                np.searchsorted(hours, floats[_F_MIN_H]),
                np.searchsorted(hours, floats[_F_MAX_H]),
                np.searchsorted(volume, floats[_F_MIN_VOL]),
                np.searchsorted(interest, floats[_F_MIN_OI]),
            ]
        ).astype(dtype)
        levels = (hours, volume, interest)
        return cls(floats, ints, levels, ranks, exact=exact, ranked=ranked)

    def take(self, rows: npt.NDArray[np.intp]) -> PairRules:
        """The bots ``rows`` (in that order)."""
        return PairRules(
            self.floats[:, rows],
            self.ints[:, rows],
            self.levels,
            self.ranks[:, rows],
            exact=self.exact,
            ranked=self.ranked,
        )


def category_bits(tables: BoolArray) -> npt.NDArray[np.unsignedinteger[Any]] | None:
    """Each bot's :func:`category_table` (a row of ``tables``) as one unsigned integer, bit ``k``
    set when slot ``k`` is allowed; None with more than 64 slots."""
    n_slots = tables.shape[1]
    if n_slots > 64:
        return None
    widths = (np.uint8, np.uint16, np.uint32, np.uint64)
    dtype = next(t for t in widths if np.iinfo(t).bits >= n_slots)
    weights = np.left_shift(np.uint64(1), np.arange(n_slots, dtype=np.uint64))
    bits: npt.NDArray[np.unsignedinteger[Any]] = (tables.astype(np.uint64) @ weights).astype(dtype)
    return bits


def population_pairs_of(
    rules: PairRules,
    view: MarketView,
    categories_allowed: BoolArray,
    bits: npt.NDArray[np.unsignedinteger[Any]] | None = None,
    *,
    ranked: bool | None = None,
) -> tuple[IntArray, IntArray, SignalArray]:
    """``(bots, markets, signals)``: every pair where :func:`population_filter_of` passes and
    :func:`population_signals_of` fires, in row-major (bot, then market) order.

    Equal to ``np.nonzero(filter & (signals != 0))`` and the signals there, for rules with
    :attr:`PairRules.exact`. ``categories_allowed`` holds the bots' category tables, ``bits``
    optionally the same as :func:`category_bits`. ``ranked`` forces the rank comparisons on or
    off (by default they are used from :data:`_RANK_MIN_BOTS` bots on); the result is the same.
    """
    n = len(view)
    f = rules.floats
    hours = view.hours_to_expiry
    if rules.ranked and (ranked if ranked is not None else f.shape[1] >= _RANK_MIN_BOTS):
        k = rules.ranks
        dtype = k.dtype
        hour_levels, volume_levels, interest_levels = rules.levels
        ok = np.searchsorted(hour_levels, hours, "right").astype(dtype) > k[_K_MIN_H][:, None]
        ok &= np.searchsorted(hour_levels, hours, "left").astype(dtype) <= k[_K_MAX_H][:, None]
        # ~(x < minimum): NaN (unreported) passes, as it sorts after every threshold.
        volume = np.searchsorted(volume_levels, view.volume_24h, "right").astype(dtype)
        ok &= volume > k[_K_MIN_VOL][:, None]
        interest = np.searchsorted(interest_levels, view.open_interest, "right").astype(dtype)
        ok &= interest > k[_K_MIN_OI][:, None]
    else:
        ok = hours >= f[_F_MIN_H][:, None]
        ok &= hours <= f[_F_MAX_H][:, None]
        ok &= ~(view.volume_24h < f[_F_MIN_VOL][:, None])  # NaN (unreported) passes
        ok &= ~(view.open_interest < f[_F_MIN_OI][:, None])
    slots = view.category_idx + 1
    if bits is None:
        ok &= categories_allowed[:, slots]
    else:
        one = bits.dtype.type(1)
        ok &= (bits[:, None] & np.left_shift(one, slots.astype(bits.dtype))) != 0
    flat = np.flatnonzero(ok)
    bots = flat // n
    markets = flat - bots * n
    yes_ask = view.yes_ask[markets]
    no_ask = view.no_ask[markets]
    low = f[_F_PRICE_LOW][bots]
    high = f[_F_PRICE_HIGH][bots]
    keep = ((yes_ask >= low) & (yes_ask <= high)) | ((no_ask >= low) & (no_ask <= high))
    # compress: the same elements as boolean indexing, with less overhead per call.
    bots, markets = bots.compress(keep), markets.compress(keep)
    yes_ask, no_ask = yes_ask.compress(keep), no_ask.compress(keep)

    source = rules.ints[_I_SOURCE][bots]
    swapped = source == _SRC_SWAPPED
    x_yes = np.where(swapped, no_ask, yes_ask)
    x_no = np.where(swapped, yes_ask, no_ask)
    m_at = np.flatnonzero(source == _SRC_MOMENTUM)
    if len(m_at):
        values = view.momentum_at(rules.ints[_I_LOOKBACK][bots[m_at]], markets[m_at])
        x_yes[m_at] = values
        x_no[m_at] = values
    z_at = np.flatnonzero(source == _SRC_ZSCORE)
    if len(z_at):
        # One z-score per distinct market, read back for every pair.
        z_markets = markets[z_at]
        slot = np.full(n, -1, dtype=np.int64)
        slot[z_markets] = 0
        needed = np.flatnonzero(slot == 0)
        slot[needed] = np.arange(len(needed))
        values = view.zscore_at(needed)[slot[z_markets]]
        x_yes[z_at] = values
        x_no[z_at] = values
    yes_ok = (x_yes >= f[_F_YES_LO][bots]) & (x_yes <= f[_F_YES_HI][bots])
    no_ok = (x_no >= f[_F_NO_LO][bots]) & (x_no <= f[_F_NO_HI][bots])
    # pick_sides: YES where only YES qualifies or both do and YES wins the tie.
    yes = yes_ok & (~no_ok | (yes_ask <= no_ask) | (rules.ints[_I_YES_ON_TIE][bots] != 0))
    no = no_ok & ~yes
    fires = yes | no
    sig = yes.astype(np.int8)
    sig -= no
    return bots.compress(fires), markets.compress(fires), sig.compress(fires)
