"""Arguments several commands share, defined once so they read and behave the same."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import structlog

from evoarena.evolution.genome import Genome
from evoarena.evolution.genome_source import load_genomes
from evoarena.settings import Settings

log = structlog.get_logger(__name__)


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the help already states it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or not action.option_strings
            or default in (None, False, argparse.SUPPRESS)
            or action.required
        ):
            return text
        return f"{text} (default: %(default)s)"


def command_name() -> str:
    """How to call this CLI again from here: ``evoarena`` if that is on PATH, else a path."""
    argv0 = Path(sys.argv[0])
    found = shutil.which("evoarena")
    if argv0.name == "evoarena":
        if found is not None and Path(found).resolve() == argv0.resolve():
            return "evoarena"
        try:
            return str(argv0.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(argv0.resolve())
    return "evoarena" if found is not None else f"{sys.executable} -m evoarena"


def add_config_argument(p: argparse.ArgumentParser) -> None:
    """``--config FILE``: a TOML file layered over the package defaults."""
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML settings layered over the package defaults (default: none)",
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
        "gen_NNNN.json or a JSON file of genomes), padded with random ones; a state directory "
        "that already holds generations must have been started from the same seeds (the same "
        "command again resumes it) (default: none)",
    )


def seed_genomes(args: argparse.Namespace, settings: Settings) -> list[Genome] | None:
    """The genomes ``--seed-genomes`` names (``None`` without it); :class:`UserError` when the
    source is unusable. (The runner refuses a state directory started from other genomes.)"""
    source: Path | None = getattr(args, "seed_genomes", None)
    if source is None:
        return None
    genomes = load_genomes(source, settings.evolution.population_size)
    log.info("seed_genomes_loaded", source=str(source), genomes=len(genomes))
    return genomes


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1 (the message names the value)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a positive integer, was {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value
