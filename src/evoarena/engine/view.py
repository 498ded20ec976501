"""A per-tick, population-wide view of the tradable markets as numpy arrays.

:meth:`MarketView.build` runs once per tick and is shared by every bot: bots evaluate their filters
and signals as vectorized masks over these arrays and only loop in Python over the few candidate
markets. Arrays are aligned with :attr:`MarketView.tickers` (sorted). Prices are float dollars and
sizes float contracts, for signal math only; fills use the book's exact integers. Missing values
(an empty ladder, an unreported volume, an unknown close time) are NaN, so every comparison with
them is False.

A build costs one compiled pass (:mod:`evoarena.engine.kernels`; a few array operations where
numba is unavailable, with the same results) over the book's incrementally kept
:class:`~evoarena.engine.book.BookArrays`: price histories are read from the shared store only
when and where a feature needs them (:meth:`MarketView.zscore_at`, :meth:`MarketView.momentum_at`)
and ticker lists are made on first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from evoarena.engine.book import (
    COLS,
    MarketBook,
    MarketState,
    PriceHistoryStore,
    engine_kernels,
    market_row,
)
from evoarena.feeds.events import COUNT_ONE, PRICE_ONE

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MS_PER_HOUR = 3_600_000
MIN_ZSCORE_POINTS = 10
"""Fewest history points a z-score is computed from."""

_NAN = float("nan")

_UNITS = np.array([PRICE_ONE, PRICE_ONE, MS_PER_HOUR, COUNT_ONE, COUNT_ONE], dtype=np.float64)
"""Divisors of the five derived features (YES ask, NO ask, hours, volume, open interest)."""


class MarketView:
    """Features of every tradable market at one instant (see the module docstring).

    Price, size, expiry and activity arrays are taken on construction (later book changes do not
    show). So, in effect, is every market's price history: a view built from a book reads the
    shared history store only when a history feature is first asked for, and copies its markets'
    histories just before the store next changes (:meth:`PriceHistoryStore.before_next_write`)
    if it has not by then. The history features (:attr:`hist_mean`, :attr:`hist_std`,
    :attr:`zscore`, :meth:`momentum`) are computed on first use, once; :meth:`zscore_at` and
    :meth:`momentum_at` read only the markets and points they are asked for. :attr:`markets`,
    :attr:`tickers` and :attr:`index` are listed on first use.
    """

    __slots__ = (
        "__weakref__",
        "_hist_ends",
        "_hist_flat",
        "_hist_mean",
        "_hist_rows",
        "_hist_sq",
        "_hist_std",
        "_hist_sum",
        "_index",
        "_markets",
        "_momentum",
        "_raw",
        "_sel",
        "_states",
        "_store",
        "_tickers",
        "_zscore",
        "categories",
        "category_idx",
        "hist_len",
        "hours_to_expiry",
        "no_ask",
        "now_ms",
        "open_interest",
        "volume_24h",
        "yes_ask",
    )

    def __init__(
        self,
        *,
        now_ms: int,
        markets: list[MarketState],
        categories: list[str],
        category_idx: IntArray,
    ) -> None:
        rows = []
        hist_rows = []
        store = markets[0].history.store if markets else None
        shared = True  # every history in one store: one vectorized read
        for m in markets:
            h = m.history
            hist_rows.append(h.row)
            if h.store is not store:
                shared = False
            rows.append(market_row(m))
        # None becomes NaN. Integer micro-dollars and centi-contracts are exact in float64 and are
        # divided once, so equal integers give equal floats and their order is kept.
        raw = np.array(rows, dtype=np.float64).reshape(len(markets), COLS)
        if store is not None and shared:
            rows_at = np.array(hist_rows, dtype=np.int64)
            hist = store.gather(rows_at)
            sums = store.sums(rows_at)
        else:  # markets of different books (or none): read them one by one
            parts = [m.history.to_array() for m in markets]
            lengths = np.array([len(p) for p in parts], dtype=np.int64)
            hist = lengths, np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            sums = (
                np.array([int(p.sum()) for p in parts], dtype=np.int64),
                np.array([int((p * p).sum()) for p in parts], dtype=np.int64),
            )
        self._fill(now_ms, categories, category_idx, raw)
        self._markets: list[MarketState] | None = list(markets)
        self._states: list[MarketState] = self._markets
        self._sel: list[int] = list(range(len(markets)))
        self._store: PriceHistoryStore | None = None
        self._hist_rows: IntArray = np.zeros(0, dtype=np.int64)
        self.hist_len: IntArray = hist[0]
        flat = hist[1]
        self._set_history(flat)
        self._hist_sum: IntArray | None = sums[0]
        self._hist_sq: IntArray | None = sums[1]

    def _fill(
        self, now_ms: int, categories: list[str], category_idx: IntArray, raw: FloatArray
    ) -> None:
        yes_bid, no_bid = raw[:, 0], raw[:, 1]
        features = (
            (PRICE_ONE - no_bid) / PRICE_ONE,
            (PRICE_ONE - yes_bid) / PRICE_ONE,
            (raw[:, 4] - now_ms) / MS_PER_HOUR,
            raw[:, 5] / COUNT_ONE,
            raw[:, 6] / COUNT_ONE,
        )
        self._set_features(now_ms, categories, category_idx, raw, features)

    def _set_features(
        self,
        now_ms: int,
        categories: list[str],
        category_idx: IntArray,
        raw: FloatArray,
        features: Sequence[FloatArray],
    ) -> None:
        """Take the raw rows and the five derived features (YES ask, NO ask, hours to expiry,
        24 h volume, open interest)."""
        self.now_ms = now_ms
        self._tickers: list[str] | None = None
        self._index: dict[str, int] | None = None
        self.categories = categories
        self.category_idx = category_idx
        self._raw = raw  # bids and depths are derived on use (the bots read only the asks)
        self.yes_ask: FloatArray = features[0]
        self.no_ask: FloatArray = features[1]
        self.hours_to_expiry: FloatArray = features[2]
        self.volume_24h: FloatArray = features[3]
        self.open_interest: FloatArray = features[4]
        self._hist_mean: FloatArray | None = None
        self._hist_std: FloatArray | None = None
        self._zscore: FloatArray | None = None
        self._momentum: dict[int, FloatArray] = {}

    def _set_history(self, flat: IntArray) -> None:
        self._hist_flat: IntArray | None = flat  # every history (YES asks, µ$) in view order
        self._hist_ends: IntArray = np.cumsum(self.hist_len)

    def _copy_history(self) -> None:
        """Copy the markets' histories out of the store (before it changes, or for a feature)."""
        if self._hist_flat is None and self._store is not None:
            self._set_history(self._store.gather(self._hist_rows)[1])
            self._hist_sum, self._hist_sq = self._store.sums(self._hist_rows)

    def _sums(self, markets: IntArray) -> tuple[IntArray, IntArray]:
        """Exact ``(Σx, Σx²)`` of each of ``markets``' histories (µ$, µ$²)."""
        if self._hist_sum is None and self._store is not None:  # the store is as built
            return self._store.sums(self._hist_rows[markets])
        assert self._hist_sum is not None  # noqa: S101 — set with the copied history
        assert self._hist_sq is not None  # noqa: S101 — set with the copied history
        return self._hist_sum[markets], self._hist_sq[markets]

    def _history(self) -> tuple[IntArray, IntArray]:
        """Every history concatenated in view order, and where each ends."""
        self._copy_history()
        assert self._hist_flat is not None  # noqa: S101 — set by _copy_history
        return self._hist_flat, self._hist_ends

    @property
    def yes_bid(self) -> FloatArray:
        """Best YES bid of each market, dollars."""
        out: FloatArray = self._raw[:, 0] / PRICE_ONE
        return out

    @property
    def no_bid(self) -> FloatArray:
        """Best NO bid of each market, dollars."""
        out: FloatArray = self._raw[:, 1] / PRICE_ONE
        return out

    @property
    def yes_ask_depth(self) -> FloatArray:
        """Contracts offered at the best YES ask (the size of the best NO bid)."""
        out: FloatArray = self._raw[:, 3] / COUNT_ONE
        return out

    @property
    def no_ask_depth(self) -> FloatArray:
        """Contracts offered at the best NO ask (the size of the best YES bid)."""
        out: FloatArray = self._raw[:, 2] / COUNT_ONE
        return out

    @property
    def markets(self) -> list[MarketState]:
        """The markets, in ticker order."""
        if self._markets is None:
            states = self._states
            self._markets = [states[i] for i in self._sel]
        return self._markets

    @property
    def tickers(self) -> list[str]:
        """The markets' tickers, sorted."""
        if self._tickers is None:
            self._tickers = [m.ticker for m in self.markets]
        return self._tickers

    @property
    def index(self) -> dict[str, int]:
        """Position of each ticker in the view."""
        if self._index is None:
            self._index = {t: i for i, t in enumerate(self.tickers)}
        return self._index

    def ticker(self, i: int) -> str:
        """The ticker of the ``i``-th market (without listing them all)."""
        if self._tickers is not None:
            return self._tickers[i]
        return self._states[self._sel[i]].ticker

    def tickers_at(self, indices: Iterable[int]) -> list[str]:
        """The tickers of the markets ``indices`` (without listing them all)."""
        if self._tickers is not None:
            tickers = self._tickers
            return [tickers[i] for i in indices]
        states = self._states
        sel = self._sel
        return [states[sel[i]].ticker for i in indices]

    @classmethod
    def build(
        cls,
        book: MarketBook,
        now_ms: int,
        categories: list[str],
        lookbacks: Iterable[int] | None = None,
        *,
        max_close_ms: int | None = None,
    ) -> MarketView:
        """The view of every tradable market of ``book`` at ``now_ms``, in ticker order.

        Tradable: :attr:`MarketState.tradable` (active, fresh book) and not past its close time
        (``close_ms`` unknown or after ``now_ms``), the markets the paper exchange would fill.
        With ``max_close_ms``, only markets known to close by then (a generation passes the
        earlier of its settlement deadline and ``now + market_close_window``: a position that
        cannot settle in time would only be force-closed as a loss).

        ``categories`` is the generation's category list (the genome mask indexes it); a market
        whose category is unknown or not listed gets index -1. ``lookbacks`` (momentum lookbacks
        the caller may ask for) are only validated: every momentum is computed on first use and
        cached (:meth:`momenta` computes several in one pass), so a tick without an active
        momentum bot computes none.
        """
        cache = book.arrays()
        store = book.history_store
        states = cache.states
        view = cls.__new__(cls)
        kernels = engine_kernels()
        if kernels is not None:
            sel, raw, features, hist_rows, cat_idx, hist_len = kernels.view_rows(
                cache.order, cache.tradable, cache.raw, cache.hist_row,
                cache.category_pos(book, categories), store.lengths_array, float(now_ms),
                0.0 if max_close_ms is None else float(max_close_ms), max_close_ms is not None,
                _UNITS,
            )  # fmt: skip
            view._set_features(now_ms, list(categories), cat_idx, raw, features)
        else:
            close = cache.raw[:, 4]
            ok = cache.tradable & ~(close <= now_ms)  # an unknown (NaN) close time stays
            if max_close_ms is not None:
                ok &= close <= max_close_ms
            order = cache.order
            sel = order[ok[order]]  # rows of the view's markets, in ticker order
            hist_rows = cache.hist_row[sel]
            cat_idx = cache.category_pos(book, categories)[sel]
            view._fill(now_ms, list(categories), cat_idx, cache.raw[sel])
            hist_len = store.lengths(hist_rows)
        if not hist_rows.all():  # a history may have begun since the arrays last read it
            for j in np.flatnonzero(hist_rows == 0).tolist():
                row = states[int(sel[j])].history.row
                hist_rows[j] = cache.hist_row[sel[j]] = row
                hist_len[j] = store.length(row)
        view._markets = None
        view._states = states  # only ever appended to: the rows in ``sel`` stay valid
        view._sel = sel.tolist()
        view._store = store
        view._hist_rows = hist_rows
        view.hist_len = hist_len
        view._hist_flat = None
        view._hist_ends = np.zeros(0, dtype=np.int64)
        view._hist_sum = None
        view._hist_sq = None
        store.before_next_write(view._copy_history)
        if lookbacks is not None:
            wanted = frozenset(lookbacks)
            if wanted and min(wanted) < 1:
                msg = f"momentum lookback must be at least 1 tick, was {min(wanted)}"
                raise ValueError(msg)
        return view

    def __len__(self) -> int:
        """Number of markets in the view."""
        return len(self._sel)

    # -- history features ---------------------------------------------------------------------

    @property
    def hist_mean(self) -> FloatArray:
        """Mean of each market's recorded YES asks, dollars (NaN without history)."""
        if self._hist_mean is None:
            self._rolling_stats()
        assert self._hist_mean is not None  # noqa: S101 — set by _rolling_stats
        return self._hist_mean

    @property
    def hist_std(self) -> FloatArray:
        """Population standard deviation of each market's recorded YES asks, dollars."""
        if self._hist_std is None:
            self._rolling_stats()
        assert self._hist_std is not None  # noqa: S101 — set by _rolling_stats
        return self._hist_std

    @property
    def zscore(self) -> FloatArray:
        """``(current YES ask − mean) / std`` of each market's history (see :meth:`zscore_at`)."""
        if self._zscore is None:
            self._zscore = self.zscore_at(np.arange(len(self), dtype=np.int64))
        return self._zscore

    def zscore_inputs(self) -> tuple[FloatArray, IntArray, IntArray, IntArray]:
        """What :meth:`zscore_at` computes from, for every market: the YES ask in µ$ (exact in
        float64; NaN without a NO bid), the history's length, its exact sum and sum of
        squares."""
        if self._hist_sum is None and self._store is not None:  # the store is as built
            total, squares = self._store.sums(self._hist_rows)
        else:
            total, squares = self._sums(np.arange(len(self), dtype=np.int64))
        return PRICE_ONE - self._raw[:, 1], self.hist_len, total, squares

    def zscore_at(self, markets: IntArray) -> FloatArray:
        """``zscore[markets]``: NaN under :data:`MIN_ZSCORE_POINTS` points or with no spread.

        From the exact integer sums of each history (``n`` values, sum ``S``, sum of squares
        ``Q``, µ$) and the current YES ask ``a`` (µ$): ``(n·a − S) / sqrt(n·Q − S²)``, where
        numerator and radicand are exact, so the only roundings are the square root and the
        division, whatever path computed the sums. The same value, up to those roundings, as
        ``(a − mean) / std`` with the population standard deviation.
        """
        if self._zscore is not None:
            return self._zscore[markets]
        n = self.hist_len[markets]
        total, squares = self._sums(markets)
        radicand = n * squares - total * total  # n²·variance: exact in int64 (MAX_HISTORY_LEN)
        ask = PRICE_ONE - self._raw[markets, 1]  # exact integers in float64; NaN: no NO bid
        ok = (n >= MIN_ZSCORE_POINTS) & (radicand > 0)
        out = np.full(len(markets), _NAN)
        if ok.any():
            at = np.flatnonzero(ok)
            num = n[at] * ask[at] - total[at]
            out[at] = num / np.sqrt(radicand[at].astype(np.float64))
        return out

    def momentum(self, lookback: int) -> FloatArray:
        """Fractional change of the YES ask over ``lookback`` history ticks (NaN if too short).

        ``(h[-1] − h[-1 − lookback]) / h[-1 − lookback]`` over each market's recorded history.
        """
        if lookback < 1:
            msg = f"momentum lookback must be at least 1 tick, was {lookback}"
            raise ValueError(msg)
        cached = self._momentum.get(lookback)
        if cached is not None:
            return cached
        self.momenta((lookback,))
        return self._momentum[lookback]

    def momenta(self, lookbacks: Iterable[int]) -> None:
        """Compute and cache :meth:`momentum` for every lookback in ``lookbacks`` at once.

        One gather over the flat history for all missing lookbacks (a ``(k, n_markets)`` matrix)
        instead of ``k`` separate passes; each row equals what :meth:`momentum` returns.
        """
        wanted = sorted(set(lookbacks))
        if wanted and wanted[0] < 1:
            msg = f"momentum lookback must be at least 1 tick, was {wanted[0]}"
            raise ValueError(msg)
        missing = [lb for lb in wanted if lb not in self._momentum]
        if not missing:
            return
        lbs = np.array(missing, dtype=np.int64)[:, None]
        ok = self.hist_len > lbs  # (k, n): at least lookback + 1 points
        out = np.full(ok.shape, _NAN)
        if ok.any():
            flat, hist_ends = self._history()
            # Clipped indices may point into another market's history (or be 0 for an empty
            # one); those entries are exactly the ones ``ok`` masks out below.
            last_idx = np.maximum(hist_ends - 1, 0)
            last = flat[last_idx].astype(np.float64)  # (n,), shared by every lookback
            base = flat[np.maximum(last_idx - lbs, 0)].astype(np.float64)  # (k, n)
            with np.errstate(divide="ignore", invalid="ignore"):
                mom = (last - base) / base
            out = np.where(ok & (base > 0), mom, _NAN)
        for row, lb in enumerate(missing):
            self._momentum[lb] = out[row]

    def momentum_at(self, lookbacks: IntArray, markets: IntArray) -> FloatArray:
        """``momentum(lookbacks[i])[markets[i]]`` for every ``i``, by the same float operations.

        For many (lookback, market) pairs at once without computing whole lookback rows.
        """
        if len(lookbacks) and int(lookbacks.min()) < 1:
            msg = f"momentum lookback must be at least 1 tick, was {int(lookbacks.min())}"
            raise ValueError(msg)
        store = self._store
        kernels = engine_kernels()
        if kernels is not None:
            if self._hist_flat is None and store is not None:  # the store is as built
                out: FloatArray = kernels.momenta_in_store(
                    store.data, store.pos, self._hist_rows, self.hist_len, lookbacks, markets
                )
                return out
            flat, ends = self._history()
            out = kernels.momenta_in_flat(flat, ends, self.hist_len, lookbacks, markets)
            return out
        ok = self.hist_len[markets] > lookbacks
        if not ok.any():
            return np.full(len(markets), _NAN)
        if self._hist_flat is None and store is not None:  # the store is as built
            rows = self._hist_rows[markets]
            cap = store.maxlen
            newest = rows * (2 * cap)
            newest += store.pos[rows]
            newest += cap - 1
            source = store.data.reshape(-1)
        else:
            source, hist_ends = self._history()
            newest = hist_ends[markets] - 1
        # Where not ``ok`` the indices may leave the history (clipped): those are masked below.
        last = source.take(newest, mode="clip").astype(np.float64)
        newest -= lookbacks
        base = source.take(newest, mode="clip").astype(np.float64)
        ok &= base > 0
        base[~ok] = _NAN  # NaN momentum (and no division-by-zero warning)
        out = (last - base) / base
        return out

    def _rolling_stats(self) -> None:
        """Mean and population standard deviation of each market's history, in dollars, from
        the exact sums (``S / n`` and ``sqrt(n·Q − S²) / n``)."""
        n = self.hist_len
        total, squares = self._sums(np.arange(len(self), dtype=np.int64))
        has = n > 0
        mean = np.full(len(self), _NAN)
        std = np.full(len(self), _NAN)
        if has.any():
            k = n[has]
            radicand = (k * squares[has] - total[has] ** 2).astype(np.float64)
            mean[has] = total[has] / k / PRICE_ONE
            std[has] = np.sqrt(radicand) / k / PRICE_ONE
        self._hist_mean = mean
        self._hist_std = std
