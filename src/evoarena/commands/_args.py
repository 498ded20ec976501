"""Arguments several commands share, defined once so they read and behave the same."""

from __future__ import annotations

import argparse
from pathlib import Path


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
