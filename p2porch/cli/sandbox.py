"""``p2porch sandbox up|ls|exec|down``: several p2porch hosts on this machine (shell; acts locally)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from .util import (
    EXIT_FAILED,
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
    # `sandbox down --name X` as well as `sandbox --name X down`, as the global options go either side
    named = Parser(add_help=False, parents=[common])
    named.add_argument("--name", default=argparse.SUPPRESS, help="sandbox name (default p2s)")
    common = named
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="ACTION", parser_class=Parser)
    sandbox_sub.required = True
    up = sandbox_sub.add_parser("up", parents=[common], help="Create or complete the sandbox")
    up.add_argument(
        "--nodes",
        type=positive_int,
        metavar="N",
        help="number of hosts (default: the existing sandbox's, else 3)",
    )
    up.add_argument(
        "--subnet",
        metavar="CIDR",
        help="underlay subnet of the sandbox bridge (default 10.77.0.0/24); with --sites the WAN "
        "transit /24 (default 10.78.0.0/24; site s gets it + s in the second octet: 10.79.0.0/24, ...)",
    )
    up.add_argument(
        "--sites", type=positive_int, metavar="N", help="sites behind NAT, each its own network and router"
    )
    up.add_argument(
        "--nodes-per-site", type=positive_int, default=3, metavar="N", help="hosts per site (default 3)"
    )
    up.add_argument("--wan-delay", metavar="DELAY", default="0ms", help="round trip between sites, e.g. 40ms")
    up.add_argument("--wan-loss", metavar="PERCENT", default="0%", help="loss on each WAN link, e.g. 1%%")
    up.add_argument("--no-daemons", action="store_true", help="do not start a p2porch daemon in each host")
    up.add_argument(
        "--init",
        action="store_true",
        help="also form a cluster: init on n1, every other host joins it (several joins at once)",
    )
    up.add_argument(
        "--api-port",
        type=positive_int,
        metavar="PORT",
        help="also serve each daemon's API over TLS on ADDRESS:PORT (tcp://)",
    )
    up.add_argument(
        "--raft-rtt-ms",
        type=round_trip_ms,
        metavar="MS",
        help="raft.rtt_ms of every daemon in the sandbox, kept in its state (default: 250 above 20 hosts, "
        'else 0, the LAN timing; see README.md, "Big sandboxes")',
    )
    up.set_defaults(func=cmd_sandbox_up)
    for action, helptext in (("cut", "Cut a site off the WAN"), ("heal", "Reconnect a site to the WAN")):
        wan = sandbox_sub.add_parser(action, parents=[common], help=helptext)
        wan.add_argument("site", type=positive_int, help="site number, e.g. 1")
        wan.set_defaults(func=cmd_sandbox_cut, cut=action == "cut")
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


def round_trip_ms(text: str) -> int:
    from ..config import MAX_RTT_MS

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if not 0 <= value <= MAX_RTT_MS:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_RTT_MS:.0f} ms, got {value}")
    return value


def _sandbox(args: argparse.Namespace, **kwargs: Any) -> Any:
    """The sandbox ``--name`` names; a malformed ``--name`` or ``--subnet`` is a usage error (exit 2)."""
    import ipaddress

    from ..sandbox.sandbox import NAME_RE, Sandbox

    if not NAME_RE.match(args.name):
        raise UsageError(
            f"--name: sandbox name {args.name!r} must be 1-6 lowercase letters/digits, starting with a "
            "letter",
            field="--name",
        )
    if kwargs.get("subnet") is not None:
        try:
            ipaddress.IPv4Network(kwargs["subnet"])
        except ValueError as exc:
            raise UsageError(
                f"--subnet: invalid subnet {kwargs['subnet']!r}: {exc}", field="--subnet"
            ) from exc
    return Sandbox(args.name, **kwargs)


def cmd_sandbox_up(args: argparse.Namespace) -> int:
    from ..sandbox.sites import parse_delay_ms, parse_loss_percent

    multi: dict[str, Any] = {}
    if args.sites is not None:
        if args.nodes is not None:
            raise UsageError("--nodes and --sites exclude each other (use --nodes-per-site)", field="--nodes")
        multi = {
            "sites": args.sites,
            "nodes_per_site": args.nodes_per_site,
            "wan_delay_ms": _sandbox_value(parse_delay_ms, args.wan_delay, "--wan-delay"),
            "wan_loss_percent": _sandbox_value(parse_loss_percent, args.wan_loss, "--wan-loss"),
        }
    sandbox = _sandbox(
        args,
        subnet=args.subnet,
        start_daemons=not args.no_daemons,
        api_port=args.api_port,
        raft_rtt_ms=args.raft_rtt_ms,
        **multi,
    )
    count = sandbox.plan.node_count if sandbox.plan is not None else args.nodes or sandbox.saved_nodes or 3
    if args.init and args.no_daemons:
        raise UsageError(
            "--init forms the cluster with the sandbox's daemons (not --no-daemons)", field="--init"
        )
    print(f"bringing up sandbox {sandbox.name} with {count} nodes ...", file=sys.stderr)
    started = time.monotonic()
    nodes = sandbox.up(None if sandbox.plan is not None else count)
    print(_crowded_note(sandbox, len(nodes), time.monotonic() - started), file=sys.stderr)
    if args.init and not _form(nodes):
        cmd_sandbox_ls(args)
        print(
            f"sandbox {sandbox.name} is left up to look at (logs: {sandbox.data_root}/nN/p2porch.log); "
            f"p2porch sandbox --name {sandbox.name} down removes it",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return cmd_sandbox_ls(args)


def _crowded_note(sandbox: Any, hosts: int, up_s: float) -> str:
    """What ``up`` did, and what a crowded sandbox does differently (README.md, "Big sandboxes")."""
    from ..sandbox.pacing import is_crowded

    note = f"{hosts} hosts up in {up_s:.0f} s"
    if sandbox.raft_rtt_ms:
        note += f"; daemons run with raft.rtt_ms={sandbox.raft_rtt_ms} (sandbox state)"
    raised = sorted(sandbox.neighbour_limits_raised.items())
    if raised:
        note += "; raised net.ipv4.neigh.default " + ", ".join(f"{k}={v}" for k, v in raised)
    if is_crowded(hosts):
        note += "; over 20 hosts: joins paced by the run queue"
    return note


def _form(nodes: list[Any]) -> bool:
    """``--init``: form the cluster and wait until every node is ready; False (after saying which
    nodes) when a join failed or a node did not become ready."""
    from ..errors import SandboxError
    from ..sandbox.cluster import form_cluster, wait_ready

    formation = form_cluster(nodes)
    timing = formation.to_dict()
    print(
        f"cluster formed: init {timing['init_s']} s, {timing['joins']} joins in {timing['formed_s']} s "
        f"(p50 {timing['join_p50_s']} s, max {timing['join_max_s']} s, {timing['retries']} retried, "
        f"{timing['paced_s']} s waiting for the run queue)",
        file=sys.stderr,
    )
    for name, error in timing["failed"].items():
        print(f"join failed on {name}: {error}", file=sys.stderr)
    joined = [node.name for node in nodes if node.name not in formation.failed]
    try:  # only the nodes that joined can become ready: no wait for the others
        ready_s = wait_ready(nodes[0], len(joined), names=joined)
    except SandboxError as exc:
        print(exc.message, file=sys.stderr)
        return False
    print(f"all {len(joined)} joined nodes ready {ready_s:.1f} s later", file=sys.stderr)
    return not formation.failed


def _sandbox_value(parse: Any, text: str, flag: str) -> Any:
    from ..errors import SandboxError

    try:
        return parse(text)
    except SandboxError as exc:
        raise UsageError(exc.message, field=flag) from exc


def cmd_sandbox_cut(args: argparse.Namespace) -> int:
    _sandbox(args).set_site_cut(args.site, args.cut)
    what = "cut off the WAN" if args.cut else "reconnected"
    emit(args, {"site": args.site, "cut": args.cut}, lambda d: f"site {d['site']} {what}")
    return EXIT_OK


def cmd_sandbox_ls(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    sandbox = _sandbox(args)
    statuses = [asdict(s) for s in sandbox.ls()]
    for status in statuses:
        node = sandbox.node_by_name(status["node"])
        status.update(node.env())

    def render(rows: list[dict[str, Any]]) -> str:
        if not rows:
            named = "" if sandbox.name == "p2s" else f" --name {sandbox.name}"
            return f"sandbox {sandbox.name} has no nodes (create them with `p2porch sandbox{named} up`)"
        return table(
            ["node", "netns", "address", "public", "dockerd", "daemon", "containers", "P2PORCH_HOST"],
            [
                [
                    r["node"],
                    r["netns"],
                    r["address"],
                    r["public_addr"] and f"{r['public_addr']} (site {r['site']})" or "-",
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
