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

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from evoarena.engine.view import FloatArray, MarketView
from evoarena.evolution.genome import SIGNAL_TYPES, BotParams

SignalArray = npt.NDArray[np.int8]
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

    ``price_lows``/``price_highs`` are the bots' filter price bounds (dollars).
    """

    __slots__ = ("columns", "kind_codes", "lookbacks", "n")

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

    def take(self, rows: npt.NDArray[np.intp]) -> PopulationParams:
        """The sub-population ``rows`` (in that order)."""
        sub = PopulationParams.__new__(PopulationParams)
        sub.n = len(rows)
        sub.columns = {k: v[rows] if len(v) else v for k, v in self.columns.items()}
        sub.kind_codes = self.kind_codes[rows]
        sub.lookbacks = self.lookbacks[rows]
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
