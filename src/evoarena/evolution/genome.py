"""Genomes: 22 genes in [0, 1] and their decoding into a bot's trading parameters.

Every gene's range is in :data:`GENE_RANGES`, rendered as ``docs/genes.md``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from random import Random
from typing import Any

GENE_NAMES: tuple[str, ...] = (
    # market selection
    "min_volume_24h",
    "min_open_interest",
    "min_time_to_expiry_hrs",
    "max_time_to_expiry_hrs",
    "category_mask",
    # entry
    "signal_type",
    "price_threshold_low",
    "price_threshold_high",
    "momentum_lookback",
    "momentum_trigger",
    "mean_rev_zscore",
    "value_edge_min",
    "contrarian_threshold",
    # side
    "side_bias",
    "side_flip_prob",
    # sizing
    "bankroll_fraction",
    "max_concurrent_positions",
    "max_single_market_pct",
    # risk
    "daily_loss_limit_pct",
    "max_trades_per_day",
    "min_price",
    "max_price",
)
"""The genes, in a fixed order (crossover and numpy arrays rely on it)."""

SIGNAL_TYPES: tuple[str, ...] = (
    "price_level",
    "momentum",
    "mean_reversion",
    "value",
    "contrarian",
)

CATEGORY_MASK_BITS = 16
"""How many categories the mask gene can address (categories beyond this are always allowed)."""


def new_genome_id(rng: Random) -> str:
    """Eight lowercase hex characters drawn from ``rng``."""
    return f"{rng.getrandbits(32):08x}"


def genes_hash(genes: dict[str, float]) -> str:
    """See :attr:`Genome.gene_hash`; raises ``KeyError`` if a gene is missing."""
    canonical = ";".join(f"{name}={float(genes[name]).hex()}" for name in GENE_NAMES)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class BotParams:
    """A genome decoded into trading parameters (units in the names; fractions are 0-1)."""

    min_volume_24h: float
    min_open_interest: float
    min_time_to_expiry_hrs: float
    max_time_to_expiry_hrs: float
    category_mask: int
    signal_type: str
    price_threshold_low: float
    price_threshold_high: float
    momentum_lookback: int
    momentum_trigger: float
    mean_rev_zscore: float
    value_edge_min: float
    contrarian_threshold: float
    side_bias: float
    side_flip_prob: float
    bankroll_fraction: float
    max_concurrent_positions: int
    max_single_market_pct: float
    daily_loss_limit_pct: float
    max_trades_per_day: int
    min_price: float
    max_price: float

    def allows_category(self, category: str | None, categories: list[str]) -> bool:
        """True if the mask admits ``category`` (no bit set, or unknown category ⇒ allowed)."""
        if self.category_mask == 0 or category is None:
            return True
        try:
            idx = categories.index(category)
        except ValueError:
            return True
        if idx >= CATEGORY_MASK_BITS:
            return True
        return bool(self.category_mask >> idx & 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the seeds' ``bot.params``)."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class Genome:
    """An individual: id, lineage and genes (each in [0, 1], keyed by :data:`GENE_NAMES`)."""

    id: str
    generation: int
    parent_ids: list[str]
    genes: dict[str, float]

    @classmethod
    def random(cls, rng: Random, generation: int = 0) -> Genome:
        """A fresh genome with uniformly random genes."""
        gid = new_genome_id(rng)
        genes = {name: rng.random() for name in GENE_NAMES}
        return cls(id=gid, generation=generation, parent_ids=[], genes=genes)

    def clone(self, rng: Random, generation: int | None = None) -> Genome:
        """A copy with a new id whose parent is this genome."""
        return Genome(
            id=new_genome_id(rng),
            generation=self.generation if generation is None else generation,
            parent_ids=[self.id],
            genes=dict(self.genes),
        )

    @property
    def gene_hash(self) -> str:
        """Canonical content hash of the genes (16 hex characters).

        Two genomes with equal genes have equal hashes whatever their ids or lineage: the hash
        is the genome's identity for de-duplication, the id only names a lineage node. Genes are
        hashed in :data:`GENE_NAMES` order as exact ``float.hex`` strings.
        """
        return genes_hash(self.genes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as stored in generation files and the hall of fame."""
        return {
            "id": self.id,
            "generation": self.generation,
            "parent_ids": list(self.parent_ids),
            "genes": {name: self.genes[name] for name in GENE_NAMES},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genome:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming what is wrong."""
        try:
            gid = data["id"]
            generation = data["generation"]
            parents = data.get("parent_ids", [])
            genes_in = data["genes"]
        except (KeyError, TypeError) as e:
            msg = f"genome is missing field {e}"
            raise ValueError(msg) from e
        if not isinstance(gid, str) or len(gid) != 8:
            msg = f"genome id must be 8 hex characters, was {gid!r}"
            raise ValueError(msg)
        if not isinstance(generation, int):
            msg = f"genome {gid}: generation must be an integer, was {generation!r}"
            raise ValueError(msg)
        genes: dict[str, float] = {}
        for name in GENE_NAMES:
            if name not in genes_in:
                msg = f"genome {gid}: gene '{name}' is missing"
                raise ValueError(msg)
            value = genes_in[name]
            if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
                msg = f"genome {gid}: gene '{name}' must be a number in [0, 1], was {value!r}"
                raise ValueError(msg)
            genes[name] = float(value)
        return cls(id=gid, generation=generation, parent_ids=[str(p) for p in parents], genes=genes)

    def decode(self) -> BotParams:
        """Turn genes into trading parameters (every range: :data:`GENE_RANGES`)."""
        g = self.genes
        r = GENE_RANGES
        lo_exp, hi_exp = _ordered(
            r["min_time_to_expiry_hrs"].at(g), r["max_time_to_expiry_hrs"].at(g)
        )
        if hi_exp - lo_exp < 1.0:  # at least a one-hour window
            hi_exp = lo_exp + 1.0
        lo_price, hi_price = _ordered(r["min_price"].at(g), r["max_price"].at(g))
        lo_band, hi_band = _ordered(r["price_threshold_low"].at(g), r["price_threshold_high"].at(g))
        signal_idx = min(int(g["signal_type"] * len(SIGNAL_TYPES)), len(SIGNAL_TYPES) - 1)
        mask = round(g["category_mask"] * ((1 << CATEGORY_MASK_BITS) - 1))
        return BotParams(
            min_volume_24h=r["min_volume_24h"].at(g),
            min_open_interest=r["min_open_interest"].at(g),
            min_time_to_expiry_hrs=lo_exp,
            max_time_to_expiry_hrs=hi_exp,
            category_mask=mask,
            signal_type=SIGNAL_TYPES[signal_idx],
            price_threshold_low=lo_band,
            price_threshold_high=hi_band,
            momentum_lookback=max(1, math.floor(r["momentum_lookback"].at(g))),
            momentum_trigger=r["momentum_trigger"].at(g),
            mean_rev_zscore=r["mean_rev_zscore"].at(g),
            value_edge_min=r["value_edge_min"].at(g),
            contrarian_threshold=r["contrarian_threshold"].at(g),
            side_bias=r["side_bias"].at(g),
            side_flip_prob=r["side_flip_prob"].at(g),
            bankroll_fraction=r["bankroll_fraction"].at(g),
            max_concurrent_positions=max(1, math.floor(r["max_concurrent_positions"].at(g))),
            max_single_market_pct=r["max_single_market_pct"].at(g),
            daily_loss_limit_pct=r["daily_loss_limit_pct"].at(g),
            max_trades_per_day=max(1, math.floor(r["max_trades_per_day"].at(g))),
            min_price=lo_price,
            max_price=hi_price,
        )


def _ordered(a: float, b: float) -> tuple[float, float]:
    return min(a, b), max(a, b)


@dataclass(frozen=True, slots=True)
class GeneRange:
    """How gene ``name`` in [0, 1] decodes: ``lo + (hi − lo) · gene``, then as ``how`` says."""

    name: str
    lo: float
    hi: float
    unit: str
    how: str

    def at(self, genes: dict[str, float]) -> float:
        """The linear map of this gene's value in ``genes``."""
        return self.lo + (self.hi - self.lo) * genes[self.name]


def _lin(name: str, lo: float, hi: float, unit: str, how: str = "") -> tuple[str, GeneRange]:
    return name, GeneRange(name, lo, hi, unit, how)


_PRICE_ORDER = "ordered with its partner after decoding (the smaller becomes the lower bound)"

GENE_RANGES: dict[str, GeneRange] = dict(
    [
        _lin("min_volume_24h", 0.0, 5000.0, "contracts", "markets below are skipped"),
        _lin("min_open_interest", 0.0, 2000.0, "contracts", "markets below are skipped"),
        _lin("min_time_to_expiry_hrs", 0.0, 24.0, "hours", "ordered with max; window ≥ 1 h"),
        _lin("max_time_to_expiry_hrs", 0.0, 24.0, "hours", "ordered with min; window ≥ 1 h"),
        _lin(
            "category_mask",
            0.0,
            float((1 << CATEGORY_MASK_BITS) - 1),
            "bit mask",
            f"rounded; bit i admits the i-th category (first {CATEGORY_MASK_BITS}); 0 admits all",
        ),
        _lin(
            "signal_type",
            0.0,
            float(len(SIGNAL_TYPES)),
            "choice",
            "floor picks one of " + ", ".join(SIGNAL_TYPES) + " (1.0 picks the last)",
        ),
        _lin("price_threshold_low", 0.01, 0.99, "$", "price_level band; " + _PRICE_ORDER),
        _lin("price_threshold_high", 0.01, 0.99, "$", "price_level band; " + _PRICE_ORDER),
        _lin("momentum_lookback", 0.0, 60.0, "ticks", "floor, at least 1"),
        _lin("momentum_trigger", -0.10, 0.10, "fraction", "momentum fires on moves beyond ±t"),
        _lin("mean_rev_zscore", 0.5, 3.0, "std devs", "mean_reversion threshold"),
        _lin("value_edge_min", 0.01, 0.49, "$", "value buys asks below 0.50 − edge"),
        _lin("contrarian_threshold", 0.50, 0.99, "$", "an ask above it ⇒ buy the other side"),
        _lin("side_bias", 0.0, 1.0, "", "< 0.2 always NO, > 0.8 always YES, else the signal"),
        _lin("side_flip_prob", 0.0, 0.5, "probability", "chance to flip the chosen side"),
        _lin("bankroll_fraction", 0.005, 0.10, "of equity", "order budget"),
        _lin("max_concurrent_positions", 0.0, 20.0, "positions", "floor, at least 1"),
        _lin("max_single_market_pct", 0.01, 0.25, "of equity", "caps the order budget"),
        _lin("daily_loss_limit_pct", 0.02, 0.30, "of bankroll", "stops trading for the day"),
        _lin("max_trades_per_day", 0.0, 100.0, "trades", "floor, at least 1"),
        _lin("min_price", 0.01, 0.99, "$", "ask bounds of every order; " + _PRICE_ORDER),
        _lin("max_price", 0.01, 0.99, "$", "ask bounds of every order; " + _PRICE_ORDER),
    ]
)
"""Every gene's decoded range, in :data:`GENE_NAMES` order (the table in ``docs/genes.md``)."""


def _fmt(x: float) -> str:
    return f"{x:g}"


def gene_table_markdown() -> str:
    """``docs/genes.md``: the gene table rendered from :data:`GENE_RANGES`."""
    lines = [
        "# Genes",
        "",
        "Generated from `evoarena.evolution.genome.GENE_RANGES` (a test checks that this file",
        "matches; regenerate with `python -m evoarena.evolution.genome > docs/genes.md`).",
        "",
        "Each gene is a number in [0, 1]; it decodes linearly to `from + (to − from) · gene`,",
        "then as the last column says. Price bounds each cover the whole 0.01–0.99 range, so a",
        "band such as favourites between 0.65 and 0.90 is expressible.",
        "",
        "| gene | from | to | unit | then |",
        "|---|---|---|---|---|",
    ]
    for name in GENE_NAMES:
        r = GENE_RANGES[name]
        lines.append(f"| `{name}` | {_fmt(r.lo)} | {_fmt(r.hi)} | {r.unit} | {r.how} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - documentation generator
    import sys

    sys.stdout.write(gene_table_markdown())
