"""The ``p2porch`` command line: global options, the command table and the entry point (shell).

Owns argument parsing, output formatting (tables, or JSON with ``--json``) and exit codes: 0 success,
1 operation failed, 2 invalid usage (the message names the flag or key). It talks to a daemon only
through the control API (:class:`~p2porch.api.client.ApiClient`); the ``daemon`` and ``sandbox``
commands are the only ones that act locally. Each noun's commands live in their own module.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..config import DEFAULT_SOCKET
from ..errors import ConfigError, P2POrchError
from .access import add_access_commands
from .cluster import add_cluster_commands
from .context import add_context_commands
from .daemon import add_daemon_commands
from .metrics import add_metrics_commands
from .network import add_network_commands
from .node import add_node_commands
from .sandbox import add_sandbox_commands
from .secret import add_secret_commands
from .service import add_service_commands
from .stack import add_stack_commands
from .util import EXIT_FAILED, EXIT_USAGE, Parser


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument(
        "--host",
        "-H",
        default=argparse.SUPPRESS,
        help=f"daemon: unix:///path.sock or tcp://HOST:PORT (env P2PORCH_HOST, default unix://{DEFAULT_SOCKET})",
    )
    common.add_argument(
        "--context", default=argparse.SUPPRESS, help="use this saved context (env P2PORCH_CONTEXT)"
    )
    common.add_argument(
        "--token-file",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="access token for a tcp:// host (env P2PORCH_API_TOKEN); for init/join: the join token",
    )
    common.add_argument(
        "--tls-ca", metavar="FILE", default=argparse.SUPPRESS, help="CA bundle to verify a tcp:// host with"
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable JSON output"
    )

    parser = Parser(
        prog="p2porch",
        parents=[common],
        description="p2porch: a peer-to-peer, masterless container orchestrator",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    add_cluster_commands(sub, common)
    add_daemon_commands(sub, common)
    add_node_commands(sub, common)
    add_network_commands(sub, common)
    add_service_commands(sub, common)
    add_stack_commands(sub, common)
    add_secret_commands(sub, common)
    add_sandbox_commands(sub, common)
    add_access_commands(sub, common)
    add_context_commands(sub, common)
    add_metrics_commands(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"p2porch: error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except P2POrchError as exc:
        print(f"p2porch: error: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
