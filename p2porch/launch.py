"""How a p2porch daemon process is started: its interpreter flags and argv (pure).

Every place that starts a daemon (``p2porch init``/``join`` in the background, the sandbox, the
integration tests' fixtures) builds its command line here, so the interpreter flags are the same
everywhere. ``-X no_debug_ranges`` drops the column tables of every code object (the ``^^^^`` markers
of a traceback; line numbers stay): ~0.4 MB less RSS for the ~850 modules a daemon loads
(docs/performance.md, "Idle cost"). ``-P`` keeps the caller's working directory off ``sys.path``
(``python -m`` puts it first): a daemon started from a directory holding a ``p2porch`` checkout, or a
``json.py``/``trio.py`` of the user's, imports the installed package and libraries, never those. It owns
no I/O: callers run the argv.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["DAEMON_PYTHON_FLAGS", "daemon_argv"]

#: interpreter options of a daemon (before ``-m p2porch``)
DAEMON_PYTHON_FLAGS: tuple[str, ...] = ("-P", "-X", "no_debug_ranges")


def daemon_argv(
    daemon_args: Sequence[str], *, host: str | None = None, python: str | None = None
) -> list[str]:
    """``python -P -X no_debug_ranges -m p2porch [--host HOST] daemon DAEMON_ARGS...``."""
    head = [python or sys.executable, *DAEMON_PYTHON_FLAGS, "-m", "p2porch"]
    if host is not None:
        head += ["--host", host]
    return [*head, "daemon", *daemon_args]
