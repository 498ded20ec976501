"""Arguments several commands share, defined once so they read and behave the same."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


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
