"""Every ``--help`` a user reads: metavars whose brackets pair up, and no empty ``[]`` left by editing one."""

import argparse

from p2porch.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, path: str = "p2porch"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def test_every_help_has_balanced_metavars_and_no_empty_brackets():
    bad = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            metavar = action.metavar if isinstance(action.metavar, str) else ""
            if "[]" in metavar or not _balanced(metavar):
                bad.append(f"{path} {action.option_strings}: {metavar}")
        if "[]" in parser.format_help():
            bad.append(f"{path}: '[]' in --help")
    assert bad == []


def test_task_group_and_mount_help_name_what_readme_documents():
    create = dict(_parsers(build_parser()))["p2porch service create"].format_help()
    assert "type=bind|volume|tmpfs" in create  # README: --mount type=bind|volume|tmpfs
    assert "[,reserve-memory=M]" in create  # README: --sidecar ...,reserve-memory=M
