"""Kalshi taker fees, computed exactly in integers (micro-dollars).

The general taker fee of one order is ``ceil_to_cent(M × 0.07 × Σ C_i × P_i × (1 − P_i))`` dollars,
summed over the levels the order filled (``C_i`` contracts at ``P_i`` dollars) and rounded up to a
whole cent once per order, not per level (``reference/kalshi-api.md`` §8). ``M`` is the fee
multiplier of the market's series or event (:meth:`MarketBook.fee_params`).

Fee types: ``quadratic``, ``quadratic_with_maker_fees`` and ``quadratic_with_combo_maker_fees``
differ only in what *makers* pay; a paper taker pays the quadratic taker fee on all of them. The
schedule of ``flat`` series (and of any type we do not know, such as
``margin_market_maker_program_fees``) is not in our reference, so they are charged the same
quadratic taker fee: a conservative stand-in that keeps paper P&L from being fee-free. A zero
multiplier (a fee waiver) charges nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from evoarena.feeds.events import PRICE_ONE

CENT = PRICE_ONE // 100
"""One cent in micro-dollars."""

TAKER_RATE = Fraction(7, 100)
"""The general taker fee coefficient (0.07)."""

QUADRATIC_FEE_TYPES = frozenset(
    {"quadratic", "quadratic_with_maker_fees", "quadratic_with_combo_maker_fees"}
)
"""Fee types whose taker fee is the quadratic formula by definition."""

# Σ C·p·(PRICE_ONE − p) is in micro-dollars²; one cent is CENT / PRICE_ONE dollars, so
# cents = M × 0.07 × S / PRICE_ONE² × 100.
_CENTS_DENOMINATOR = PRICE_ONE * PRICE_ONE // 100


def fee_variance_term(price: int, contracts: int) -> int:
    """``C × p × (PRICE_ONE − p)`` for ``contracts`` at ``price`` micro-dollars (exact)."""
    if not 0 <= price <= PRICE_ONE:
        msg = f"price must be within [0, {PRICE_ONE}] micro-dollars, was {price}"
        raise ValueError(msg)
    if contracts < 0:
        msg = f"contracts must not be negative, was {contracts}"
        raise ValueError(msg)
    return contracts * price * (PRICE_ONE - price)


def multiplier_fraction(multiplier: Decimal | Fraction | int) -> Fraction:
    """The fee multiplier as an exact fraction; negative multipliers are refused."""
    m = Fraction(multiplier)
    if m < 0:
        msg = f"fee multiplier must not be negative, was {multiplier}"
        raise ValueError(msg)
    return m


@dataclass(frozen=True, slots=True)
class FeeRate:
    """A fee multiplier folded into one exact integer ratio: ``cents = ceil(num × S / den)``.

    ``S`` is ``Σ C × p × (PRICE_ONE − p)`` (:func:`fee_variance_term`) of one order.
    """

    num: int
    den: int

    @classmethod
    def of(cls, multiplier: Decimal | Fraction | int = 1) -> FeeRate:
        """The taker rate for ``multiplier`` (non-negative)."""
        m = multiplier_fraction(multiplier)
        return cls(
            num=m.numerator * TAKER_RATE.numerator,
            den=m.denominator * TAKER_RATE.denominator * _CENTS_DENOMINATOR,
        )

    def fee(self, variance_sum: int) -> int:
        """The order fee in micro-dollars, rounded up to a whole cent."""
        return -(-self.num * variance_sum // self.den) * CENT


def fee_from_terms(variance_sum: int, multiplier: Decimal | Fraction | int = 1) -> int:
    """The order fee in micro-dollars for a precomputed ``Σ C × p × (PRICE_ONE − p)``."""
    return FeeRate.of(multiplier).fee(variance_sum)


def taker_fee(levels: Iterable[tuple[int, int]], multiplier: Decimal | Fraction | int = 1) -> int:
    """Taker fee in micro-dollars of one order filled at ``levels`` of (price µ$, whole contracts).

    Exact: ``ceil_to_cent(M × 0.07 × Σ C_i × P_i × (1 − P_i))``, rounded once for the order.
    """
    total = sum(fee_variance_term(price, contracts) for price, contracts in levels)
    return FeeRate.of(multiplier).fee(total)
