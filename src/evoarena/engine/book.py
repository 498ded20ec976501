"""The one shared, in-memory book of every market.

``MarketBook.apply(event)`` is the only way state changes, so a live run and a replay of its
recording build the same book. Kalshi books are bids only: a YES ask at ``p`` is a NO bid at
``1 - p``. A sequence gap or an impossible delta (a level going negative) marks a market *stale*;
stale books are never traded against until a fresh snapshot arrives.

Every market's rolling price history lives in one shared :class:`PriceHistoryStore` (a 2-D int64
ring buffer), so the per-tick market view reads all histories with a few numpy operations instead of
a Python loop over every recorded price.
"""

from __future__ import annotations

import bisect
import functools
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType
from typing import overload

import numpy as np
import numpy.typing as npt

from evoarena.compiled import load_kernels
from evoarena.engine.ladders import (
    CHANGED_TOP,
    IMPOSSIBLE,
    NONE,
    MarketColumns,
    load_rows_numpy,
)
from evoarena.engine.ladders import NO as _S_NO
from evoarena.engine.ladders import YES as _S_YES
from evoarena.feeds.events import (
    PRICE_ONE,
    BookDelta,
    BookInvalidated,
    BookSnapshot,
    CloseTimeChanged,
    EventFeeChanged,
    EventInfo,
    Level,
    MarketDetermined,
    MarketEvent,
    MarketInfo,
    MarketStatus,
    MarketStatusChanged,
    SeriesInfo,
    Side,
    TickerUpdate,
    TradePrint,
)

DEFAULT_FEE_TYPE = "quadratic"
DEFAULT_FEE_MULTIPLIER = Decimal(1)

