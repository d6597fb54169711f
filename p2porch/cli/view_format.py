"""``--format TEMPLATE`` of the commands printing one view per line (``version``, ``info``/``status``,
``events``): the flag, its check while the command line is parsed, and the lines it prints.

Declares the flag without the Go template engine: goformat.py (and with it the model) is imported only
when a ``--format`` is given, so ``init``, ``join`` and the other cluster commands, registered in the
same module, start without it (issue 19, "The thirty-second round: the `p2porch join` CLI's start").
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .util import UsageError, wants_json

if TYPE_CHECKING:
    from .goformat import Paths


def add_view_format(p: argparse.ArgumentParser, short: bool = True) -> argparse.ArgumentParser:
    """``--format TEMPLATE`` (and ``-f`` when ``short``; ``events``' ``-f`` is ``--filter``, as Docker's) of
    a command printing one view per line: ``version``, ``info``, ``events``; a template that does not
    parse is refused while the command line is parsed."""
    flags = ("--format", "-f") if short else ("--format",)
    p.add_argument(
        *flags, type=_parsable, metavar="TEMPLATE", help="Go template over the JSON view ('json': one line)"
    )
    return p


def _parsable(text: str) -> str:
    from .goformat import parse_error

    error = parse_error(text)
    if error:
        raise argparse.ArgumentTypeError(f"template parsing error: {error}")
    return text


def view_lines(args: argparse.Namespace, paths: Paths | None = None) -> Callable[[Any], str] | None:
    """How ``--format`` prints one view (``json``: ``{{json .}}``, one line, as Docker's); None without
    it. Refused beside ``--json``."""
    template = getattr(args, "format", None)
    if template is None:
        return None
    if wants_json(args):
        raise UsageError("--format: not with --json", field="--format")
    from .goformat import execute, parsed_template

    parsed = parsed_template("{{json .}}" if template.strip() == "json" else template)
    return lambda data: execute(parsed, data, paths)
