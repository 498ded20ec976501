"""Kalshi's fixed-point numbers and times → integer micro-dollars, centi-contracts and ms.

Dollar strings (``"0.5600"``), count strings (``"10.67"``) and legacy cents; memoized for the
hot path. A bad number raises :class:`ValueError`; callers turn it into :class:`MalformedFrame`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from evoarena.feeds.events import COUNT_ONE, PRICE_ONE
from evoarena.feeds.guard import MAX_COUNT, MAX_MICROS, safe_repr

MICROS_PER_CENT = 10_000
"""One cent in micro-dollars."""

_CACHE_LIMIT = 1 << 16


# -- numbers --------------------------------------------------------------------------------------


def _fixed_point(s: object, places: int, what: str) -> int:
    """Exact ``s * 10**places`` for a plain decimal string with at most ``places`` decimals."""
    if type(s) is not str:
        msg = f"invalid {what} {s!r}: expected a decimal string"
        raise ValueError(msg)
    body = s[1:] if s[:1] == "-" else s
    whole, dot, frac = body.partition(".")
    if (
        not whole
        or not (whole.isascii() and whole.isdigit())
        or len(frac) > places
        or (dot and not (frac and frac.isascii() and frac.isdigit()))
    ):
        msg = f"invalid {what} {s!r}: expected digits with at most {places} decimals"
        raise ValueError(msg)
    value: int = int(whole) * 10**places
    if frac:
        value += int(frac) * 10 ** (places - len(frac))
    return -value if body is not s else value


_DOLLARS: dict[str, int] = {}
_PRICES: dict[str, int] = {}
_COUNTS: dict[str, int] = {}


def parse_dollars(s: str) -> int:
    """Exact micro-dollars of a dollar string (``"0.5600"`` → 560_000).

    Accepts an optional leading ``-``, digits, and 0–6 decimals; anything else (exponents,
    spaces, 7+ decimals, non-strings) raises ``ValueError`` naming the value.
    """
    try:
        return _DOLLARS[s]
    except KeyError:
        pass
    except TypeError:  # unhashable: certainly not a string
        pass
    value = _fixed_point(s, 6, "dollar amount")
    if not -MAX_MICROS <= value <= MAX_MICROS:
        msg = f"dollar amount {safe_repr(s)} is out of range"
        raise ValueError(msg)
    if len(_DOLLARS) < _CACHE_LIMIT:
        _DOLLARS[s] = value
    return value


def parse_price(s: str) -> int:
    """A price: :func:`parse_dollars`, and it must lie in [0, 1] dollars."""
    try:
        return _PRICES[s]
    except KeyError:
        pass
    except TypeError:
        pass
    value = parse_dollars(s)
    if not 0 <= value <= PRICE_ONE:
        msg = f"price {s!r} is outside [0, 1] dollars"
        raise ValueError(msg)
    if len(_PRICES) < _CACHE_LIMIT:
        _PRICES[s] = value
    return value


def parse_count(s: str) -> int:
    """Exact centi-contracts of a fixed-point count string (``"10.67"`` → 1067).

    Accepts an optional leading ``-`` (deltas are signed) and 0–2 decimals; anything else raises
    ``ValueError`` naming the value.
    """
    try:
        return _COUNTS[s]
    except KeyError:
        pass
    except TypeError:
        pass
    value = _fixed_point(s, 2, "contract count")
    if not -MAX_COUNT <= value <= MAX_COUNT:
        msg = f"contract count {safe_repr(s)} is out of range"
        raise ValueError(msg)
    if len(_COUNTS) < _CACHE_LIMIT:
        _COUNTS[s] = value
    return value


def cents_to_micros(cents: int) -> int:
    """Legacy integer cents → micro-dollars (``56`` → 560_000)."""
    if type(cents) is not int:
        msg = f"invalid cents value {safe_repr(cents)}: expected an integer"
        raise ValueError(msg)
    if not -MAX_MICROS <= cents * MICROS_PER_CENT <= MAX_MICROS:
        msg = f"cents value {safe_repr(cents)} is out of range"
        raise ValueError(msg)
    return cents * MICROS_PER_CENT


def contracts_to_centi(n: int) -> int:
    """Legacy integer contract count → centi-contracts (``3`` → 300)."""
    if type(n) is not int:
        msg = f"invalid contract count {safe_repr(n)}: expected an integer"
        raise ValueError(msg)
    if not -MAX_COUNT <= n * COUNT_ONE <= MAX_COUNT:
        msg = f"contract count {safe_repr(n)} is out of range"
        raise ValueError(msg)
    return n * COUNT_ONE


def parse_decimal(v: object) -> Decimal:
    """A finite ``Decimal`` from a JSON number or numeric string (floats via their short repr)."""
    if isinstance(v, bool):
        msg = f"invalid number {v!r}"
        raise ValueError(msg)
    if isinstance(v, int):
        if abs(v) > MAX_MICROS:
            msg = f"number {safe_repr(v)} is out of range"
            raise ValueError(msg)
        return Decimal(v)
    if isinstance(v, float):
        v = repr(v)
    if isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            d = Decimal("NaN")
        if d.is_finite() and abs(d) <= MAX_MICROS:
            return d
    msg = f"invalid number {safe_repr(v)}"
    raise ValueError(msg)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def parse_rfc3339_ms(s: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 timestamp; a missing UTC offset is refused."""
    if type(s) is not str:
        msg = f"invalid timestamp {s!r}: expected an RFC 3339 string"
        raise ValueError(msg)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        msg = f"invalid timestamp {s!r}: not RFC 3339"
        raise ValueError(msg) from None
    if dt.tzinfo is None:
        msg = f"invalid timestamp {s!r}: no UTC offset"
        raise ValueError(msg)
    return (dt - _EPOCH) // _ONE_MS