_TRADABLE_STATUSES = frozenset({MarketStatus.ACTIVE})
_FINAL_STATUSES = frozenset(
    {MarketStatus.DETERMINED, MarketStatus.AMENDED, MarketStatus.FINALIZED, MarketStatus.DISPUTED}
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_INSERT_MAX = 16
"""New markets one sync inserts into the ticker order one by one (more: it sorts again)."""

_CATEGORY_LOG_MAX = 4096
"""Entries :attr:`MarketBook.category_log` keeps before collapsing to "everything changed"."""

_EMPTY_ROW = 0
MAX_HISTORY_LEN = 3000
"""Most values a price history keeps: ``n × Σx²`` of prices up to ``PRICE_ONE`` then fits in
int64, so z-scores are computed from exact integer sums."""
"""The store row every history points at until it records its first price; never written."""


class PriceHistoryStore:
    """The bounded price histories of many markets in one 2-D int64 ring buffer.

    Each history owns one row of ``2 * maxlen`` slots and a write position ``pos``. A value is
    written twice, at ``pos`` and ``pos + maxlen``, so a row's ``n`` newest values are always the
    contiguous slice ``[pos + maxlen - n, pos + maxlen)``, oldest first; :meth:`gather` therefore
    reads any set of histories with one index computation and one ``take``. Rows are handed out
    by :meth:`new_row` (row 0 is the shared, permanently empty history) and never freed. Values
    must lie in ``[0, PRICE_ONE]`` (micro-dollar prices do).

    Each row also keeps the exact integer sum of its values and of their squares
    (:meth:`sums`), updated as values come and go, so a z-score needs no pass over the history;
    with at most :data:`MAX_HISTORY_LEN` values, ``n × sum of squares`` fits in int64.

    A reader that defers copying values (a market view) registers with :meth:`before_next_write`
    and is called back just before the next change of any history, while the values are those it
    saw.
    """

    __slots__ = ("_before_write", "_data", "_length", "_pos", "_sq", "_sum", "maxlen", "n_rows")

    def __init__(self, maxlen: int, capacity: int = 64) -> None:
        if not 0 <= maxlen <= MAX_HISTORY_LEN:
            msg = f"history length must be between 0 and {MAX_HISTORY_LEN}, was {maxlen}"
            raise ValueError(msg)
        self.maxlen = maxlen
        rows = max(2, capacity)
        self._data: IntArray = np.zeros((rows, 2 * maxlen), dtype=np.int64)
        self._pos: IntArray = np.zeros(rows, dtype=np.int64)
        self._length: IntArray = np.zeros(rows, dtype=np.int64)
        self._sum: IntArray = np.zeros(rows, dtype=np.int64)
        self._sq: IntArray = np.zeros(rows, dtype=np.int64)
        self.n_rows = 1  # row 0: the empty history
        self._before_write: list[weakref.WeakMethod[Callable[[], None]]] = []

    def before_next_write(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, just before the next change of any history.

        ``callback`` is a bound method, held weakly: once its object is gone it is not called.
        """
        self._before_write.append(weakref.WeakMethod(callback))

    def _writing(self) -> None:
        pending, self._before_write = self._before_write, []
        for ref in pending:
            callback = ref()
            if callback is not None:
                callback()

    def new_row(self) -> int:
        """A fresh, empty row (the arrays double when full)."""
        if self.n_rows == len(self._pos):
            grow = len(self._pos)
            self._data = np.concatenate(
                (self._data, np.zeros((grow, 2 * self.maxlen), dtype=np.int64))
            )
            self._pos = np.concatenate((self._pos, np.zeros(grow, dtype=np.int64)))
            self._length = np.concatenate((self._length, np.zeros(grow, dtype=np.int64)))
            self._sum = np.concatenate((self._sum, np.zeros(grow, dtype=np.int64)))
            self._sq = np.concatenate((self._sq, np.zeros(grow, dtype=np.int64)))
        row = self.n_rows
        self.n_rows += 1
        return row

    @property
    def data(self) -> IntArray:
        """The ``(rows, 2 * maxlen)`` values: row ``r``'s ``n`` newest end just before
        ``pos[r] + maxlen`` (a new array whenever the store grows)."""
        return self._data

    @property
    def pos(self) -> IntArray:
        """Each row's write position (a new array whenever the store grows)."""
        return self._pos

    @property
    def lengths_array(self) -> IntArray:
        """How many values each row holds (a new array whenever the store grows)."""
        return self._length

    def length(self, row: int) -> int:
        """How many values ``row`` holds (at most :attr:`maxlen`)."""
        return int(self._length[row])

    def lengths(self, rows: IntArray) -> IntArray:
        """How many values each of ``rows`` holds."""
        return self._length[rows]

    def sums(self, rows: IntArray) -> tuple[IntArray, IntArray]:
        """``(sum, sum of squares)`` of each of ``rows``' values, exact."""
        return self._sum[rows], self._sq[rows]

    def values(self, row: int) -> IntArray:
        """A copy of ``row``'s values, oldest first."""
        n = int(self._length[row])
        end = int(self._pos[row]) + self.maxlen
        return self._data[row, end - n : end].copy()

    def append(self, row: int, value: int) -> None:
        """Append ``value`` to ``row``, dropping its oldest value when it holds :attr:`maxlen`."""
        if row == _EMPTY_ROW:
            msg = "row 0 is the shared empty history; take a row from new_row() first"
            raise ValueError(msg)
        cap = self.maxlen
        if cap == 0:
            return
        if self._before_write:
            self._writing()
        p = int(self._pos[row])
        if self._length[row] < cap:
            self._length[row] += 1
        else:  # the oldest value, at the write position, leaves
            old = int(self._data[row, p])
            self._sum[row] -= old
            self._sq[row] -= old * old
        self._sum[row] += value
        self._sq[row] += value * value
        self._data[row, p] = value
        self._data[row, p + cap] = value
        self._pos[row] = 0 if p + 1 == cap else p + 1

    def append_rows(self, rows: IntArray, values: IntArray) -> None:
        """``append(rows[i], values[i])`` for every ``i`` at once; ``rows`` must be distinct."""
        cap = self.maxlen
        if cap == 0 or not len(rows):
            return
        if self._before_write:
            self._writing()
        p = self._pos[rows]
        at = rows * (2 * cap)
        at += p  # flat index of each row's write position
        flat = self._data.reshape(-1)  # a view: the array is C-contiguous
        n = self._length[rows]
        old = flat[at]
        old *= n == cap  # the oldest value leaves a full row (the write position holds it)
        self._sum[rows] += values - old
        self._sq[rows] += values * values - old * old
        flat[at] = values
        at += cap
        flat[at] = values
        p += 1
        p %= cap
        self._pos[rows] = p
        n += n < cap
        self._length[rows] = n

    def clear(self, row: int) -> None:
        """Forget every value of ``row``."""
        if self._before_write:
            self._writing()
        self._length[row] = 0
        self._pos[row] = 0
        self._sum[row] = 0
        self._sq[row] = 0

    def gather(self, rows: IntArray) -> tuple[IntArray, IntArray]:
        """``(lengths, values)``: each row's history length, and the histories concatenated in
        the order of ``rows``, each oldest first (``values`` has ``lengths.sum()`` entries)."""
        lengths = self._length[rows]
        if not len(rows):
            return lengths, np.zeros(0, dtype=np.int64)
        ends = np.cumsum(lengths)
        total = int(ends[-1])
        # Flat index of each history's oldest value, minus where it lands in the output.
        first = rows * (2 * self.maxlen) + self._pos[rows] + (self.maxlen - lengths)
        at = np.repeat(first - (ends - lengths), lengths)
        at += np.arange(total, dtype=np.int64)  # in place: one large temporary fewer
        return lengths, self._data.reshape(-1).take(at)


class PriceHistory(Sequence[int]):
    """One market's rolling price history, a bounded ``deque``-like view of a store row.

    Iterates oldest first, as Python ints. ``append`` drops the oldest value once :attr:`maxlen`
    values are held. A history that has never recorded a value uses no store row.
    """

    __slots__ = ("_row", "_store")

    def __init__(self, store: PriceHistoryStore) -> None:
        self._store = store
        self._row = _EMPTY_ROW

    @property
    def store(self) -> PriceHistoryStore:
        """The store holding this history."""
        return self._store

    @property
    def row(self) -> int:
        """This history's row in :attr:`store` (0, the shared empty row, before any value)."""
        return self._row

    @property
    def maxlen(self) -> int:
        """The most values kept."""
        return self._store.maxlen

    def own_row(self) -> int:
        """This history's row, taking a fresh one from the store first if it has none."""
        if self._row == _EMPTY_ROW:
            self._row = self._store.new_row()
        return self._row

    def append(self, value: int) -> None:
        """Record ``value`` as the newest price."""
        self._store.append(self.own_row(), value)

    def extend(self, values: Iterable[int]) -> None:
        """Append every value in order."""
        for v in values:
            self.append(v)

    def clear(self) -> None:
        """Forget every value."""
        self._store.clear(self._row)

    def to_array(self) -> IntArray:
        """The values, oldest first, as a new int64 array."""
        return self._store.values(self._row)

    def __len__(self) -> int:
        return self._store.length(self._row)

    def __iter__(self) -> Iterator[int]:
        return iter(self.to_array().tolist())

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> list[int]: ...

    def __getitem__(self, index: int | slice) -> int | list[int]:
        values: list[int] = self.to_array().tolist()
        return values[index]

    def __repr__(self) -> str:
        return f"PriceHistory({list(self)!r}, maxlen={self.maxlen})"


class MarketState:
    """One market: its two bid ladders, lifecycle, outcome and recent price history.

    The ladders and the fields a replay's hot rows write or a view reads live in a row of the
    book's :class:`~evoarena.engine.ladders.MarketColumns` (:attr:`row`); this object reads and
    writes them there. :attr:`yes_bids` and :attr:`no_bids` are fresh dicts (price → size),
    highest price first: change a ladder through the book, never through them.
    """

    __slots__ = (
        "_c",
        "_close_ms",
        "_status",
        "event_ticker",
        "history",
        "open_ms",
        "result",
        "row",
        "settlement_value",
        "ticker",
        "title",
        "volume",
    )

    def __init__(
        self,
        ticker: str,
        history_len: int,
        store: PriceHistoryStore | None = None,
        columns: MarketColumns | None = None,
    ) -> None:
        """A market nobody has told us anything about yet.

        Its price history keeps the last ``history_len`` values, in ``store`` (the book's shared
        store) or, without one, in a store of its own; its ladders and hot fields take a new row
        of ``columns`` (the book's) or, without them, of columns of its own.
        """
        if store is None:
            store = PriceHistoryStore(history_len, capacity=2)
        elif store.maxlen != history_len:
            msg = f"store keeps {store.maxlen} values, history_len is {history_len}"
            raise ValueError(msg)
        if columns is None:
            columns = MarketColumns(capacity=1)
        self._c = columns
        self.row = columns.new_row()
        self.ticker = ticker
        self.event_ticker: str | None = None
        self.title: str | None = None
        self._status = MarketStatus.UNKNOWN
        self._close_ms: int | None = None
        self.open_ms: int | None = None
        self.result: Side | None = None
        self.settlement_value: int | None = None
        self.volume: int | None = None
        self.history = PriceHistory(store)

    # -- fields kept in the book's columns ----------------------------------------------------

    @property
    def status(self) -> MarketStatus:
        """The market's lifecycle status."""
        return self._status

    @status.setter
    def status(self, value: MarketStatus) -> None:
        self._status = value
        self._c.active[self.row] = value in _TRADABLE_STATUSES

    @property
    def has_book(self) -> bool:
        """A snapshot has arrived (the ladders mean something)."""
        return bool(self._c.has_book[self.row])

    @has_book.setter
    def has_book(self, value: bool) -> None:
        self._c.has_book[self.row] = value

    @property
    def stale(self) -> bool:
        """The book is untrusted until the next snapshot (a sequence gap, an impossible delta)."""
        return bool(self._c.stale[self.row])

    @stale.setter
    def stale(self, value: bool) -> None:
        self._c.stale[self.row] = value

    @property
    def close_ms(self) -> int | None:
        """When trading closes (ms since the epoch), if known."""
        return self._close_ms

    @close_ms.setter
    def close_ms(self, value: int | None) -> None:
        # Kept exact here: a lifecycle's close_ts is any JSON integer, not one int64 holds. The
        # column has the float a view reads (as the old per-market rows converted it).
        self._close_ms = value
        self._c.close_ms[self.row] = np.nan if value is None else float(value)

    @property
    def volume_24h(self) -> int | None:
        """Contracts traded in the last 24 h (centi-contracts), if reported."""
        return _opt(self._c.volume_24h[self.row])

    @volume_24h.setter
    def volume_24h(self, value: int | None) -> None:
        self._c.volume_24h[self.row] = NONE if value is None else value

    @property
    def open_interest(self) -> int | None:
        """Open interest (centi-contracts), if reported."""
        return _opt(self._c.open_interest[self.row])

    @open_interest.setter
    def open_interest(self, value: int | None) -> None:
        self._c.open_interest[self.row] = NONE if value is None else value

    @property
    def last_price(self) -> int | None:
        """The last traded YES price (micro-dollars), if known."""
        return _opt(self._c.last_price[self.row])

    @last_price.setter
    def last_price(self, value: int | None) -> None:
        self._c.last_price[self.row] = NONE if value is None else value

    @property
    def yes_bids(self) -> dict[int, int]:
        """The YES bid ladder, price → size, highest price first (a copy)."""
        return self._ladder(_S_YES)

    @property
    def no_bids(self) -> dict[int, int]:
        """The NO bid ladder, price → size, highest price first (a copy)."""
        return self._ladder(_S_NO)

    def _ladder(self, side: int) -> dict[int, int]:
        prices, sizes = self._c.ladder(self.row, side)
        return dict(zip(reversed(prices), reversed(sizes), strict=True))

    def _best(self, side: int) -> tuple[int, int] | None:
        c = self._c
        n = int(c.count[self.row, side])
        if not n:
            return None
        top = int(c.start[self.row, side]) + n - 1
        return int(c.price[top]), int(c.size[top])

    # -- derived prices -----------------------------------------------------------------------

    @property
    def best_yes_bid(self) -> int | None:
        """Highest YES bid (micro-dollars), or ``None`` for an empty ladder."""
        best = self._best(_S_YES)
        return None if best is None else best[0]

    @property
    def best_no_bid(self) -> int | None:
        """Highest NO bid (micro-dollars), or ``None`` for an empty ladder."""
        best = self._best(_S_NO)
        return None if best is None else best[0]

    @property
    def best_yes_ask(self) -> int | None:
        """Cheapest YES price one can buy at: ``1 - best NO bid``."""
        bid = self.best_no_bid
        return None if bid is None else PRICE_ONE - bid

    @property
    def best_no_ask(self) -> int | None:
        """Cheapest NO price one can buy at: ``1 - best YES bid``."""
        bid = self.best_yes_bid
        return None if bid is None else PRICE_ONE - bid

    def ask_levels(self, side: Side) -> list[Level]:
        """Levels one can buy ``side`` at, cheapest first: (ask price, size).

        Buying YES takes NO bids at ``1 - p``; buying NO takes YES bids at ``1 - p``.
        """
        prices, sizes = self._c.ladder(self.row, _S_NO if side is Side.YES else _S_YES)
        return [(PRICE_ONE - p, s) for p, s in zip(reversed(prices), reversed(sizes), strict=True)]

    def bid_levels(self, side: Side) -> list[Level]:
        """The ``side`` bid ladder, best (highest) first."""
        prices, sizes = self._c.ladder(self.row, _S_YES if side is Side.YES else _S_NO)
        return list(zip(reversed(prices), reversed(sizes), strict=True))

    @property
    def tradable(self) -> bool:
        """A fresh book on an open market: the only kind the paper exchange fills against."""
        return self.has_book and not self.stale and self._status in _TRADABLE_STATUSES

    @property
    def is_final(self) -> bool:
        """The outcome is known."""
        return self.settlement_value is not None or self._status in _FINAL_STATUSES

    # -- mutation (only MarketBook calls these) -----------------------------------------------

    def _set_ladders(self, yes: tuple[Level, ...], no: tuple[Level, ...]) -> None:
        c = self._c
        c.set_ladder(self.row, _S_YES, {p: s for p, s in yes if s > 0})
        c.set_ladder(self.row, _S_NO, {p: s for p, s in no if s > 0})
        c.has_book[self.row] = True
        c.stale[self.row] = False
        c.dirty[self.row] = True

    def _apply_delta(self, side: Side, price: int, delta: int) -> bool:
        """Apply a signed size change; returns False (and changes nothing) if it is impossible."""
        c = self._c
        r = c.delta(self.row, _S_YES if side is _YES else _S_NO, price, delta)
        if r == CHANGED_TOP:  # a change below the best level changes nothing a view reads
            c.dirty[self.row] = True
        return r != IMPOSSIBLE


def _opt(v: np.int64) -> int | None:
    """A column's value as an int, ``None`` for :data:`~evoarena.engine.ladders.NONE`."""
    i = int(v)
    return None if i == NONE else i


_YES = Side.YES
"""(A module global: ``Side.YES``, an enum class attribute, costs a slow lookup per delta.)"""

COLS = 7
"""Columns of :attr:`BookArrays.raw`."""


def market_row(m: MarketState) -> tuple[int | None, ...]:
    """What a view reads of one market (``None`` = missing, NaN in the arrays)."""
    yes = m._best(_S_YES)
    no = m._best(_S_NO)
    return (
        None if yes is None else yes[0],
        None if no is None else no[0],
        None if yes is None else yes[1],
        None if no is None else no[1],
        m.close_ms,
        m.volume_24h,
        m.open_interest,
    )


@functools.cache
def engine_kernels() -> ModuleType | None:
    """:mod:`evoarena.engine.kernels`, imported and compiled (or loaded from numba's disk cache)
    on first use; ``None``, with a warning logged once, where numba cannot be imported or cannot
    compile there — the book and the views then take their numpy code, with the same results,
    slower. Imported only by a tick: commands that never tick do not load numba."""
    return load_kernels("evoarena.engine.kernels", "engine_kernels_unavailable")


class BookArrays:
    """One book's markets as arrays kept up to date incrementally (one row per market, in the
    order the book first heard of them; :attr:`order` lists the rows in ticker order).

    Columns of :attr:`raw` (float64, NaN = missing): best YES bid, best NO bid, size at the best
    YES bid, size at the best NO bid, close time, 24 h volume, open interest. :attr:`fresh`:
    a trustworthy book (``has_book and not stale``); :attr:`tradable`:
    :attr:`MarketState.tradable`; :attr:`hist_row`: the price history's store row, read when a
    market is added and set by :meth:`MarketBook.record_tick` when it takes one (0 also for a
    history begun otherwise since: readers then ask the market's history).

    :meth:`sync` appends rows for new markets and re-reads only the markets in
    :attr:`MarketBook.dirty` (the book adds a market whenever something a view reads changes).
    :meth:`category_pos` derives categories for new rows and, from the book's category change
    log, re-derives only the rows of events whose category may have changed and of markets that
    moved to another event (everything after a series change or for a new category list).
    """

    def __init__(self) -> None:
        self.states: list[MarketState] = []
        self.slot: dict[MarketState, int] = {}
        self.order: IntArray = np.zeros(0, dtype=np.int64)
        self.raw: FloatArray = np.zeros((0, COLS))
        self.tradable = np.zeros(0, dtype=np.bool_)
        self.fresh = np.zeros(0, dtype=np.bool_)
        self.hist_row: IntArray = np.zeros(0, dtype=np.int64)
        self._sorted_tickers: list[str] = []  # the tickers of ``order``, in that order
        self._cat_key: list[str] | None = None
        self._cat_pos: IntArray = np.zeros(0, dtype=np.int64)
        self._cat_index: dict[str, int] = {}
        self._cat_event_pos: dict[str | None, int] = {}
        self._row_event: list[str | None] = []
        self._event_rows: dict[str | None, list[int]] = {}

    def sync(self, book: MarketBook) -> None:
        """Append rows for the book's new markets and re-read its dirty ones (clearing them)."""
        cols = book.columns
        n_old = len(self.states)
        n = cols.n  # markets are only ever added, each taking the next row
        if n != n_old:
            new = book._states[n_old:]
            for i, m in enumerate(new, n_old):
                self.slot[m] = i
            self.states.extend(new)
            self.raw = np.concatenate((self.raw, np.empty((n - n_old, COLS))))
            self.tradable = np.concatenate((self.tradable, np.empty(n - n_old, np.bool_)))
            self.fresh = np.concatenate((self.fresh, np.empty(n - n_old, np.bool_)))
            rows = np.array([m.history._row for m in new], dtype=np.int64)
            self.hist_row = np.concatenate((self.hist_row, rows))
            self._order_new(new, n_old)
            cols.dirty[n_old:n] = True
        dirty = np.flatnonzero(cols.dirty[:n])
        if len(dirty):
            # A history row only changes from 0, which record_tick and the view handle: not
            # re-read.
            kernels = engine_kernels()
            load = load_rows_numpy if kernels is None else kernels.load_rows
            load(
                dirty, cols.price, cols.size, cols.start, cols.count, cols.close_ms,
                cols.volume_24h, cols.open_interest, cols.has_book, cols.stale, cols.active,
                self.raw, self.fresh, self.tradable, dirty,
            )  # fmt: skip
            cols.dirty[dirty] = False

    def _order_new(self, new: list[MarketState], first_row: int) -> None:
        """Put the rows of ``new`` (from ``first_row`` on) into :attr:`order`: a few by binary
        insertion into the sorted tickers, many by sorting everything again."""
        keys = self._sorted_tickers
        if len(new) > _INSERT_MAX:
            keys.extend(m.ticker for m in new)
            tickers = [m.ticker for m in self.states]
            self.order = np.array(sorted(range(len(tickers)), key=tickers.__getitem__), np.int64)
            keys.sort()
            return
        added = sorted((m.ticker, row) for row, m in enumerate(new, first_row))
        order = self.order
        parts = []
        done = 0
        for ticker, row in added:  # ascending: each lands after the ones before it
            at = bisect.bisect_left(keys, ticker, done)
            parts.append(order[done:at])
            parts.append(np.array([row], dtype=np.int64))
            done = at
        parts.append(order[done:])
        self.order = np.concatenate(parts)
        for ticker, _ in reversed(added):
            bisect.insort(keys, ticker)

    def category_pos(self, book: MarketBook, categories: list[str]) -> IntArray:
        """Each row's index in ``categories`` (-1: unknown or not listed)."""
        log = book.category_log
        if self._cat_key != categories or None in log:
            self._cat_key = list(categories)
            self._cat_index = {c: i for i, c in enumerate(categories)}
            self._cat_pos = np.zeros(0, dtype=np.int64)
            self._cat_event_pos = {}
            self._row_event = []
            self._event_rows = {}
        elif log:
            self._apply_category_log(book, log)
        log.clear()
        n_old = len(self._row_event)
        if n_old < len(self.states):  # new rows (all of them after a reset)
            event_rows = self._event_rows
            idx = []
            for row in range(n_old, len(self.states)):
                m = self.states[row]
                event = m.event_ticker
                self._row_event.append(event)
                event_rows.setdefault(event, []).append(row)
                idx.append(self._event_pos(book, event))
            self._cat_pos = np.concatenate((self._cat_pos, np.array(idx, dtype=np.int64)))
        return self._cat_pos

    def _event_pos(self, book: MarketBook, event: str | None) -> int:
        """The category index of ``event``'s markets."""
        pos = self._cat_event_pos.get(event)
        if pos is None:
            # A market's category is a function of its event alone: look it up once per event.
            cat = book.event_category(event)
            pos = -1 if cat is None else self._cat_index.get(cat, -1)
            self._cat_event_pos[event] = pos
        return pos

    def _apply_category_log(self, book: MarketBook, log: list[str | MarketState | None]) -> None:
        """Re-derive the rows the log names: an event's rows, or a market now in another event."""
        for entry in log:
            if isinstance(entry, MarketState):
                row = self.slot.get(entry)
                if row is None or row >= len(self._row_event):
                    continue  # not derived yet: done with the new rows
                old = self._row_event[row]
                if old != entry.event_ticker:
                    self._event_rows[old].remove(row)
                    self._row_event[row] = entry.event_ticker
                    self._event_rows.setdefault(entry.event_ticker, []).append(row)
                self._cat_pos[row] = self._event_pos(book, entry.event_ticker)
            else:
                self._cat_event_pos.pop(entry, None)
                rows = self._event_rows.get(entry)
                if rows:
                    self._cat_pos[rows] = self._event_pos(book, entry)


class DirtyMarkets:
    """The book's markets flagged in :attr:`MarketColumns.dirty`, as a set-like collection
    (compiled loops flag rows directly)."""

    __slots__ = ("_book",)

    def __init__(self, book: MarketBook) -> None:
        self._book = book

    def _rows(self) -> list[int]:
        cols = self._book.columns
        rows: list[int] = np.flatnonzero(cols.dirty[: cols.n]).tolist()
        return rows

    def add(self, m: MarketState) -> None:
        """Flag ``m``."""
        self._book.columns.dirty[m.row] = True

    def clear(self) -> None:
        """Unflag every market."""
        self._book.columns.dirty[:] = False

    def __iter__(self) -> Iterator[MarketState]:
        states = self._book._states
        return iter([states[r] for r in self._rows()])

    def __len__(self) -> int:
        cols = self._book.columns
        return int(np.count_nonzero(cols.dirty[: cols.n]))

    def __bool__(self) -> bool:
        cols = self._book.columns
        return bool(cols.dirty[: cols.n].any())

    def __contains__(self, m: object) -> bool:
        book = self._book
        return (
            isinstance(m, MarketState)
            and book.markets.get(m.ticker) is m
            and bool(book.columns.dirty[m.row])
        )


@dataclass(slots=True)
class _EventMeta:
    series_ticker: str | None = None
    category: str | None = None
    fee_type: str | None = None
    fee_multiplier: Decimal | None = None
    fee_type_override: str | None = None
    fee_multiplier_override: Decimal | None = None


@dataclass(slots=True)
class _SeriesMeta:
    category: str | None = None
    fee_type: str | None = None
    fee_multiplier: Decimal | None = None


@dataclass(slots=True)
class BookCounters:
    """What the book noticed while applying events (for ``inspect`` and heartbeats)."""

    events: int = 0
    snapshots: int = 0
    deltas: int = 0
    deltas_without_book: int = 0
    impossible_deltas: int = 0
    invalidations: int = 0
    determined: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class MarketBook:
    """Every market, every event and series the feed has told us about."""

    def __init__(self, history_len: int = 120) -> None:
        self.history_len = history_len
        self.history_store = PriceHistoryStore(history_len)
        self.markets: dict[str, MarketState] = {}
        self._events: dict[str, _EventMeta] = {}
        self._series: dict[str, _SeriesMeta] = {}
        self.counters = BookCounters()
        self._newly_determined: list[str] = []
        self.columns = MarketColumns()
        """Every market's ladders and hot fields (a market's :attr:`MarketState.row`)."""
        self._states: list[MarketState] = []  # the markets in row order
        self.dirty = DirtyMarkets(self)
        """Markets whose view-relevant state (top of book, status, staleness, close time, volume,
        open interest) changed since the book's arrays last read them."""
        self.category_version = 0
        """Bumped whenever a market's category may have changed (event or series info)."""
        self.category_log: list[str | MarketState | None] = []
        """What may have changed categories since :class:`BookArrays` last read it: an event
        ticker (its info changed), a market (it moved to another event), ``None`` (a series
        changed: any market may have). The arrays clear it; while nobody reads it, it holds at
        most :data:`_CATEGORY_LOG_MAX` entries (then just ``None``)."""
        self._arrays: BookArrays | None = None

    # -- queries ------------------------------------------------------------------------------

    def get(self, ticker: str) -> MarketState | None:
        """The market, if known."""
        return self.markets.get(ticker)

    def market(self, ticker: str) -> MarketState:
        """The market, created empty on first mention."""
        m = self.markets.get(ticker)
        if m is None:
            m = MarketState(ticker, self.history_len, self.history_store, self.columns)
            self.markets[ticker] = m
            self._states.append(m)
        return m

    def category(self, ticker: str) -> str | None:
        """The series category of the market's event, falling back to the event's category."""
        m = self.markets.get(ticker)
        if m is None:
            return None
        return self.event_category(m.event_ticker)

    def event_category(self, event_ticker: str | None) -> str | None:
        """The category of the markets of ``event_ticker`` (see :meth:`category`)."""
        if event_ticker is None:
            return None
        ev = self._events.get(event_ticker)
        if ev is None:
            return None
        if ev.series_ticker is not None:
            s = self._series.get(ev.series_ticker)
            if s is not None and s.category:
                return s.category
        return ev.category or None

    def categories(self) -> list[str]:
        """Every category of a known market, sorted (the genome's category mask indexes this)."""
        found = {c for t in self.markets if (c := self.category(t)) is not None}
        return sorted(found)

    def fee_params(self, ticker: str) -> tuple[str, Decimal]:
        """(fee type, fee multiplier): the event's override, else the series', else quadratic ×1."""
        m = self.markets.get(ticker)
        ev = self._events.get(m.event_ticker) if m is not None and m.event_ticker else None
        fee_type: str | None = None
        mult: Decimal | None = None
        if ev is not None:
            fee_type = ev.fee_type_override or ev.fee_type
            mult = (
                ev.fee_multiplier_override
                if ev.fee_multiplier_override is not None
                else (ev.fee_multiplier)
            )
            if ev.series_ticker is not None and (s := self._series.get(ev.series_ticker)):
                fee_type = fee_type or s.fee_type
                mult = mult if mult is not None else s.fee_multiplier
        return (fee_type or DEFAULT_FEE_TYPE, mult if mult is not None else DEFAULT_FEE_MULTIPLIER)

    def stale_tickers(self) -> list[str]:
        """Markets whose book is currently untrusted."""
        cols = self.columns
        states = self._states
        return sorted(states[r].ticker for r in np.flatnonzero(cols.stale[: cols.n]).tolist())

    def drain_determined(self) -> list[str]:
        """Markets that became determined since the last call, in the order it happened."""
        out, self._newly_determined = self._newly_determined, []
        return out

    def pending_determined(self) -> list[str]:
        """Markets determined since the last :meth:`drain_determined`, without draining them."""
        return list(self._newly_determined)

    def restore_pending_determined(self, tickers: list[str]) -> None:
        """Set what the next :meth:`drain_determined` returns (a resumed replay's saved list)."""
        self._newly_determined = list(tickers)

    # -- updates ------------------------------------------------------------------------------

    def arrays(self) -> BookArrays:
        """Every market as arrays, brought up to date (see :class:`BookArrays`)."""
        if self._arrays is None:
            self._arrays = BookArrays()
        self._arrays.sync(self)
        return self._arrays

    def record_tick(self) -> None:
        """Append every market's current YES ask to its rolling history (once per tick).

        Only fresh books with a NO bid (hence a YES ask) record a value. One compiled loop
        (:func:`engine_kernels`) where numba is available, else a few numpy calls: the same
        values, positions and exact sums.
        """
        a = self.arrays()
        kernels = engine_kernels()
        if kernels is not None:
            store = self.history_store
            if store._before_write and store.maxlen:
                store._writing()
            need = kernels.record_asks(
                a.raw, a.fresh, a.hist_row, store._data, store._pos, store._length,
                store._sum, store._sq, PRICE_ONE,
            )  # fmt: skip
            states = a.states
            for i in need.tolist():  # a first value: take store rows (in row order)
                a.hist_row[i] = row = states[i].history.own_row()
                store.append(row, PRICE_ONE - int(a.raw[i, 1]))
            return
        best_no = a.raw[:, 1]
        at = np.flatnonzero(a.fresh & (best_no == best_no))  # NaN (no NO bid) != NaN
        rows = a.hist_row[at]
        if not rows.all():  # a first value: take store rows (in row order)
            states = a.states
            for j in np.flatnonzero(rows == 0).tolist():
                i = int(at[j])
                rows[j] = a.hist_row[i] = states[i].history.own_row()
        # The integer-valued bids cast to int64 first: the exact µ$ asks.
        asks = np.subtract(PRICE_ONE, best_no[at], dtype=np.int64, casting="unsafe")
        self.history_store.append_rows(rows, asks)

    def apply(self, ev: MarketEvent) -> None:  # noqa: C901 — one flat dispatch reads best here
        """Apply one domain event."""
        c = self.counters
        c.events += 1
        name = type(ev).__name__
        by_type = c.by_type
        by_type[name] = by_type.get(name, 0) + 1
        if isinstance(ev, BookDelta):
            c.deltas += 1
            m = self.markets.get(ev.ticker)
            cols = self.columns
            if m is None or not cols.has_book[m.row] or cols.stale[m.row]:
                c.deltas_without_book += 1
            elif not m._apply_delta(ev.side, ev.price, ev.delta):
                c.impossible_deltas += 1
                cols.stale[m.row] = True
                cols.dirty[m.row] = True
        elif isinstance(ev, BookSnapshot):
            c.snapshots += 1
            self.market(ev.ticker)._set_ladders(ev.yes_bids, ev.no_bids)
        elif isinstance(ev, TickerUpdate):
            m = self.market(ev.ticker)
            if ev.last_price is not None:
                m.last_price = ev.last_price
            if ev.volume is not None:
                m.volume = ev.volume
            if ev.volume_24h is not None:
                m.volume_24h = ev.volume_24h
            if ev.open_interest is not None:
                m.open_interest = ev.open_interest
            self.dirty.add(m)
        elif isinstance(ev, TradePrint):
            self.market(ev.ticker).last_price = ev.yes_price
        elif isinstance(ev, BookInvalidated):
            c.invalidations += 1
            for t in ev.tickers:
                if (m := self.markets.get(t)) is not None:
                    m.stale = True
                    self.dirty.add(m)
        elif isinstance(ev, MarketInfo):
            self._apply_info(ev)
        elif isinstance(ev, MarketStatusChanged):
            self._set_status(self.market(ev.ticker), ev.status)
        elif isinstance(ev, CloseTimeChanged):
            m = self.market(ev.ticker)
            m.close_ms = ev.close_ms
            self.dirty.add(m)
        elif isinstance(ev, MarketDetermined):
            self._determine(self.market(ev.ticker), ev.result, ev.settlement_value)
        elif isinstance(ev, EventInfo):
            self.category_version += 1  # categories may change
            self._category_changed(ev.event_ticker)
            meta = self._events.setdefault(ev.event_ticker, _EventMeta())
            meta.series_ticker = ev.series_ticker or meta.series_ticker
            meta.category = ev.category or meta.category
            meta.fee_type_override = ev.fee_type or meta.fee_type_override
            if ev.fee_multiplier is not None:
                meta.fee_multiplier_override = ev.fee_multiplier
        elif isinstance(ev, SeriesInfo):
            self.category_version += 1  # categories may change
            self._category_changed(None)
            s = self._series.setdefault(ev.series_ticker, _SeriesMeta())
            s.category = ev.category or s.category
            s.fee_type = ev.fee_type or s.fee_type
            if ev.fee_multiplier is not None:
                s.fee_multiplier = ev.fee_multiplier
        elif isinstance(ev, EventFeeChanged):
            meta = self._events.setdefault(ev.event_ticker, _EventMeta())
            meta.fee_type_override = ev.fee_type
            meta.fee_multiplier_override = ev.fee_multiplier

    def _apply_info(self, ev: MarketInfo) -> None:
        m = self.market(ev.ticker)
        self.dirty.add(m)
        if ev.event_ticker is not None:
            moved = ev.event_ticker != m.event_ticker
            m.event_ticker = ev.event_ticker
            if moved:
                self.category_version += 1  # its category may change
                self._category_changed(m)
            self._events.setdefault(ev.event_ticker, _EventMeta())
        if ev.title is not None:
            m.title = ev.title
        if ev.open_ms is not None:
            m.open_ms = ev.open_ms
        if ev.close_ms is not None:
            m.close_ms = ev.close_ms
        if ev.volume_24h is not None:
            m.volume_24h = ev.volume_24h
        if ev.open_interest is not None:
            m.open_interest = ev.open_interest
        if ev.status is not None:
            self._set_status(m, ev.status)
        if ev.settlement_value is not None and ev.status in _FINAL_STATUSES:
            self._determine(m, ev.result, ev.settlement_value)

    def _category_changed(self, entry: str | MarketState | None) -> None:
        log = self.category_log
        if len(log) >= _CATEGORY_LOG_MAX:
            log[:] = [None]  # nobody is reading: the next reader re-derives everything
        log.append(entry)

    def _set_status(self, m: MarketState, status: MarketStatus) -> None:
        # A determined market never goes back to trading because of a late, stale status.
        if m.settlement_value is not None and status not in _FINAL_STATUSES:
            return
        m.status = status
        self.dirty.add(m)

    def _determine(self, m: MarketState, result: Side | None, value: int) -> None:
        if m.settlement_value is not None:
            return  # whichever source said it first wins, once
        m.result = result
        m.settlement_value = value
        if m.status not in _FINAL_STATUSES:
            m.status = MarketStatus.DETERMINED
        self.dirty.add(m)
        self.counters.determined += 1
        self._newly_determined.append(m.ticker)
