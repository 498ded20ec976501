"""Kalshi taker fee: formula, per-order rounding up to the cent, multipliers."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evoarena.engine.fees import CENT, FeeRate, fee_from_terms, fee_variance_term, taker_fee
from evoarena.feeds.events import PRICE_ONE


def usd(text: str) -> int:
    """Dollar string to micro-dollars."""
    return int(Decimal(text) * PRICE_ONE)


def oracle_fee(levels: list[tuple[int, int]], multiplier: Decimal = Decimal(1)) -> int:
    """Reference fee via Decimal dollars: ceil(M × 0.07 × Σ C·P·(1−P) × 100) cents."""
    total = Decimal(0)
    for price, contracts in levels:
        p = Decimal(price) / PRICE_ONE
        total += contracts * p * (1 - p)
    cents = multiplier * Decimal("0.07") * total * 100
    return math.ceil(cents) * CENT


@pytest.mark.parametrize(
    ("levels", "multiplier", "expected"),
    [
        ([("0.50", 1)], "1", "0.02"),
        ([("0.50", 100)], "1", "1.75"),
        ([("0.50", 10)], "1", "0.18"),
        ([("0.50", 4)], "1", "0.07"),  # exactly 7 cents: no extra cent
        ([("0.50", 1)], "0.5", "0.01"),
        ([("0.50", 100)], "0.5", "0.88"),
        ([("0.50", 100)], "1.5", "2.63"),
        ([("0.01", 1)], "1", "0.01"),
        ([("0.99", 1)], "1", "0.01"),
        ([("0.01", 1000)], "1", "0.70"),
        ([("0.99", 1000)], "1", "0.70"),
        ([("0.30", 7)], "1", "0.11"),
        ([("0.50", 100)], "0", "0.00"),
        ([("0", 5), ("1", 5)], "1", "0.00"),
    ],
)
def test_fee_table(levels: list[tuple[str, int]], multiplier: str, expected: str) -> None:
    """Each case matches the published formula rounded up to the cent."""
    lv = [(usd(p), c) for p, c in levels]
    assert taker_fee(lv, Decimal(multiplier)) == usd(expected)


def test_fee_rounds_once_per_order_not_per_level() -> None:
    """Three 1-contract fills at $0.10 cost 2 cents as one order, not 3 × 1 cent."""
    levels = [(usd("0.10"), 1), (usd("0.10"), 1), (usd("0.10"), 1)]
    assert taker_fee(levels) == usd("0.02")
    assert sum(taker_fee([lv]) for lv in levels) == usd("0.03")


def test_fee_sums_terms_across_price_levels() -> None:
    """Levels at different prices sum their C·P·(1−P) before rounding."""
    levels = [(usd("0.40"), 3), (usd("0.45"), 2), (usd("0.50"), 1)]
    # 0.07 × (0.72 + 0.495 + 0.25) = 0.10255 → $0.11
    assert taker_fee(levels) == usd("0.11")


def test_subpenny_prices_are_exact() -> None:
    """A $0.5005 price is charged from the exact product, not a float."""
    levels = [(usd("0.5005"), 3)]
    assert taker_fee(levels) == oracle_fee(levels)
    assert taker_fee(levels) == usd("0.06")


def test_fee_rate_matches_helpers() -> None:
    """FeeRate, fee_from_terms and taker_fee agree on the same order."""
    levels = [(usd("0.37"), 11), (usd("0.38"), 4)]
    terms = sum(fee_variance_term(p, c) for p, c in levels)
    rate = FeeRate.of(Decimal("0.25"))
    assert rate.fee(terms) == fee_from_terms(terms, Fraction(1, 4))
    assert rate.fee(terms) == taker_fee(levels, Decimal("0.25"))


def test_negative_multiplier_refused() -> None:
    """A negative multiplier is a data error, not a rebate."""
    with pytest.raises(ValueError, match="multiplier"):
        taker_fee([(usd("0.50"), 1)], Decimal("-1"))


@pytest.mark.parametrize("price", [-1, PRICE_ONE + 1])
def test_price_outside_unit_interval_refused(price: int) -> None:
    """Prices must lie in [0, $1]."""
    with pytest.raises(ValueError, match="price"):
        taker_fee([(price, 1)])


def test_negative_contracts_refused() -> None:
    """Contract counts cannot be negative."""
    with pytest.raises(ValueError, match="contracts"):
        taker_fee([(usd("0.50"), -1)])


@settings(max_examples=200, deadline=None)
@given(
    levels=st.lists(
        st.tuples(st.integers(0, PRICE_ONE), st.integers(0, 5_000)), min_size=0, max_size=6
    ),
    multiplier=st.decimals(min_value=0, max_value=3, places=4),
)
def test_fee_matches_decimal_oracle(levels: list[tuple[int, int]], multiplier: Decimal) -> None:
    """The integer implementation equals a Decimal computation of the formula."""
    assert taker_fee(levels, multiplier) == oracle_fee(levels, multiplier)


@settings(max_examples=100, deadline=None)
@given(
    price=st.integers(1, PRICE_ONE - 1),
    a=st.integers(0, 1_000),
    b=st.integers(0, 1_000),
)
def test_fee_is_monotone_in_contracts(price: int, a: int, b: int) -> None:
    """More contracts never cost less fee."""
    lo, hi = sorted((a, b))
    assert taker_fee([(price, lo)]) <= taker_fee([(price, hi)])
