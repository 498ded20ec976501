"""Typed field access on Kalshi JSON objects; every failure is a :class:`MalformedFrame`
naming the frame type and the field. Also the shared price-ladder and settlement readers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from evoarena.feeds.events import PRICE_ONE, Level, MarketStatus, Side
from evoarena.feeds.kalshi.numbers import (
    MICROS_PER_CENT,
    contracts_to_centi,
    parse_count,
    parse_decimal,
    parse_price,
    parse_rfc3339_ms,
)

JsonObj = dict[str, Any]


class MalformedFrame(ValueError):
    """A frame (or REST body) that cannot be parsed; names the frame type and the field."""

    def __init__(self, frame_type: str, field: str, reason: str) -> None:
        self.frame_type = frame_type
        self.field = field
        self.reason = reason
        super().__init__(f"{frame_type}: field {field!r}: {reason}")


# -- field access ---------------------------------------------------------------------------------


def _bad(ft: str, key: str, e: ValueError) -> MalformedFrame:
    return MalformedFrame(ft, key, str(e))


def _obj(v: object, ft: str, key: str) -> JsonObj:
    if type(v) is not dict:
        raise MalformedFrame(ft, key, f"expected an object, got {type(v).__name__}")
    return v


def _req_str(d: JsonObj, key: str, ft: str) -> str:
    v = d.get(key)
    if v is None:
        raise MalformedFrame(ft, key, "missing")
    if type(v) is not str or not v:
        raise MalformedFrame(ft, key, f"expected a non-empty string, got {v!r}")
    return v


def _opt_str(d: JsonObj, key: str, ft: str) -> str | None:
    v = d.get(key)
    if v is None or v == "":
        return None
    if type(v) is not str:
        raise MalformedFrame(ft, key, f"expected a string, got {v!r}")
    return v


def _opt_int(d: JsonObj, key: str, ft: str) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if type(v) is not int:
        raise MalformedFrame(ft, key, f"expected an integer, got {v!r}")
    return v


def _opt_price(d: JsonObj, key: str, cents_key: str | None, ft: str) -> int | None:
    """A dollar-string price at ``key``, else legacy cents at ``cents_key``, else ``None``."""
    v = d.get(key)
    if v is not None and v != "":
        try:
            return parse_price(v)
        except ValueError as e:
            raise _bad(ft, key, e) from None
    if cents_key is None:
        return None
    c = d.get(cents_key)
    return None if c is None else _cents_price(c, ft, cents_key)


def _cents_price(c: object, ft: str, key: str) -> int:
    """A legacy integer-cents price in [0, 100] → micro-dollars."""
    if type(c) is not int:
        raise MalformedFrame(ft, key, f"expected integer cents, got {c!r}")
    if not 0 <= c <= 100:
        raise MalformedFrame(ft, key, f"price {c!r} cents is outside [0, 100]")
    return c * MICROS_PER_CENT


def _opt_count(d: JsonObj, key: str, int_key: str | None, ft: str) -> int | None:
    """A fixed-point count at ``key``, else a legacy integer count at ``int_key``, else ``None``."""
    v = d.get(key)
    if v is not None and v != "":
        try:
            return parse_count(v)
        except ValueError as e:
            raise _bad(ft, key, e) from None
    if int_key is None:
        return None
    n = d.get(int_key)
    if n is None:
        return None
    try:
        return contracts_to_centi(n)
    except ValueError as e:
        raise _bad(ft, int_key, e) from None


def _opt_decimal(d: JsonObj, key: str, ft: str) -> Decimal | None:
    v = d.get(key)
    if v is None or v == "":
        return None
    try:
        return parse_decimal(v)
    except ValueError as e:
        raise _bad(ft, key, e) from None


def _opt_time(d: JsonObj, key: str, ft: str) -> int | None:
    v = d.get(key)
    if v is None or v == "":
        return None
    try:
        return parse_rfc3339_ms(v)
    except ValueError as e:
        raise _bad(ft, key, e) from None


def _opt_unix_secs_ms(d: JsonObj, key: str, ft: str) -> int | None:
    secs = _opt_int(d, key, ft)
    return None if secs is None else secs * 1000


_SIDES: dict[str, Side] = {"yes": Side.YES, "no": Side.NO}
_STATUSES: dict[str, MarketStatus] = {
    **{s.value: s for s in MarketStatus},
    # Legacy response vocabulary (today only query-filter values).
    "unopened": MarketStatus.INITIALIZED,
    "open": MarketStatus.ACTIVE,
    "paused": MarketStatus.INACTIVE,
    "settled": MarketStatus.FINALIZED,
}


def _lookup(table: dict[str, Side], v: object) -> Side | None:
    """``table[v]`` for a known string, else ``None`` (never raises, whatever ``v`` is)."""
    return table.get(v) if type(v) is str else None


def _side(v: object, ft: str, key: str) -> Side:
    side = _lookup(_SIDES, v)
    if side is None:
        raise MalformedFrame(ft, key, f"expected 'yes' or 'no', got {v!r}")
    return side


# -- order books ----------------------------------------------------------------------------------


def _level(item: object, ft: str, key: str, cents: bool) -> Level:
    if type(item) is not list or len(item) != 2:
        raise MalformedFrame(ft, key, f"expected [price, size] pairs, got {item!r}")
    p, n = item
    price = _cents_price(p, ft, key) if cents else 0
    try:
        if not cents:
            price = parse_price(p)
        size = contracts_to_centi(n) if type(n) is int else parse_count(n)
    except ValueError as e:
        raise _bad(ft, key, e) from None
    if size < 0:
        raise MalformedFrame(ft, key, f"negative size {n!r} at price {p!r}")
    return price, size


def _levels(raw: object, ft: str, key: str, cents: bool) -> tuple[Level, ...]:
    """A bid ladder, best price first; zero sizes dropped; a repeated price keeps the last."""
    if type(raw) is not list:
        raise MalformedFrame(ft, key, f"expected a list of levels, got {type(raw).__name__}")
    ladder: dict[int, int] = {}
    for item in raw:
        price, size = _level(item, ft, key, cents)
        ladder[price] = size
    return tuple(sorted(((p, s) for p, s in ladder.items() if s > 0), reverse=True))


def _ladder(d: JsonObj, ft: str, keys: tuple[str, ...], cents_key: str) -> tuple[Level, ...]:
    """The first present of the dollar-priced ``keys``, else the legacy cents ladder."""
    for key in keys:
        raw = d.get(key)
        if raw is not None:
            return _levels(raw, ft, key, cents=False)
    raw = d.get(cents_key)
    if raw is not None:
        return _levels(raw, ft, cents_key, cents=True)
    return ()


_WS_YES_KEYS = ("yes_dollars_fp", "yes_dollars")
_WS_NO_KEYS = ("no_dollars_fp", "no_dollars")


def _settlement_value(d: JsonObj, key: str, cents_key: str, result: Side | None, ft: str) -> int:
    """YES payout: a dollar string at ``key`` (or legacy integer cents there or at ``cents_key``),
    else 1/0 from a yes/no ``result``."""
    raw = d.get(key)
    if type(raw) is int:
        value: int | None = _cents_price(raw, ft, key)
    else:
        value = _opt_price(d, key, cents_key, ft)
    if value is not None:
        return value
    if result is Side.YES:
        return PRICE_ONE
    if result is Side.NO:
        return 0
    raise MalformedFrame(ft, key, "missing, and the result is neither 'yes' nor 'no'")


def _str_tuple(v: object, ft: str, key: str) -> tuple[str, ...]:
    if type(v) is not list or not all(type(t) is str for t in v):
        raise MalformedFrame(ft, key, "expected a list of strings")
    return tuple(v)
