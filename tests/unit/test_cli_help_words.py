"""What every ``p2porch ... --help`` tells a Swarm user: each option says what it does, names its value's
kind (``N``, ``CIDR``), not argparse's upper-cased field name (``HEALTH_RETRIES``), and a command's own
options come first, the global ones (``--host``, ``--context``...) in a group of their own, as docker's
``Global Options``."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from p2porch.cli import build_parser
from p2porch.cli.spec_flag_help import EDITS

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


#: fields whose upper-cased name already is the value's kind (``--name NAME``, ``--host HOST``)
BARE_DESTS = {"context", "description", "driver", "entrypoint", "host", "hostname", "image", "name"}


def derived_metavars(parsers: Iterator[tuple[str, argparse.ArgumentParser]]) -> list[str]:
    """``PATH --flag`` of each option that takes a value and would show its field's name as the value's:
    no metavar, no choices, a field not in :data:`BARE_DESTS` (``--nodes NODES``, ``--health-retries
    HEALTH_RETRIES``)."""
    return sorted(
        {
            f"{path} {a.option_strings[0]}"
            for path, p in parsers
            for a in shown(p)
            if a.nargs != 0 and a.metavar is None and a.choices is None and a.dest not in BARE_DESTS
        }
    )


def test_no_value_is_named_by_its_field() -> None:
    """A value's metavar is given (``N``, ``DURATION``) wherever argparse would print ``DEST_NAME``."""
    derived = derived_metavars(parsers())
    assert not derived, "metavars argparse derives from a field name: " + ", ".join(derived)


def test_a_bare_field_name_without_an_underscore_is_found() -> None:
    """``--nodes NODES`` is named by its field as much as ``--health-retries HEALTH_RETRIES``."""
    parser = argparse.ArgumentParser(prog="p2porch x")
    parser.add_argument("--nodes", type=int)
    parser.add_argument("--name")
    parser.add_argument("--replicas", type=int, metavar="N")
    assert derived_metavars(iter([("p2porch x", parser)])) == ["p2porch x --nodes"]


def test_global_options_come_after_the_commands_own() -> None:
    create = dict(parsers())["p2porch service create"].format_help().split("\noptions:")[1]
    assert create.index("--replicas N ") < create.index(GLOBAL) < create.index("--host HOST, -H HOST")
    top = build_parser().format_help()
    assert GLOBAL in top and "--stale" in top.split(GLOBAL)[1]


def test_update_says_a_list_flag_replaces_the_whole_list() -> None:
    """On ``service update`` a list flag (``--env``, ``--ulimit``) gives the whole list: its help says so,
    and names the ``-add``/``-rm`` pair that edits the list where there is one; create's help does not."""
    update, create = (dict(parsers())[f"p2porch service {verb}"] for verb in ("update", "create"))
    flags = update._option_string_actions
    lists = [a for a in shown(update) if isinstance(a, argparse._AppendAction) and a.dest not in EDITS]
    named = {f for a in lists for f in a.option_strings}
    assert {"--env", "--placement-pref", "--ulimit", "--security-opt", "--publish", "--sidecar"} <= named
    wrong = []
    for action in lists:
        pairs = [
            f"({f}-add/{f}-rm edit it)"
            for f in action.option_strings
            if {f"{f}-add", f"{f}-rm"} <= set(flags)
        ]
        if "replaces the whole list" not in str(action.help) or not all(p in str(action.help) for p in pairs):
            wrong.append(f"{action.option_strings[0]}: {action.help}")
    assert not wrong, "update list flags that do not say they replace the list:\n" + "\n".join(wrong)
    assert "(--env-add/--env-rm edit it)" in flags["--env"].help
    assert "replaces" not in create.format_help()
    assert "add a placement preference" not in update.format_help()
