"""The ``p2porch`` command line: global options, the command table and the entry point (shell).

Owns argument parsing, output formatting (tables, or JSON with ``--json``) and exit codes: 0 success,
1 operation failed, 2 invalid usage (the message names the flag or key). It talks to a daemon only
through the control API (:class:`~p2porch.api.client.ApiClient`); the ``daemon`` and ``sandbox``
commands are the only ones that act locally. Each noun's commands live in their own module.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import select
import sys
from collections.abc import Sequence

from ..errors import ConfigError, P2POrchError
from ..paths import DEFAULT_SOCKET
from .util import EXIT_FAILED, EXIT_USAGE, Parser, error_line

EXIT_SIGPIPE = 141  # 128 + SIGPIPE: what a shell shows for a tool a closed pipe ended (Docker's CLI too)

#: Each command module (``add_<module>_commands``) and the top-level commands it registers, in help order.
#: A command line naming one of them imports that module only: ``p2porch daemon`` does not load the other
#: nouns' modules (~1 MB of a daemon's memory); the unit tests check this table against the modules.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "cluster": (
        "version",
        "status",
        "info",
        "init",
        "join",
        "leave",
        "recover",
        "events",
        "token",
        "cluster",
    ),
    "daemon": ("daemon",),
    "node": ("node",),
    "network": ("network",),
    "service": ("service",),
    "stack": ("stack",),
    "secret": ("secret", "config"),
    "sandbox": ("sandbox",),
    "access": ("access",),
    "context": ("context",),
    "metrics": ("metrics",),
}
#: ``docker swarm X`` -> what a p2porch user types instead (README "Cluster formation")
SWARM_COMMANDS = {
    "init": "p2porch init [--advertise-addr IP]",
    "join": "P2PORCH_TOKEN=TOKEN p2porch join PEER (the token from `p2porch token`)",
    "join-token": "p2porch token (one token for every node; `token --rotate` replaces it)",
    "leave": "p2porch leave [--force]",
    "ca": "p2porch cluster ca",
    "update": "p2porch cluster rotate-keys (keys); the daemon's config file (settings)",
}
#: Global options that take a value (argparse also accepts unambiguous prefixes of the long ones).
_VALUE_OPTIONS = ("--host", "--context", "--token-file", "--tls-ca")


def command_word(argv: Sequence[str]) -> str | None:
    """The command a command line names (the first word that is neither a global option nor its value);
    None when there is none or it is not a known command (then every command is registered)."""
    words = iter(argv)
    for word in words:
        if word == "-H" or (
            word.startswith("--")
            and "=" not in word
            and len(word) > 2
            and any(option.startswith(word) for option in _VALUE_OPTIONS)
        ):
            next(words, None)
        elif not word.startswith("-"):
            known = any(word in names for names in COMMAND_MODULES.values())
            return word if known else None
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; with ``command``, only the module that registers it is imported and added."""
    common = Parser(add_help=False)
    # one group, so each command's --help lists its own options first and these apart, as docker's
    # "Global Options"; they are taken before or after the command's words
    glob = common.add_argument_group("global options (any command)")
    glob.add_argument(
        "--host",
        "-H",
        default=argparse.SUPPRESS,
        help=f"daemon: unix:///path.sock or tcp://HOST:PORT (env P2PORCH_HOST, default unix://{DEFAULT_SOCKET})",
    )
    glob.add_argument(
        "--context", default=argparse.SUPPRESS, help="use this saved context (env P2PORCH_CONTEXT)"
    )
    glob.add_argument(
        "--token-file",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="access token for a tcp:// host (env P2PORCH_API_TOKEN); for init/join: the join token",
    )
    glob.add_argument(
        "--tls-ca", metavar="FILE", default=argparse.SUPPRESS, help="CA bundle to verify a tcp:// host with"
    )
    glob.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable JSON output"
    )
    glob.add_argument(
        "--stale",
        action="store_true",
        default=argparse.SUPPRESS,
        help="answer reads from this node's own copy of the cluster state at once (may lag the leader)",
    )

    parser = Parser(
        prog="p2porch",
        parents=[common],
        description="p2porch: a peer-to-peer, masterless container orchestrator",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module_name, names in COMMAND_MODULES.items():
        if command is None or command in names:
            module = importlib.import_module(f"{__package__}.{module_name}")
            getattr(module, f"add_{module_name}_commands")(sub, common)
    return parser


def os_error_text(exc: OSError) -> str:
    """One line for a local file error, naming the path; for a permission error, that root is needed
    (the daemon's data dir, socket and pid file are root's, created 0700/0600)."""
    where = f": {exc.filename}" if exc.filename else ""
    text = f"{exc.strerror or exc}{where}"
    if isinstance(exc, PermissionError):
        text += " (init, join and daemon run as root: the data dir and control socket are root's)"
    return text


def swarm_command(argv: Sequence[str]) -> int:
    """``p2porch swarm ...``: p2porch has no ``swarm`` noun (a node is in a cluster from init/join on); say
    which command does what ``docker swarm X`` does (exit 2)."""
    action = next((word for word in argv if not word.startswith("-")), "")
    lines = [f"  docker swarm {k}: {v}" for k, v in SWARM_COMMANDS.items() if action in ("", k)]
    if not lines:
        lines = [f"  docker swarm {k}: {v}" for k, v in SWARM_COMMANDS.items()]
    sys.stderr.write(
        f"p2porch: error: swarm: p2porch has no `swarm` command; instead of `docker swarm "
        f"{action or 'COMMAND'}`:\n" + "\n".join(lines) + "\n"
    )
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    word = command_word(argv)
    # before the parser (argparse's help formatter imports shutil, which imports bz2 and lzma) and the
    # command's imports: the modules they only bind are registered unexecuted
    from ..lazyimport import defer_cli_modules, defer_daemon_modules

    if word == "daemon":
        defer_daemon_modules()
    else:  # a command line: what its imports only bind (ssl, ...) runs on first use, if ever
        defer_cli_modules()
    if word is None and "swarm" in argv[:1]:  # Docker's `swarm` noun: no such command, say what to type
        return swarm_command(argv[1:])
    parser = build_parser(word)
    try:
        args = parser.parse_args(argv)
        format_error = getattr(getattr(args, "format", None), "error", None)  # goformat._Template's
        if format_error is not None:  # a list's --format naming no field a row has: exit 1, as Docker's
            raise format_error
        code = int(args.func(args))
        sys.stdout.flush()  # here, not at exit: a reader gone by the last write is handled below (141)
        return code
    except ConfigError as exc:
        print(f"p2porch: error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except P2POrchError as exc:
        with contextlib.suppress(OSError):  # what stdout holds goes first, also through one pipe (2>&1)
            sys.stdout.flush()
        print(error_line(exc), file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # a local file or directory the command needs (init/join/daemon's data dir, ...)
        if isinstance(exc, BrokenPipeError) and _reader_gone():
            # `p2porch ... | head`: the reader has what it wanted; end quietly, as SIGPIPE ends a Unix tool
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
            return EXIT_SIGPIPE
        print(f"p2porch: error: {os_error_text(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _reader_gone() -> bool:
    """Standard output is a pipe whose reader went away (a broken pipe of the API socket is not)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False


if __name__ == "__main__":
    sys.exit(main())
