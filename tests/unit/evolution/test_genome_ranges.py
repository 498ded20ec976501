"""Gene decode ranges: the documented table is the code's, and price bounds span 0.01-0.99."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from evoarena.evolution.genome import (
    GENE_NAMES,
    GENE_RANGES,
    SIGNAL_TYPES,
    Genome,
    gene_table_markdown,
)

DOC = Path(__file__).parents[3] / "docs" / "genes.md"

# decoded parameter of each gene where the gene maps straight onto it (no ordering partner)
_DIRECT = {
    "min_volume_24h": "min_volume_24h",
    "min_open_interest": "min_open_interest",
    "momentum_trigger": "momentum_trigger",
    "mean_rev_zscore": "mean_rev_zscore",
    "value_edge_min": "value_edge_min",
    "contrarian_threshold": "contrarian_threshold",
    "side_bias": "side_bias",
    "side_flip_prob": "side_flip_prob",
    "bankroll_fraction": "bankroll_fraction",
    "max_single_market_pct": "max_single_market_pct",
    "daily_loss_limit_pct": "daily_loss_limit_pct",
}
_FLOORED = {"momentum_lookback", "max_concurrent_positions", "max_trades_per_day"}
_PAIRS = {
    ("min_price", "max_price"): ("min_price", "max_price"),
    ("price_threshold_low", "price_threshold_high"): (
        "price_threshold_low",
        "price_threshold_high",
    ),
    ("min_time_to_expiry_hrs", "max_time_to_expiry_hrs"): (
        "min_time_to_expiry_hrs",
        "max_time_to_expiry_hrs",
    ),
}


def _genome(**genes: float) -> Genome:
    base = dict.fromkeys(GENE_NAMES, 0.5)
    base.update(genes)
    return Genome(id="00000000", generation=0, parent_ids=[], genes=base)


def test_docs_table_is_generated_from_the_code() -> None:
    """docs/genes.md is exactly the table rendered from GENE_RANGES (one table, one source)."""
    assert DOC.read_text("utf-8") == gene_table_markdown(), (
        "regenerate: python -m evoarena.evolution.genome > docs/genes.md"
    )
    assert list(GENE_RANGES) == list(GENE_NAMES)


@pytest.mark.parametrize("gene", sorted(_DIRECT))
def test_direct_genes_decode_to_the_documented_ends(gene: str) -> None:
    """Gene 0 and 1 decode to the table's from and to."""
    r = GENE_RANGES[gene]
    param = _DIRECT[gene]
    assert getattr(_genome(**{gene: 0.0}).decode(), param) == pytest.approx(r.lo)
    assert getattr(_genome(**{gene: 1.0}).decode(), param) == pytest.approx(r.hi)


@pytest.mark.parametrize("gene", sorted(_FLOORED))
def test_floored_genes_decode_to_the_documented_ends(gene: str) -> None:
    """Counts floor the linear map and never go below 1."""
    r = GENE_RANGES[gene]
    assert getattr(_genome(**{gene: 0.0}).decode(), gene) == max(1, math.floor(r.lo))
    assert getattr(_genome(**{gene: 1.0}).decode(), gene) == math.floor(r.hi)


@pytest.mark.parametrize(("pair", "params"), list(_PAIRS.items()))
def test_ordered_pairs_span_the_documented_range(
    pair: tuple[str, str], params: tuple[str, str]
) -> None:
    """Each bound of a pair reaches both ends of its range; decoding orders the pair."""
    a, b = pair
    lo, hi = params
    for ga, gb in ((0.0, 1.0), (1.0, 0.0)):
        p = _genome(**{a: ga, b: gb}).decode()
        assert getattr(p, lo) == pytest.approx(GENE_RANGES[a].lo)
        assert getattr(p, hi) == pytest.approx(GENE_RANGES[b].hi)
    p = _genome(**{a: 1.0, b: 1.0}).decode()
    assert getattr(p, lo) == pytest.approx(GENE_RANGES[a].hi)  # the lower bound reaches the top


def test_price_bounds_cover_0_01_to_0_99() -> None:
    """Every price bound can sit anywhere in 0.01-0.99 (both ends reachable by one gene)."""
    for name in ("min_price", "max_price", "price_threshold_low", "price_threshold_high"):
        assert (GENE_RANGES[name].lo, GENE_RANGES[name].hi) == (0.01, 0.99)


def test_a_favourite_band_is_expressible() -> None:
    """'Favourites between 0.65 and 0.90' decodes from genes (the issue's example)."""
    at = {v: (v - 0.01) / 0.98 for v in (0.65, 0.90)}
    p = _genome(
        signal_type=0.0,
        price_threshold_low=at[0.65],
        price_threshold_high=at[0.90],
        min_price=at[0.65],
        max_price=at[0.90],
    ).decode()
    assert p.signal_type == "price_level"
    assert (p.price_threshold_low, p.price_threshold_high) == pytest.approx((0.65, 0.90))
    assert (p.min_price, p.max_price) == pytest.approx((0.65, 0.90))


def test_signal_type_and_mask_choices() -> None:
    """signal_type picks each type over equal fifths; the mask is rounded to 16 bits."""
    kinds = [_genome(signal_type=(i + 0.5) / 5).decode().signal_type for i in range(5)]
    assert kinds == list(SIGNAL_TYPES)
    assert _genome(signal_type=1.0).decode().signal_type == SIGNAL_TYPES[-1]
    assert _genome(category_mask=1.0).decode().category_mask == 65535
    assert _genome(category_mask=0.0).decode().category_mask == 0
