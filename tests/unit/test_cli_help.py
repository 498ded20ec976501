"""Every flag of every command has help that states its default; `--seed` says what it seeds."""

from __future__ import annotations

import argparse

from evoarena.cli import build_parser
from evoarena.commands._args import HelpFormatter


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_flag_has_help_showing_its_default() -> None:
    missing = []
    for name, p in _subparsers().items():
        formatter = HelpFormatter(prog=name)
        for action in p._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            if action.help == argparse.SUPPRESS:
                assert action.dest == "time_scale", f"{name} {action.option_strings} is hidden"
                continue
            text = formatter._get_help_string(action) or ""
            if not text.strip():
                missing.append(f"{name} {action.option_strings[-1]}: no help")
            elif not action.required and "default" not in text.lower():
                missing.append(f"{name} {action.option_strings[-1]}: no default in {text!r}")
    assert missing == []


def test_seed_says_what_it_seeds() -> None:
    subs = _subparsers()
    for name in ("synth", "demo"):
        seed = next(a for a in subs[name]._actions if a.dest == "seed")
        assert "synthetic day" in (seed.help or "")
    for name in ("replay", "run"):
        seed = next(a for a in subs[name]._actions if a.dest == "seed")
        assert "evolution" in (seed.help or "")
        assert "synthetic day" not in (seed.help or "") or "not of a synthetic" in (seed.help or "")


def test_help_renders_defaults() -> None:
    text = _subparsers()["demo"].format_help()
    assert "(default: 300)" in " ".join(text.split())
