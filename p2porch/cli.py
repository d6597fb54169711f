"""The ``p2porch`` command line (shell).

Owns argument parsing, output formatting (tables, or JSON with ``--json``) and exit codes: 0 success,
1 operation failed, 2 invalid usage (the message names the flag or key). It talks to a daemon only
through the control API (:class:`~p2porch.api.client.ApiClient`); the ``daemon`` and ``sandbox``
commands are the only ones that act locally.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .config import DEFAULT_SOCKET, load_config
from .errors import ConfigError, P2POrchError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_CONFIG_FILE = "/etc/p2porch/p2porch.toml"


class UsageError(ConfigError):
    """Invalid command-line usage (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors with exit code 2 and the offending flag in the message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--host",
        "-H",
        default=argparse.SUPPRESS,
        help=f"daemon socket, unix:///path (env P2PORCH_HOST, default unix://{DEFAULT_SOCKET})",
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable JSON output"
    )

    parser = _Parser(
        prog="p2porch",
        parents=[common],
        description="p2porch: a peer-to-peer, masterless container orchestrator",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(
        name: str, help_text: str, fn: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=fn)
        return p

    command("version", "Show the client and daemon versions", cmd_version)
    command("status", "Show node and cluster status", cmd_status)

    daemon = command("daemon", "Run the p2porch daemon in the foreground", cmd_daemon)
    _add_node_options(daemon)
    daemon.add_argument(
        "--config", metavar="FILE", help=f"configuration file (default {DEFAULT_CONFIG_FILE} when it exists)"
    )
    daemon.add_argument("--log-format", choices=["human", "json"], help="log line format (default human)")
    daemon.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    daemon.add_argument("--pid-file", metavar="FILE", help="write the daemon's pid here (removed on exit)")

    sandbox = sub.add_parser(
        "sandbox",
        parents=[common],
        help="Run several p2porch hosts on this machine",
        description="Network namespaces with their own dockerd and p2porch daemon",
    )
    sandbox.add_argument("--name", default="p2s", help="sandbox name, prefix of its namespaces (default p2s)")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="ACTION", parser_class=_Parser)
    sandbox_sub.required = True
    up = sandbox_sub.add_parser("up", parents=[common], help="Create or complete the sandbox")
    up.add_argument("--nodes", type=_positive_int, default=3, help="number of hosts (default 3)")
    up.add_argument("--subnet", help="underlay subnet of the sandbox bridge (default 10.77.0.0/24)")
    up.add_argument("--no-daemons", action="store_true", help="do not start a p2porch daemon in each host")
    up.set_defaults(func=cmd_sandbox_up)
    sandbox_sub.add_parser("ls", parents=[common], help="List the sandbox's hosts").set_defaults(
        func=cmd_sandbox_ls
    )
    ex = sandbox_sub.add_parser(
        "exec", parents=[common], help="Run a command inside a host: exec NODE -- CMD..."
    )
    ex.add_argument("node", help="host name, e.g. n1")
    ex.add_argument("argv", nargs=argparse.REMAINDER, help="command (after --)")
    ex.set_defaults(func=cmd_sandbox_exec)
    sandbox_sub.add_parser(
        "down", parents=[common], help="Remove everything the sandbox created"
    ).set_defaults(func=cmd_sandbox_down)
    return parser


def _add_node_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--advertise-addr", metavar="IP", help="address other nodes reach this one at")
    p.add_argument("--data-dir", metavar="DIR", help="state directory (default /var/lib/p2porch)")
    p.add_argument("--docker-host", metavar="URL", help="Docker engine of this node (default: DOCKER_HOST)")
    p.add_argument("--name", metavar="NAME", help="node name (default: host name)")
    p.add_argument("--label", metavar="K=V", action="append", default=[], help="node label (repeatable)")


# ----------------------------------------------------------------------------- helpers
def _host(args: argparse.Namespace) -> str:
    return getattr(args, "host", None) or os.environ.get("P2PORCH_HOST") or f"unix://{DEFAULT_SOCKET}"


def _client(args: argparse.Namespace) -> Any:
    from .api.client import ApiClient

    return ApiClient(_host(args))


