"""Building the world from the seed (events, schedules, latent paths) and the latent price."""

from __future__ import annotations

import math
import random
import time
import uuid
from bisect import bisect_right

from evoarena.feeds.synth.catalogue import (
    _CATALOGUE,
    _CRYPTO,
    _ECON,
    _FIN,
    _LINEAR,
    _POLITICS,
    _SPORTS,
    _TAPERED,
    _TEAMS,
    _WEATHER,
    _Series,
)
from evoarena.feeds.synth.common import (
    _SKELETON_POINTS,
    CLOSE_MARGIN_MS,
    DISCOVERY_EVERY_MS,
    HOUR_MS,
    MINUTE_MS,
    ONE,
    SECOND_MS,
    WORLD_QUIET_MS,
    _date_code,
    _Heap,
    _hour_code,
    _human_date,
    _Out,
    _phi,
    _poisson,
    _rfc3339_micros,
    longshot_price,
)
from evoarena.feeds.synth.model import _Event, _Market, _Sub


class _World:
    """The world built from the seed: events, markets, schedules and latent paths."""

    def __init__(self, n_markets: int, hours: float, seed: int, start_ms: int, bias: float) -> None:
        self.t0 = start_ms
        self.t1 = start_ms + max(1, round(hours * HOUR_MS))
        self.bias = bias
        self.world = random.Random(f"evoarena-synth/{seed}/world")
        self.micro = random.Random(f"evoarena-synth/{seed}/micro")
        self.events: list[_Event] = []
        self.markets: list[_Market] = []
        self.discoveries = list(range(self.t0, self.t1, DISCOVERY_EVERY_MS))
        self._used: set[str] = set()
        self.out = _Out(None)
        self.heap = _Heap()
        self.subs: list[_Sub] = []
        self.lifecycle: _Sub | None = None
        self.next_sid = 1
        self.next_cmd = 1
        self.next_key = 1
        self.announced_events: set[str] = set()
        self.determined_yes = 0
        self.determined_no = 0
        while len(self.markets) < n_markets:
            self._add_event(n_markets - len(self.markets))
        self.by_ticker = sorted(self.markets, key=lambda m: m.ticker)
        self.index = {m.ticker: m for m in self.markets}

    # -- building the world (world rng only) --------------------------------------------------

    def _pick_series(self) -> _Series:
        rng = self.world
        profiles = (_CRYPTO, _FIN, _SPORTS, _WEATHER, _ECON, _POLITICS)
        profile = rng.choices(profiles, weights=[p.weight for p in profiles])[0]
        return rng.choice([s for s in _CATALOGUE if s.profile is profile])

    def _add_event(self, n_left: int) -> None:
        rng = self.world
        spec = self._pick_series()
        for attempt in range(40):
            if attempt % 4 == 3:
                spec = self._pick_series()
            close_ms, open_ms = self._schedule(spec)
            ticker, game = self._event_ticker(spec, close_ms)
            if ticker not in self._used:
                break
        else:
            ticker = f"{ticker}-{len(self.events)}"
        self._used.add(ticker)
        ev = _Event(spec, ticker)
        ev.open_ms, ev.close_ms, ev.orig_close_ms = open_ms, close_ms, close_ms
        self._lifecycle_schedule(ev)
        ev.strike_ms = ev.orig_close_ms
        n = 1 if spec.league else min(n_left, rng.randint(*spec.profile.markets))
        self._describe_event(ev, game)
        self._build_markets(ev, n, game)
        self._info_clock(ev)
        self._skeleton(ev)
        self.events.append(ev)

    def _schedule(self, spec: _Series) -> tuple[int, int]:
        """(close, open) of a new event."""
        rng, t0, t1 = self.world, self.t0, self.t1
        window = t1 - t0
        lo = t0 + min(10 * MINUTE_MS, window // 6)
        hi = t1 - CLOSE_MARGIN_MS
        inside = hi > lo and rng.random() < spec.profile.in_window
        if spec.hourly:
            slots = [t for t in range(t0 + HOUR_MS, hi + 1, HOUR_MS) if t >= lo]
            # Outside the window: the first hour mark at or after its end.
            close = rng.choice(slots) if inside and slots else t0 + -(-window // HOUR_MS) * HOUR_MS
            return close, close - HOUR_MS
        life = round(rng.uniform(*spec.profile.life_hours) * HOUR_MS)
        if inside:
            close = lo + round(rng.random() * (hi - lo))
        else:
            close = t1 + MINUTE_MS + round(rng.uniform(0.05, 1.0) * life)
        close -= close % (5 * MINUTE_MS if spec.league else MINUTE_MS)
        close = max(close, lo) if inside else max(close, t1 + MINUTE_MS)
        open_ms = close - life
        if open_ms > t0:
            # Markets open on the hour (relative to the window), where the recorder polls.
            last_poll = self.discoveries[-1]
            open_ms = min(t0 + (open_ms - t0) // HOUR_MS * HOUR_MS, last_poll)
        else:
            open_ms -= open_ms % MINUTE_MS
        return close, open_ms

    def _event_ticker(self, spec: _Series, close_ms: int) -> tuple[str, tuple[int, int] | None]:
        code = _date_code(close_ms)
        if spec.hourly:
            return f"{spec.ticker}-{code}{_hour_code(close_ms)}", None
        if spec.league:
            teams = _TEAMS[spec.league]
            a, h = self.world.sample(range(len(teams)), 2)
            return f"{spec.ticker}-{code}{teams[a][0]}{teams[h][0]}", (a, h)
        daily = f"{spec.ticker}-{code}"
        if daily not in self._used:
            return daily, None
        # A second event of the series that day is told apart by its close time (…H1530).
        t = time.gmtime(close_ms // 1000)
        return f"{daily}H{t.tm_hour:02d}{t.tm_min:02d}", None

    def _lifecycle_schedule(self, ev: _Event) -> None:
        """Postponement, creation, determination and settlement times."""
        rng, t0, t1 = self.world, self.t0, self.t1
        inside = ev.close_ms <= t1 - CLOSE_MARGIN_MS
        first_seen = max(ev.open_ms, t0 + WORLD_QUIET_MS)
        if inside and not ev.spec.hourly and rng.random() < 0.05:
            lo, hi = first_seen + 5 * MINUTE_MS, ev.close_ms - 5 * MINUTE_MS
            if hi > lo:
                ev.announce_ms = rng.randint(lo, hi)
                new = ev.close_ms + rng.randint(20, 120) * MINUTE_MS
                if new > t1 - CLOSE_MARGIN_MS:
                    new = max(new, t1 + 10 * MINUTE_MS)
                ev.close_ms = new
        if ev.open_ms > t0:
            created = ev.open_ms - rng.randint(5 * MINUTE_MS, 4 * HOUR_MS)
            if created >= t0 + WORLD_QUIET_MS:
                ev.created_ms = created
        ev.determined_ms = ev.close_ms + rng.randint(MINUTE_MS, 10 * MINUTE_MS)
        ev.settled_ms = ev.determined_ms + 1000 * rng.choice(ev.spec.profile.settle_secs)

    def _describe_event(self, ev: _Event, game: tuple[int, int] | None) -> None:
        spec = ev.spec
        when = _human_date(ev.orig_close_ms)
        if game is not None:
            teams = _TEAMS[spec.league]
            ev.title = f"{teams[game[0]][1]} at {teams[game[1]][1]} Winner?"
            ev.sub_title = f"{teams[game[0]][0]} at {teams[game[1]][0]} ({when})"
        elif spec.hourly:
            hour = _hour_code(ev.orig_close_ms)
            ev.title = f"{spec.title} on {when} at {hour}:00 UTC?"
            ev.sub_title = f"{when} {hour}:00 UTC"
        else:
            ev.title = f"{spec.title} on {when}?"
            ev.sub_title = f"On {when}"

    def _build_markets(self, ev: _Event, n: int, game: tuple[int, int] | None) -> None:
        rng, spec = self.world, ev.spec
        if game is not None:
            home = _TEAMS[spec.league][game[1]]
            m = self._new_market(ev, f"{ev.ticker}-{home[0]}")
            m.threshold = rng.gauss(0.0, 0.8)
            m.yes_sub_title = home[1]
            m.rules = f"If {home[1]} wins the {ev.sub_title} game, the market resolves to Yes."
            return
        center = round(spec.level * math.exp(rng.gauss(0.0, 0.01)) / spec.step) * spec.step
        offset = rng.gauss(0.0, 0.5)
        spacing = rng.uniform(0.45, 0.9)
        for j in range(n):
            strike = round(center + spec.step * (j - (n - 1) // 2), spec.decimals)
            text = f"{strike:.{spec.decimals}f}"
            m = self._new_market(ev, f"{ev.ticker}-T{text}")
            m.strike = strike
            m.threshold = offset + spacing * (j - (n - 1) / 2)
            shown = spec.unit.format(strike)
            m.yes_sub_title = f"Above {shown}"
            m.rules = (
                f"If {spec.subject} is above {shown} on {_human_date(ev.orig_close_ms)}, "
                "then the market resolves to Yes."
            )

    def _new_market(self, ev: _Event, ticker: str) -> _Market:
        rng, prof = self.world, ev.spec.profile
        m = _Market(ev, ticker)
        m.market_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        m.ticks = _TAPERED if rng.random() < prof.tapered else _LINEAR
        m.grid = m.ticks.grid
        m.fractional = rng.random() < prof.fractional
        m.can_close_early = rng.random() < 0.3
        m.spread = rng.choices((1, 2, 3, 4), weights=(0.35, 0.35, 0.2, 0.1))[0]
        m.depth = rng.randint(4, 10)
        m.liq = math.exp(rng.uniform(math.log(15), math.log(600)))
        m.book_rate = 1.0 / math.exp(rng.uniform(math.log(40), math.log(160)))
        m.trade_rate = 1.0 / math.exp(rng.uniform(math.log(120), math.log(1800)))
        m.settle_secs = rng.choice(prof.settle_secs)
        created = min(ev.created_ms or ev.open_ms - rng.randint(MINUTE_MS, 6 * HOUR_MS), ev.open_ms)
        m.created_time = _rfc3339_micros(created, rng.randrange(1_000_000))
        m.pause = self._pause_window(ev)
        ev.markets.append(m)
        self.markets.append(m)
        return m

    def _pause_window(self, ev: _Event) -> tuple[int, int] | None:
        """A short trading pause for about 1.5% of markets, away from the recorder's polls."""
        rng = self.world
        if rng.random() >= 0.015:
            return None
        lo = max(ev.open_ms, self.t0 + WORLD_QUIET_MS) + 10 * MINUTE_MS
        hi = min(ev.close_ms - 15 * MINUTE_MS, self.t1 - 5 * MINUTE_MS)
        if hi <= lo:
            return None
        start = rng.randint(lo, hi)
        end = start + rng.randint(3 * MINUTE_MS, 15 * MINUTE_MS)
        if end >= ev.close_ms - 5 * MINUTE_MS or any(
            start - 30 * SECOND_MS <= d <= end + 30 * SECOND_MS for d in self.discoveries
        ):
            return None
        return start, end

    def _info_clock(self, ev: _Event) -> None:
        """Knots of ``I(t)``: linear life + pre-close ramp + news bursts + post-close share."""
        rng, prof = self.world, ev.spec.profile
        o, c, r = ev.open_ms, ev.close_ms, ev.determined_ms
        ramp = min(round(prof.final_minutes * MINUTE_MS), c - o)
        span = max(o, self.t0 - HOUR_MS)
        n_news = min(8, _poisson(rng, prof.news_per_hour * (c - span) / HOUR_MS))
        news_total = min(0.35, 0.07 * n_news)
        parts: list[tuple[int, int, float]] = []
        raw = [rng.random() + 0.2 for _ in range(n_news)]
        for w in raw:
            d = rng.randint(MINUTE_MS, 5 * MINUTE_MS)
            s = rng.randint(span, max(span, c - d))
            parts.append((s, s + d, news_total * w / sum(raw)))
        ev.bursts = sorted((s, e) for s, e, _ in parts)
        lin = max(0.05, 1.0 - prof.final_weight - prof.resolve_weight - news_total)
        parts += [(o, c, lin), (c - ramp, c, prof.final_weight), (c, r, prof.resolve_weight)]
        total = sum(w for _, _, w in parts)
        knots = sorted({t for s, e, _ in parts for t in (s, e)})
        values = []
        for t in knots:
            v = sum(w * min(1.0, max(0.0, (t - s) / (e - s))) for s, e, w in parts if e > s)
            values.append(v / total)
        values[-1] = 1.0
        ev.knot_t, ev.knot_i = knots, values

    def _skeleton(self, ev: _Event) -> None:
        """The latent path at a few information times from the window's start; the outcomes."""
        rng = self.world
        u0 = ev.info(self.t0)
        x = rng.gauss(0.0, math.sqrt(u0)) if u0 > 0 else 0.0
        ev.u_cur, ev.x_cur = u0, x
        us, xs = [], []
        prev = u0
        for k in range(1, _SKELETON_POINTS + 1):
            u = u0 + (1.0 - u0) * k / _SKELETON_POINTS
            x += rng.gauss(0.0, math.sqrt(max(0.0, u - prev)))
            us.append(u)
            xs.append(x)
            prev = u
        us[-1] = 1.0
        ev.grid_u, ev.grid_x = us, xs
        for m in ev.markets:
            m.outcome = x > m.threshold

    # -- the latent price (micro rng) ---------------------------------------------------------

    def _fair(self, m: _Market, t: int) -> float:
        """The fair probability of YES at ``t`` (advances the event's latent path)."""
        ev = m.event
        u = ev.info(t)
        if u > ev.u_cur:
            gu, gx, k = ev.grid_u, ev.grid_x, ev.k
            while k < len(gu) and gu[k] <= u:
                ev.u_cur, ev.x_cur = gu[k], gx[k]
                k += 1
            ev.k = k
            if k < len(gu) and u > ev.u_cur:
                u_a, x_a, u_b, x_b = ev.u_cur, ev.x_cur, gu[k], gx[k]
                frac = (u - u_a) / (u_b - u_a)
                sd = math.sqrt((u - u_a) * (u_b - u) / (u_b - u_a))
                ev.u_cur, ev.x_cur = u, x_a + frac * (x_b - x_a) + sd * self.micro.gauss(0.0, 1.0)
        rest = 1.0 - ev.u_cur
        if rest <= 1e-12:
            return 1.0 if ev.x_cur > m.threshold else 0.0
        return _phi((ev.x_cur - m.threshold) / math.sqrt(rest))

    def _target(self, m: _Market, t: int, spread: int) -> tuple[int | None, int | None]:
        """(best YES bid index, best YES ask index) for the current quote; None = empty side."""
        q = longshot_price(self._fair(m, t), self.bias) * ONE
        grid = m.grid
        top = len(grid) - 1
        c = bisect_right(grid, q)
        if c == 0:
            pos = q / grid[0] - 1.0
        elif c > top:
            pos = top + (q - grid[top]) / (ONE - grid[top])
        else:
            pos = c - 1 + (q - grid[c - 1]) / (grid[c] - grid[c - 1])
        bid = min(math.floor(pos - spread / 2 + 0.5), top)
        ask = max(bid + spread, 0)
        return (bid if bid >= 0 else None), (ask if ask <= top else None)
