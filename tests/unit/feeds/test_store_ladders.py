"""The compiled store's bulk loop and the fused loop (both inline the ladder update) change
ladders exactly as :meth:`MarketBook.apply` does.

A long stretch of in-sequence deltas (taken in bulk, not row by row) walks two markets' ladders
through every case: a new level above and below the best, a level emptied exactly (the best and
another), an empty ladder, a zero change at no level, and a change that would go negative (the
market turns stale, its later deltas find no book). The general path is the reference: ladders
(with their order), best prices, flags, counters and, at every tick, the markets marked dirty
must match.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from evoarena.feeds.recording import RecordingWriter
from evoarena.feeds.store import MAX_BATCH_SIDS, compile_recording
from evoarena.testing import read_through

pytestmark = pytest.mark.timeout(30)

T0 = 1_750_000_000_000
PRICES = [3000 + 700 * k for k in range(8)]  # in units of the fourth decimal, see _p
TICK_MS = 5
ROWS = 600


def _p(price: int) -> str:
    return f"0.{price:04d}"


def _write_day(path: Path, rng: random.Random) -> int:
    """A snapshot of two markets, then one long run of deltas (and tickers); returns the deltas."""
    sizes: dict[tuple[str, str, int], int] = {}
    with RecordingWriter(path, "test", T0) as w:
        for ticker, sid in (("A-1", 2), ("B-1", 3)):
            yes = [[_p(PRICES[1]), "10.00"], [_p(PRICES[3]), "4.00"]]
            no = [[_p(PRICES[2]), "7.00"]]
            w.write_ws(
                T0,
                {
                    "type": "orderbook_snapshot",
                    "sid": sid,
                    "seq": 1,
                    "msg": {"market_ticker": ticker, "yes_dollars_fp": yes, "no_dollars_fp": no},
                },
            )
            for side, levels in (("yes", yes), ("no", no)):
                for p, s in levels:
                    sizes[ticker, side, int(p[2:])] = round(float(s) * 100)
        seqs = {"A-1": 1, "B-1": 1}
        sids = {"A-1": 2, "B-1": 3}
        n = 0
        for i in range(ROWS):
            t = T0 + 10 + i
            impossible = i == 2 * ROWS // 3 + 1
            ticker = "A-1" if rng.random() < 0.6 and not impossible else "B-1"
            if i % 9 == 4:
                msg = {
                    "market_ticker": ticker,
                    "price_dollars": _p(PRICES[i % 8]),
                    "yes_bid_dollars": "0.4900",
                    "yes_ask_dollars": "0.5100",
                    "volume_fp": f"{i}.00",
                    "open_interest_fp": f"{i + 7}.00",
                }
                w.write_ws(t, {"type": "ticker", "sid": 9, "msg": msg})
                continue
            side = rng.choice(("yes", "no"))
            price = rng.choice(PRICES)
            have = sizes.get((ticker, side, price), 0)
            if impossible:
                delta = -(have + 100)  # impossible: B-1 turns stale
            elif have and rng.random() < 0.4:
                delta = -have  # the level empties exactly
            elif rng.random() < 0.05:
                delta = 0  # a zero change, often at no level
            else:
                delta = rng.randint(1, 900) if not have else rng.randint(-have + 1, 900)
            if have + delta >= 0:
                sizes[ticker, side, price] = have + delta
            seqs[ticker] += 1
            sign = "-" if delta < 0 else ""
            msg = {
                "market_ticker": ticker,
                "price_dollars": _p(price),
                "delta_fp": f"{sign}{abs(delta) // 100}.{abs(delta) % 100:02d}",
                "side": side,
            }
            frame = {"type": "orderbook_delta", "sid": sids[ticker], "seq": seqs[ticker]}
            w.write_ws(t, {**frame, "msg": msg})
            n += 1
    return n


def _run(path: Path, how: str) -> dict[str, Any]:
    return read_through(path, how, start_ms=T0, tick_ms=TICK_MS)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_ladder_updates_match_the_general_path(
    tmp_path: Path, seed: int, bulk_rows: list[int]
) -> None:
    path = tmp_path / "ladders.jsonl"
    n_deltas = _write_day(path, random.Random(seed))
    compile_recording(path)
    general = _run(path, "general")
    store = _run(path, "store")
    assert bulk_rows[0] >= n_deltas  # every delta went through the bulk loop, ticks or not
    fused = _run(path, "fused")
    c = general["counters"]
    assert c.impossible_deltas == 1
    assert c.deltas_without_book > 0
    assert general["markets"]["B-1"][5] is True  # stale
    assert len(general["ticks"]) > 50
    assert any(dirty == [] for _, dirty in general["ticks"])  # changes below the best only
    assert store == general
    assert fused == general


def test_a_row_group_on_many_subscriptions_takes_the_per_row_loop_with_the_same_results(
    tmp_path: Path, bulk_rows: list[int]
) -> None:
    """More subscriptions in a row group than the bulk scan tracks: the per-row loop reads it
    whole (no bulk apply), and the book comes out as the general path builds it."""
    path = tmp_path / "many.jsonl"
    n_markets = MAX_BATCH_SIDS + 6
    with RecordingWriter(path, "test", T0) as w:
        for k in range(n_markets):
            snap = {"market_ticker": f"M-{k}", "yes_dollars_fp": [[_p(PRICES[1]), "5.00"]]}
            w.write_ws(T0, {"type": "orderbook_snapshot", "sid": 100 + k, "seq": 1, "msg": snap})
        for i in range(4 * n_markets):
            k = i % n_markets
            msg = {
                "market_ticker": f"M-{k}",
                "price_dollars": _p(PRICES[i % 8]),
                "delta_fp": "1.00",
                "side": "yes" if i % 3 else "no",
            }
            frame = {"type": "orderbook_delta", "sid": 100 + k, "seq": 2 + i // n_markets}
            w.write_ws(T0 + 1 + i, {**frame, "msg": msg})
    compile_recording(path)
    general = _run(path, "general")
    store = _run(path, "store")
    assert bulk_rows == [0]
    assert general["counters"].deltas == 4 * n_markets
    assert store == general
