"""The ``evoarena`` command line: parse arguments, load settings, configure logging, dispatch.

Each sub-command lives in :mod:`evoarena.commands` and exposes ``register(subparsers)``, which
adds its parser and sets ``handler(args, settings) -> exit code``. User mistakes
(:class:`~evoarena.errors.UserError`) print one clear message and exit 2; nothing a user can
cause ends in a bare traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from evoarena import __version__
from evoarena.commands import compile as compile_cmd
from evoarena.commands import (
    demo,
    evaluate,
    history,
    hof,
    inspect,
    islands,
    replay,
    report_page,
    run,
    status,
    synth,
)
from evoarena.commands._args import HelpFormatter
from evoarena.errors import EvoarenaError, UserError
from evoarena.logs import configure_logging
from evoarena.settings import Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]

_COMMANDS = (
    run,
    replay,
    islands,
    compile_cmd,
    evaluate,
    synth,
    inspect,
    hof,
    history,
    report_page,
    status,
    demo,
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every sub-command)."""
    parser = argparse.ArgumentParser(
        prog="evoarena",
        description="Evolve paper-trading bots on Kalshi prediction markets.",
    )
    parser.add_argument("--version", action="version", version=f"evoarena {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS:
        module.register(sub)
    for sub_parser in sub.choices.values():
        sub_parser.formatter_class = HelpFormatter
    return parser


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Settings that command-line flags override (``--state-dir``, ``--seed``)."""
    out: dict[str, Any] = {}
    if getattr(args, "state_dir", None) is not None:
        out["state"] = {"dir": str(args.state_dir)}
    if getattr(args, "seed", None) is not None and getattr(args, "seed_is_evolution", True):
        out["evolution"] = {"seed": args.seed}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        settings = load_settings(getattr(args, "config", None), settings_overrides(args))
        configure_logging(settings.log.level, settings.log.format)
        return handler(args, settings)
    except UserError as e:
        print(f"evoarena: error: {e}", file=sys.stderr)
        return e.exit_code
    except EvoarenaError as e:
        print(f"evoarena: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("evoarena: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