def _wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def emit(args: argparse.Namespace, data: Any, render: Callable[[Any], str]) -> None:
    """Print ``data`` as JSON with --json, otherwise through ``render``."""
    if _wants_json(args):
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        text = render(data)
        if text:
            print(text)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def node_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The node.* config keys given as CLI flags."""
    from .config import parse_labels

    labels = parse_labels(args.label, field="--label") if getattr(args, "label", None) else None
    return {
        "node.advertise_addr": getattr(args, "advertise_addr", None),
        "node.data_dir": getattr(args, "data_dir", None),
        "node.docker_host": getattr(args, "docker_host", None),
        "node.name": getattr(args, "name", None),
        "node.labels": labels,
    }


# ----------------------------------------------------------------------------- commands
def cmd_version(args: argparse.Namespace) -> int:
    data: dict[str, Any] = {"client": {"version": __version__}}
    try:
        client = _client(args)
        data["daemon"] = client.get("/version")
    except P2POrchError as exc:
        data["daemon"] = None
        data["daemon_error"] = exc.message

    def render(d: dict[str, Any]) -> str:
        daemon = d["daemon"]["version"] if d["daemon"] else f"unreachable ({d['daemon_error']})"
        return f"client: {d['client']['version']}\ndaemon: {daemon}"

    emit(args, data, render)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    data = _client(args).get("/status")

    def render(d: dict[str, Any]) -> str:
        node, daemon = d["node"], d["daemon"]
        lines = [
            f"node:     {node['name']}  ({node.get('advertise_addr') or 'no advertise address'})",
            f"daemon:   pid {daemon['pid']}, p2porch {daemon['version']}, up {daemon['uptime_s']:.0f} s",
            f"services: {', '.join(daemon['subsystems'])}",
        ]
        lines.append(
            "cluster:  "
            + (
                json.dumps(d["cluster"])
                if d.get("cluster")
                else "not part of a cluster (run `p2porch init` or `p2porch join`)"
            )
        )
        return "\n".join(lines)

    emit(args, data, render)
    return EXIT_OK


def load_daemon_config(args: argparse.Namespace, env: dict[str, str] | None = None) -> Any:
    env = dict(os.environ) if env is None else env
    path = getattr(args, "config", None)
    toml_text = None
    if path or os.path.exists(DEFAULT_CONFIG_FILE):
        path = path or DEFAULT_CONFIG_FILE
        try:
            with open(path) as handle:
                toml_text = handle.read()
        except OSError as exc:
            raise UsageError(f"--config {path}: {exc.strerror}", field="--config") from exc
    host = getattr(args, "host", None) or env.get("P2PORCH_HOST")
    overrides = node_overrides(args)
    overrides["api.socket"] = host
    overrides["log.format"] = getattr(args, "log_format", None)
    overrides["log.level"] = getattr(args, "log_level", None)
    return load_config(toml_text=toml_text, toml_path=path, env=env, overrides=overrides)


def cmd_daemon(args: argparse.Namespace) -> int:
    import trio

    from .daemon import Daemon
    from .logs import setup_logging

    config = load_daemon_config(args)
    setup_logging(config.log.format, config.log.level)
    trio.run(Daemon(config, pid_file=args.pid_file).run)
    return EXIT_OK


def _sandbox(args: argparse.Namespace, **kwargs: Any) -> Any:
    from .sandbox.sandbox import Sandbox

    return Sandbox(args.name, **kwargs)


def cmd_sandbox_up(args: argparse.Namespace) -> int:
    sandbox = _sandbox(args, subnet=args.subnet, start_daemons=not args.no_daemons)
    print(f"bringing up sandbox {sandbox.name} with {args.nodes} nodes ...", file=sys.stderr)
    sandbox.up(args.nodes)
    return cmd_sandbox_ls(args)


def cmd_sandbox_ls(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    sandbox = _sandbox(args)
    statuses = [asdict(s) for s in sandbox.ls()]
    for status in statuses:
        node = sandbox.node_by_name(status["node"])
        status.update(node.env())

    def render(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return f"sandbox {sandbox.name} has no nodes (create them with `p2porch sandbox up`)"
        return table(
            ["node", "netns", "address", "dockerd", "daemon", "containers", "P2PORCH_HOST"],
            [
                [
                    r["node"],
                    r["netns"],
                    r["address"],
                    "up" if r["dockerd_up"] else "down",
                    "up" if r["daemon_up"] else "down",
                    r["containers"],
                    r["P2PORCH_HOST"],
                ]
                for r in rows
            ],
        )

    emit(args, statuses, render)
    return EXIT_OK


def cmd_sandbox_exec(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError("sandbox exec: a command is required after NODE --", field="argv")
    return _sandbox(args).exec(args.node, argv).returncode


def cmd_sandbox_down(args: argparse.Namespace) -> int:
    removed = _sandbox(args).down()
    emit(args, {"removed": removed}, lambda d: f"sandbox removed ({len(d['removed'])} nodes)")
    return EXIT_OK


# ----------------------------------------------------------------------------- entry point
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
