"""Order-book microstructure: quotes, deltas, tickers and trades of each market."""

from __future__ import annotations

import math
import uuid
from typing import Any

from evoarena.feeds.synth.common import _BOOK, _PRICE_STR, _REFILL, _TRADE, MINUTE_MS, ONE, _count
from evoarena.feeds.synth.model import _lot, _Market, _Sub
from evoarena.feeds.synth.world import _World


class _Books(_World):
    """The order books of the day's markets and the frames that move them."""

    def _mid_price(self, m: _Market, bid: int | None, ask: int | None) -> int:
        """A grid price at (or just below) the mid of the target quote."""
        grid = m.grid
        if bid is None:
            return grid[0]
        if ask is None:
            return grid[-1]
        return grid[(bid + ask) // 2]

    def _size(self, m: _Market, depth_rank: int) -> int:
        rng = self.micro
        contracts = max(1, int(m.liq * (1 + 0.35 * depth_rank) * rng.lognormvariate(0.0, 0.8)))
        centi = contracts * 100
        if m.fractional and rng.random() < 0.3:
            centi += rng.randrange(1, 100)
        return centi

    @staticmethod
    def _book_sub(m: _Market) -> _Sub:
        """The market's order-book subscription (book frames only flow while it has one)."""
        if m.ob_sub is None:
            raise RuntimeError(f"{m.ticker}: order-book frame without a subscription")
        return m.ob_sub

    def _snapshot(self, t: int, m: _Market) -> int:
        s = self._book_sub(m)
        s.seq += 1
        grid = m.grid
        msg: dict[str, Any] = {"market_ticker": m.ticker, "market_id": m.market_id}
        if m.yes:
            msg["yes_dollars_fp"] = [[_PRICE_STR[grid[i]], _count(m.yes[i])] for i in sorted(m.yes)]
        if m.no:
            msg["no_dollars_fp"] = [
                [_PRICE_STR[ONE - grid[j]], _count(m.no[j])] for j in sorted(m.no, reverse=True)
            ]
        frame = {"type": "orderbook_snapshot", "sid": s.sid, "seq": s.seq, "msg": msg}
        return self.out.ws(t + 1, frame)

    def _start_chains(self, m: _Market, t: int) -> None:
        m.epoch += 1
        if m.paused or t >= m.event.close_ms:
            return
        rng, push = self.micro, self.heap.push
        push(t + 1 + int(rng.expovariate(m.book_rate) * 1000), _BOOK, m, m.epoch)
        push(t + 1 + int(rng.expovariate(m.trade_rate) * 1000), _TRADE, m, m.epoch)

    def _activity(self, m: _Market, t: int) -> float:
        ev = m.event
        mult = 1.0
        for s, e in ev.bursts:
            if s <= t < e:
                mult = 5.0
                break
        if t >= ev.close_ms - 15 * MINUTE_MS:
            mult *= 2.0
        return mult

    def _on_book(self, t: int, m: _Market, epoch: int) -> None:
        if epoch != m.epoch:
            return
        self._book_update(m, t)
        rate = m.book_rate * self._activity(m, t)
        self.heap.push(t + 1 + int(self.micro.expovariate(rate) * 1000), _BOOK, m, epoch)

    def _on_refill(self, t: int, m: _Market, epoch: int) -> None:
        if epoch == m.epoch:
            self._book_update(m, t)

    def _book_update(self, m: _Market, t: int) -> None:
        """Move the book to the current quote: cancels first, then new levels, then noise."""
        rng = self.micro
        yes, no = m.yes, m.no
        old_top = (max(yes) if yes else None, min(no) if no else None)
        r = rng.random()
        spread = m.spread + (1 if r < 0.2 else -1 if r > 0.92 and m.spread > 1 else 0)
        bid, ask = self._target(m, t, spread)
        changes = [("yes", i, -yes.pop(i)) for i in [i for i in yes if bid is None or i > bid]]
        changes += [("no", j, -no.pop(j)) for j in [j for j in no if ask is None or j < ask]]
        if bid is not None and bid not in yes:
            yes[bid] = self._size(m, 0)
            changes.append(("yes", bid, yes[bid]))
        if ask is not None and ask not in no:
            no[ask] = self._size(m, 0)
            changes.append(("no", ask, no[ask]))
        self._keep_depth(m, changes)
        if rng.random() < 0.7:
            self._noise(m, changes)
        for side, idx, delta in changes:
            self._delta(m, t, side, idx, delta)
        if (max(yes) if yes else None, min(no) if no else None) != old_top:
            self._ticker(m, t)

    def _keep_depth(self, m: _Market, changes: list[tuple[str, int, int]]) -> None:
        rng, yes, no = self.micro, m.yes, m.no
        if yes and len(yes) < m.depth:
            i = min(yes) - rng.choice((1, 1, 2, 3))
            if i >= 0:
                yes[i] = self._size(m, len(yes))
                changes.append(("yes", i, yes[i]))
        elif len(yes) > m.depth + 2:
            i = min(yes)
            changes.append(("yes", i, -yes.pop(i)))
        if no and len(no) < m.depth:
            j = max(no) + rng.choice((1, 1, 2, 3))
            if j < len(m.grid):
                no[j] = self._size(m, len(no))
                changes.append(("no", j, no[j]))
        elif len(no) > m.depth + 2:
            j = max(no)
            changes.append(("no", j, -no.pop(j)))

    def _noise(self, m: _Market, changes: list[tuple[str, int, int]]) -> None:
        """Somebody adds to or cancels part of a resting order."""
        rng = self.micro
        side = "yes" if rng.random() < 0.5 else "no"
        ladder = m.yes if side == "yes" else m.no
        if not ladder:
            return
        keys = list(ladder)
        idx = keys[rng.randrange(len(keys))]
        size = ladder[idx]
        if rng.random() < 0.55:
            delta = _lot(m, self._size(m, 1) // 2)
        else:
            delta = -min(size, _lot(m, int(size * rng.uniform(0.1, 1.0))))
            if len(keys) == 1 and -delta >= size:  # keep the side's last level alive
                delta = -_lot(m, size // 2) if size >= 200 else 0
        if delta == 0:
            return
        if size + delta == 0:
            del ladder[idx]
        else:
            ladder[idx] = size + delta
        changes.append((side, idx, delta))

    def _delta(self, m: _Market, t: int, side: str, idx: int, delta: int) -> None:
        s = self._book_sub(m)
        s.seq += 1
        price = m.grid[idx] if side == "yes" else ONE - m.grid[idx]
        msg = {
            "market_ticker": m.ticker,
            "market_id": m.market_id,
            "price_dollars": _PRICE_STR[price],
            "delta_fp": _count(delta),
            "side": side,
            "ts_ms": t - 4 - s.seq % 23,
        }
        self.out.ws(t, {"type": "orderbook_delta", "sid": s.sid, "seq": s.seq, "msg": msg})

    def _ticker(self, m: _Market, t: int) -> None:
        s = m.tk_sub
        if s is None:
            return
        grid = m.grid
        bid = max(m.yes) if m.yes else None
        ask = min(m.no) if m.no else None
        venue = t - 3 - m.oi % 17
        msg = {
            "market_id": m.market_id,
            "market_ticker": m.ticker,
            "price_dollars": _PRICE_STR[m.last_price],
            "yes_bid_dollars": _PRICE_STR[grid[bid] if bid is not None else 0],
            "yes_ask_dollars": _PRICE_STR[grid[ask] if ask is not None else ONE],
            "volume_fp": _count(m.volume),
            "open_interest_fp": _count(m.oi),
            "dollar_volume": m.notional // ONE,
            "dollar_open_interest": m.oi * m.last_price // (100 * ONE),
            "yes_bid_size_fp": _count(m.yes[bid] if bid is not None else 0),
            "yes_ask_size_fp": _count(m.no[ask] if ask is not None else 0),
            "last_trade_size_fp": _count(m.last_size),
            "ts": venue // 1000,
            "ts_ms": venue,
        }
        self.out.ws(t, {"type": "ticker", "sending_ts_ms": venue + 2, "sid": s.sid, "msg": msg})

    def _on_trade(self, t: int, m: _Market, epoch: int) -> None:
        if epoch != m.epoch:
            return
        rng = self.micro
        self._trade(m, t)
        rate = m.trade_rate * self._activity(m, t)
        self.heap.push(t + 1 + int(rng.expovariate(rate) * 1000), _TRADE, m, epoch)

    def _trade(self, m: _Market, t: int) -> None:
        """A taker takes (part of) the best level on one side: delta, trade, ticker."""
        rng = self.micro
        taker_yes = rng.random() < 0.5
        ladder = m.no if taker_yes else m.yes
        if not ladder:
            return
        idx = min(ladder) if taker_yes else max(ladder)
        size = ladder[idx]
        want = max(1, int(rng.lognormvariate(math.log(max(2.0, m.liq / 8)), 1.0))) * 100
        if m.fractional and rng.random() < 0.4:
            want = max(1, want - rng.randrange(100))
        count = min(size, want)
        yes_price = m.grid[idx]
        side = "no" if taker_yes else "yes"
        if count == size:
            del ladder[idx]
            self.heap.push(t + rng.randint(800, 6000), _REFILL, m, m.epoch)
        else:
            ladder[idx] = size - count
        self._delta(m, t, side, idx, -count)
        m.volume += count
        m.volume_24h += count
        m.oi = max(0, m.oi + (count if rng.random() < 0.6 else -count))
        m.notional += count * yes_price // 100
        m.last_price, m.last_size = yes_price, count
        trade_tr = m.tr_sub
        if trade_tr is not None:
            outcome = "yes" if taker_yes else "no"
            msg = {
                "trade_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "market_ticker": m.ticker,
                "yes_price_dollars": _PRICE_STR[yes_price],
                "no_price_dollars": _PRICE_STR[ONE - yes_price],
                "count_fp": _count(count),
                "taker_outcome_side": outcome,
                "taker_book_side": "bid" if taker_yes else "ask",
                "taker_side": outcome,
                "is_block_trade": False,
                "ts": (t - 5) // 1000,
                "ts_ms": t - 5,
            }
            self.out.ws(t, {"type": "trade", "sid": trade_tr.sid, "msg": msg})
        self._ticker(m, t)
