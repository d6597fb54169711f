"""What every ``p2porch ... --help`` tells a Swarm user: each option says what it does, names its value's
kind (``N``, ``CIDR``), not argparse's upper-cased field name (``HEALTH_RETRIES``), and a command's own
options come first, the global ones (``--host``, ``--context``...) in a group of their own, as docker's
``Global Options``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from p2porch.cli import build_parser

GLOBAL = "global options (any command)"


def parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    def walk(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
        yield path, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk(child, f"{path} {name}")

    yield from walk(build_parser(), "p2porch")


def shown(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if action.option_strings and action.help is not argparse.SUPPRESS:
            yield action


def test_every_option_says_what_it_does() -> None:
    bare = sorted({f"{path} {a.option_strings[0]}" for path, p in parsers() for a in shown(p) if not a.help})
    assert not bare, "options without help: " + ", ".join(bare)


def test_no_value_is_named_by_its_field() -> None:
    """A value's metavar is given (``N``, ``DURATION``) wherever argparse would print ``DEST_NAME``."""
    derived = sorted(
        {
            f"{path} {a.option_strings[0]}"
            for path, p in parsers()
            for a in shown(p)
            if a.nargs != 0 and a.metavar is None and a.choices is None and "_" in a.dest
        }
    )
    assert not derived, "metavars argparse derives from a field name: " + ", ".join(derived)


def test_global_options_come_after_the_commands_own() -> None:
    create = dict(parsers())["p2porch service create"].format_help().split("\noptions:")[1]
    assert create.index("--replicas N ") < create.index(GLOBAL) < create.index("--host HOST, -H HOST")
    top = build_parser().format_help()
    assert GLOBAL in top and "--stale" in top.split(GLOBAL)[1]
