"""Arguments several commands share, defined once so they read and behave the same."""

from __future__ import annotations

import argparse
from pathlib import Path

import structlog

from evoarena.errors import UserError
from evoarena.evolution import persistence
from evoarena.evolution.genome import Genome
from evoarena.evolution.genome_source import load_genomes
from evoarena.settings import Settings

log = structlog.get_logger(__name__)


def add_config_argument(p: argparse.ArgumentParser) -> None:
    """``--config FILE``: a TOML file layered over the package defaults."""
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML settings layered over the package defaults",
    )


def add_state_dir_argument(p: argparse.ArgumentParser) -> None:
    """``--state-dir DIR``: overrides ``[state] dir``."""
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="state directory (default: [state] dir)",
    )


def add_seed_genomes_argument(p: argparse.ArgumentParser) -> None:
    """``--seed-genomes SOURCE``: generation 0 starts from these genomes."""
    p.add_argument(
        "--seed-genomes",
        type=Path,
        default=None,
        metavar="SOURCE",
        help="start generation 0 from these genomes (a state directory's hall of fame, a "
        "gen_NNNN.json or a JSON file of genomes), padded with random ones; only into a "
        "state directory without generations",
    )


def seed_genomes(args: argparse.Namespace, settings: Settings) -> list[Genome] | None:
    """The genomes ``--seed-genomes`` names (``None`` without it); :class:`UserError` when the
    state directory already holds generations or the source is unusable."""
    source: Path | None = getattr(args, "seed_genomes", None)
    if source is None:
        return None
    state_dir = Path(settings.state.dir)
    existing = persistence.list_generations(state_dir)
    if existing:
        msg = (
            f"--seed-genomes starts a fresh run, but {state_dir} already holds generations "
            f"(latest gen_{existing[-1]:04d}.json); use an empty --state-dir"
        )
        raise UserError(msg)
    genomes = load_genomes(source, settings.evolution.population_size)
    log.info("seed_genomes_loaded", source=str(source), genomes=len(genomes))
    return genomes
