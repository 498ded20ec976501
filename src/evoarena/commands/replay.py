"""``evoarena replay`` (under construction)."""

from __future__ import annotations

import argparse

from evoarena.errors import UserError
from evoarena.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``replay`` sub-command."""
    p = sub.add_parser("replay", help="(under construction)")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, settings: Settings) -> int:
    raise UserError("'replay' is not built yet")
