"""The ``p2porch`` command line (shell): one module per noun, talking to a daemon through the control API.

main (global options, the command table, exit codes; entry point :func:`main`, the console script and
``python -m p2porch``), cluster (init, join, leave, recover, token, status, events, version), daemon
(``p2porch daemon`` and its configuration), node (nodes, network), service, stack, sandbox, util
(output, parsing helpers). Only ``daemon``, foreground init/join and ``sandbox`` act locally.
"""

from .daemon import load_daemon_config
from .main import build_parser, main

__all__ = ["build_parser", "load_daemon_config", "main"]
