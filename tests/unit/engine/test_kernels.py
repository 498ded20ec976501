"""The compiled book and view kernels (engine/kernels.py) against the numpy code they replace."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest
import structlog

from evoarena.engine import book as book_module
from evoarena.engine import view as view_module
from evoarena.engine.book import MarketBook, engine_kernels
from evoarena.engine.view import MarketView
from evoarena.feeds.events import (
    PRICE_ONE,
    BookInvalidated,
    BookSnapshot,
    CloseTimeChanged,
    MarketInfo,
    MarketStatus,
    MarketStatusChanged,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR = 3_600_000


def without_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the book and the views take their numpy code, as where numba cannot load."""
    monkeypatch.setattr(book_module, "engine_kernels", lambda: None)
    monkeypatch.setattr(view_module, "engine_kernels", lambda: None)


def simulate(seed: int, history_len: int) -> list[bytes]:
    """Run a random book for a while (markets appearing, moving, going stale, closing, pausing,
    losing a ladder) and return everything the kernels touch or produce, as bytes: after every
    tick the store and the book's history rows, then views built with and without a close-time
    bound, their momenta at random (lookback, market) pairs read from the store, and those of a
    view kept from the tick before (read from its copied history)."""
    rng = random.Random(seed)
    book = MarketBook(history_len=history_len)
    out: list[bytes] = []
    tickers: list[str] = []
    previous: MarketView | None = None
    previous_pairs: tuple[np.ndarray, np.ndarray] | None = None
    now = T0
    for tick in range(60):
        now += 30_000
        for _ in range(rng.randint(0, 4)):  # new markets, some with unknown close times
            ticker = f"M{rng.randrange(10_000):04d}"
            if ticker in tickers:
                continue
            tickers.append(ticker)
            # On the 30 s grid of the ticks: some close exactly at a tick or at a view's bound.
            close = None if rng.random() < 0.1 else now + 30_000 * rng.randint(-120, 800)
            book.apply(
                MarketInfo(
                    ticker, f"E{rng.randrange(5)}", MarketStatus.ACTIVE, now - HOUR, close,
                    ticker, None, None, rng.randrange(1000), rng.randrange(1000), None, None, now,
                )
            )  # fmt: skip
        for ticker in tickers:
            r = rng.random()
            if r < 0.6:
                yes = () if rng.random() < 0.05 else ((rng.randrange(1, 50) * 10_000, 10),)
                # A NO bid of PRICE_ONE is a YES ask of 0: a momentum base of 0 (NaN).
                no = () if rng.random() < 0.1 else ((rng.randrange(0, 101) * 10_000, 5),)
                book.apply(BookSnapshot(ticker, yes, no, now))
            elif r < 0.63:
                book.apply(BookInvalidated((ticker,), "gap", now))
            elif r < 0.65:
                status = rng.choice([MarketStatus.ACTIVE, MarketStatus.CLOSED])
                book.apply(MarketStatusChanged(ticker, status, now))
            elif r < 0.67:
                book.apply(CloseTimeChanged(ticker, now + 30_000 * rng.randint(-120, 800), now))
            elif r < 0.68:  # a history begun outside record_tick
                book.market(ticker).history.append(rng.randrange(PRICE_ONE + 1))
        book.record_tick()
        store = book.history_store
        n = store.n_rows
        sums = store.sums(np.arange(n, dtype=np.int64))
        out.extend(a.tobytes() for a in (store.data[:n], store.pos[:n], *sums))
        out.append(store.lengths_array[:n].tobytes())
        out.append(book.arrays().hist_row.tobytes())
        if previous is not None and previous_pairs is not None:  # copied before the write
            out.append(previous.momentum_at(*previous_pairs).tobytes())
        for bound in (None, now + 5 * HOUR):
            view = MarketView.build(book, now, ["E0", "E3"], max_close_ms=bound)
            out.append(np.array(view._sel, dtype=np.int64).tobytes())
            out.append(view._raw.tobytes())
            features = (view.yes_ask, view.no_ask, view.hours_to_expiry, view.volume_24h)
            out.extend(a.tobytes() for a in (*features, view.open_interest, view.category_idx))
            out.extend(a.tobytes() for a in (view.hist_len, view._hist_rows))
            k = 3 * len(view)
            markets = np.array([rng.randrange(max(len(view), 1)) for _ in range(k)], np.int64)
            lookbacks = np.array([rng.randint(1, history_len + 2) for _ in range(k)], np.int64)
            if len(view):
                out.append(view.momentum_at(lookbacks, markets).tobytes())
                out.append(view.zscore_at(markets).tobytes())
                previous, previous_pairs = view, (lookbacks, markets)
        if tick % 7 == 0:
            previous = previous_pairs = None
    return out


def test_engine_kernels_load() -> None:
    """numba is a dependency: the compiled kernels are there."""
    assert engine_kernels() is not None


@pytest.mark.parametrize("history_len", [0, 1, 3, 25])
@pytest.mark.parametrize("seed", [1, 2])
def test_kernels_equal_the_numpy_code_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, seed: int, history_len: int
) -> None:
    """Recorded histories (values, positions, lengths, exact sums), built views and momenta are
    the numpy code's, byte for byte."""
    compiled = simulate(seed, history_len)
    without_kernels(monkeypatch)
    numpy_code = simulate(seed, history_len)
    assert len(compiled) == len(numpy_code) > 100
    for i, (got, want) in enumerate(zip(compiled, numpy_code, strict=True)):
        assert got == want, i


def test_engine_kernels_are_none_where_they_cannot_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the compiled kernels (numba missing or unable to compile), engine_kernels says so
    once, with a warning, and the book and the views take their numpy code."""
    engine_kernels.cache_clear()
    monkeypatch.setitem(sys.modules, "evoarena.engine.kernels", None)  # the import fails
    try:
        with structlog.testing.capture_logs() as logs:
            assert engine_kernels() is None
            assert engine_kernels() is None
            book = MarketBook(history_len=3)
            book.apply(
                MarketInfo(
                    "A", None, MarketStatus.ACTIVE, T0, T0 + HOUR, "A", None, None, None, None,
                    None, None, T0,
                )
            )  # fmt: skip
            book.apply(BookSnapshot("A", (), ((400_000, 1),), T0))
            book.record_tick()
            book.record_tick()
            view = MarketView.build(book, T0, [])
            assert view.yes_ask.tolist() == [0.6]
            momentum = view.momentum_at(np.array([1], np.int64), np.array([0], np.int64))
            assert momentum.tolist() == [0.0]
        assert [e["event"] for e in logs] == ["engine_kernels_unavailable"]
        assert "import of evoarena.engine.kernels halted" in logs[0]["error"]
    finally:
        engine_kernels.cache_clear()
    monkeypatch.undo()
    assert engine_kernels() is not None
