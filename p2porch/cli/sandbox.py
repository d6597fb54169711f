"""``p2porch sandbox up|ls|exec|down``: several p2porch hosts on this machine (shell; acts locally)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .util import (
    EXIT_OK,
    Parser,
    UsageError,
    emit,
    positive_int,
    table,
)


def add_sandbox_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    sandbox = sub.add_parser(
        "sandbox",
        parents=[common],
        help="Run several p2porch hosts on this machine",
        description="Network namespaces with their own dockerd and p2porch daemon",
    )
    sandbox.add_argument("--name", default="p2s", help="sandbox name, prefix of its namespaces (default p2s)")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="ACTION", parser_class=Parser)
    sandbox_sub.required = True
    up = sandbox_sub.add_parser("up", parents=[common], help="Create or complete the sandbox")
    up.add_argument("--nodes", type=positive_int, default=3, help="number of hosts (default 3)")
    up.add_argument("--subnet", help="underlay subnet of the sandbox bridge (default 10.77.0.0/24)")
    up.add_argument("--no-daemons", action="store_true", help="do not start a p2porch daemon in each host")
    up.add_argument(
        "--api-port", type=positive_int, help="also serve each daemon's API over TLS on ADDRESS:PORT (tcp://)"
    )
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


def _sandbox(args: argparse.Namespace, **kwargs: Any) -> Any:
    from ..sandbox.sandbox import Sandbox

    return Sandbox(args.name, **kwargs)


def cmd_sandbox_up(args: argparse.Namespace) -> int:
    sandbox = _sandbox(args, subnet=args.subnet, start_daemons=not args.no_daemons, api_port=args.api_port)
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
