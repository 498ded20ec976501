"""Genomes: 22 genes in [0, 1] and their decoding into a bot's trading parameters."""

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
        """Turn genes into trading parameters (ranges as documented per gene)."""
        g = self.genes
        lo_exp = g["min_time_to_expiry_hrs"] * 24.0
        hi_exp = g["max_time_to_expiry_hrs"] * 24.0
        lo_exp, hi_exp = min(lo_exp, hi_exp), max(lo_exp, hi_exp)
        if hi_exp - lo_exp < 1.0:  # at least a one-hour window
            hi_exp = lo_exp + 1.0
        lo_price = 0.01 + 0.49 * g["min_price"]
        hi_price = 0.50 + 0.49 * g["max_price"]
        lo_price, hi_price = min(lo_price, hi_price), max(lo_price, hi_price)
        signal_idx = min(int(g["signal_type"] * len(SIGNAL_TYPES)), len(SIGNAL_TYPES) - 1)
        mask = round(g["category_mask"] * ((1 << CATEGORY_MASK_BITS) - 1))
        return BotParams(
            min_volume_24h=g["min_volume_24h"] * 5000.0,
            min_open_interest=g["min_open_interest"] * 2000.0,
            min_time_to_expiry_hrs=lo_exp,
            max_time_to_expiry_hrs=hi_exp,
            category_mask=mask,
            signal_type=SIGNAL_TYPES[signal_idx],
            price_threshold_low=0.01 + 0.49 * g["price_threshold_low"],
            price_threshold_high=0.50 + 0.49 * g["price_threshold_high"],
            momentum_lookback=max(1, math.floor(60 * g["momentum_lookback"])),
            momentum_trigger=-0.10 + 0.20 * g["momentum_trigger"],
            mean_rev_zscore=0.5 + 2.5 * g["mean_rev_zscore"],
            value_edge_min=0.01 + 0.29 * g["value_edge_min"],
            contrarian_threshold=0.60 + 0.35 * g["contrarian_threshold"],
            side_bias=g["side_bias"],
            side_flip_prob=0.5 * g["side_flip_prob"],
            bankroll_fraction=0.005 + 0.095 * g["bankroll_fraction"],
            max_concurrent_positions=max(1, math.floor(20 * g["max_concurrent_positions"])),
            max_single_market_pct=0.01 + 0.24 * g["max_single_market_pct"],
            daily_loss_limit_pct=0.02 + 0.28 * g["daily_loss_limit_pct"],
            max_trades_per_day=max(1, math.floor(100 * g["max_trades_per_day"])),
            min_price=lo_price,
            max_price=hi_price,
        )
