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
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .cli_services import add_service_commands
from .cli_stack import add_stack_commands
from .cliutil import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Parser,
    UsageError,
    client_for,
    emit,
    positive_int,
    table,
    wants_json,
)
from .config import DEFAULT_SOCKET, load_config
from .errors import ConfigError, P2POrchError

DEFAULT_CONFIG_FILE = "/etc/p2porch/p2porch.toml"


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument(
        "--host",
        "-H",
        default=argparse.SUPPRESS,
        help=f"daemon socket, unix:///path (env P2PORCH_HOST, default unix://{DEFAULT_SOCKET})",
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

    def command(
        name: str, help_text: str, fn: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=fn)
        return p

    command("version", "Show the client and daemon versions", cmd_version)
    status = command("status", "Node, cluster, nodes and services at a glance", cmd_status)
    status.add_argument("--watch", "-w", action="store_true", help="refresh until interrupted")
    status.add_argument(
        "--interval", type=float, default=2.0, metavar="S", help="refresh period (default 2 s)"
    )

    daemon = command("daemon", "Run the p2porch daemon in the foreground", cmd_daemon)
    _add_node_options(daemon)
    daemon.add_argument(
        "--config", metavar="FILE", help=f"configuration file (default {DEFAULT_CONFIG_FILE} when it exists)"
    )
    daemon.add_argument("--log-format", choices=["human", "json"], help="log line format (default human)")
    daemon.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    daemon.add_argument("--pid-file", metavar="FILE", help="write the daemon's pid here (removed on exit)")

    init = command("init", "Create a cluster on this node and print the join command", cmd_init)
    _add_node_options(init)
    init.add_argument("--cluster-cidr", metavar="CIDR", help="overlay address space (default 10.240.0.0/16)")
    init.add_argument("--domain", metavar="D", help="cluster DNS domain (default p2p)")
    _add_token_options(init, "use this pre-generated join token (P2PT-1-...)")
    init.add_argument("--foreground", action="store_true", help="run the daemon in the foreground")

    join = command("join", "Join the cluster a peer belongs to", cmd_join)
    join.add_argument("peer", metavar="PEER[:PORT]", help="address of any cluster member (join port 7948)")
    _add_token_options(join, "the join token from `p2porch token`")
    join.add_argument(
        "--behind-nat",
        action="store_true",
        help="this node reaches PEER through NAT: its --advertise-addr differs from the address the join "
        "connection comes from (it must still be no other node's address)",
    )
    _add_node_options(join)
    join.add_argument("--foreground", action="store_true", help="run the daemon in the foreground")

    leave = command("leave", "Leave the cluster (this node)", cmd_leave)
    leave.add_argument(
        "--force",
        action="store_true",
        help="leave even if the cluster cannot be told, or this is the last node",
    )
    recover = command(
        "recover",
        "After losing the Raft quorum: restart the cluster from this node's state as its only voter",
        cmd_recover,
    )
    recover.add_argument(
        "--force-new-cluster",
        action="store_true",
        help="required: other nodes' unreplicated writes are lost; they rejoin as replicas",
    )
    command("events", "Stream cluster events: nodes, leader, services, tasks", cmd_events)
    token = command("token", "Show the join token and join command", cmd_token)
    token.add_argument(
        "--rotate",
        action="store_true",
        help="replace the join token: the old one stops working for new joins",
    )

    cluster = sub.add_parser("cluster", parents=[common], help="Cluster-wide operations")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND")
    rotate = cluster_sub.add_parser(
        "rotate-keys",
        parents=[common],
        help="new cluster keys for every current member (Raft, gossip, member requests)",
        description="Start a new cluster key epoch: every current member receives the new key sealed "
        "to its node key; a removed node or anyone holding an old key cannot follow.",
    )
    rotate.set_defaults(func=cmd_rotate_keys)

    node = sub.add_parser("node", parents=[common], help="Manage cluster nodes")
    node_sub = node.add_subparsers(dest="node_command", metavar="ACTION", parser_class=Parser)
    node_sub.required = True
    node_sub.add_parser("ls", parents=[common], help="List nodes").set_defaults(func=cmd_node_ls)
    inspect = node_sub.add_parser("inspect", parents=[common], help="Show one node")
    inspect.add_argument("node", metavar="NODE", help="node name or id")
    inspect.set_defaults(func=cmd_node_inspect)
    update = node_sub.add_parser("update", parents=[common], help="Change a node's availability or labels")
    update.add_argument("node", metavar="NODE", help="node name or id")
    update.add_argument("--availability", choices=["active", "drain", "pause"])
    update.add_argument(
        "--label-add", metavar="K=V", action="append", default=[], help="add or change a label"
    )
    update.add_argument("--label-rm", metavar="KEY", action="append", default=[], help="remove a label")
    update.set_defaults(func=cmd_node_update)
    rm = node_sub.add_parser("rm", parents=[common], help="Remove a node that left or is down")
    rm.add_argument("node", metavar="NODE", help="node name or id")
    rm.add_argument("--force", action="store_true", help="remove even a node that is still ready")
    rm.set_defaults(func=cmd_node_rm)

    network = sub.add_parser("network", parents=[common], help="The overlay network of this node")
    network_sub = network.add_subparsers(dest="network_command", metavar="ACTION", parser_class=Parser)
    network_sub.required = True
    network_sub.add_parser("inspect", parents=[common], help="Lease, VTEP and programmed peers").set_defaults(
        func=cmd_network_inspect
    )
    add_service_commands(sub, common)
    add_stack_commands(sub, common)

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
        client = client_for(args)
        data["daemon"] = client.get("/version")
    except P2POrchError as exc:
        data["daemon"] = None
        data["daemon_error"] = exc.message

    def render(d: dict[str, Any]) -> str:
        daemon = d["daemon"]["version"] if d["daemon"] else f"unreachable ({d['daemon_error']})"
        return f"client: {d['client']['version']}\ndaemon: {daemon}"

    emit(args, data, render)
    return EXIT_OK


def status_view(client: Any) -> dict[str, Any]:
    """The daemon's status plus, for a member, its nodes and services (one at-a-glance view)."""
    data: dict[str, Any] = client.get("/status")
    cluster = data.get("cluster")
    if cluster and cluster.get("ready"):
        data["nodes"] = client.get("/nodes")
        data["services"] = client.get("/services")
    return data


def render_status(d: dict[str, Any]) -> str:
    node, daemon, cluster = d["node"], d["daemon"], d.get("cluster")
    lines = [
        f"node:     {node['name']}  ({node.get('advertise_addr') or 'no advertise address'})",
        f"daemon:   pid {daemon['pid']}, p2porch {daemon['version']}, up {daemon['uptime_s']:.0f} s",
    ]
    if not cluster:
        lines.append("cluster:  not part of a cluster (run `p2porch init` or `p2porch join`)")
        return "\n".join(lines)
    quorum = "ok" if cluster.get("has_quorum") else "LOST (this side cannot commit writes)"
    lines += [
        f"cluster:  {cluster['cluster_id']}  domain {cluster.get('domain')}  "
        f"cidr {cluster.get('cluster_cidr')}",
        f"raft:     leader {cluster.get('leader') or 'none'}, quorum {quorum}, term {cluster.get('term')}, "
        f"state version {cluster.get('state_version')}",
        f"voters:   {', '.join(cluster.get('voters', []))}",
    ]
    unhealthy = {k: v for k, v in cluster.get("services_health", {}).items() if v != "running"}
    lines.append(
        "local:    " + (", ".join(f"{k}: {v}" for k, v in unhealthy.items()) or "all member services running")
    )
    nodes = d.get("nodes", [])
    if nodes:
        by_state: dict[str, list[str]] = {}
        for n in nodes:
            by_state.setdefault(n.get("gossip") or n["status"], []).append(n["name"])
        lines.append(
            "nodes:    "
            + "; ".join(f"{state}: {', '.join(names)}" for state, names in sorted(by_state.items()))
        )
    for svc in d.get("services", []):
        line = f"service:  {svc['name']} {svc['running']}/{svc['desired']}"
        for pending in svc.get("pending", []):
            line += f"  pending {pending['count']}: {pending['explanation']}"
        lines.append(line)
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    client = client_for(args)
    if not args.watch:
        emit(args, status_view(client), render_status)
        return EXIT_OK
    while True:
        view = status_view(client)
        if not wants_json(args):
            print("\033[H\033[2J", end="")  # clear the terminal between refreshes
        emit(args, view, render_status)
        sys.stdout.flush()
        time.sleep(args.interval)


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


TOKEN_ENV = "P2PORCH_TOKEN"


def _add_token_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--token-file", metavar="FILE", help=f"read {what} from FILE (or set {TOKEN_ENV})")
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help="the token itself: visible to every user in `ps`; prefer --token-file or " + TOKEN_ENV,
    )


def read_token(args: argparse.Namespace, env: dict[str, str] | None = None) -> str | None:
    """The join token from --token, --token-file or $P2PORCH_TOKEN (in that order), or None."""
    if getattr(args, "token", None):
        return str(args.token)
    path = getattr(args, "token_file", None)
    if path:
        try:
            with open(path) as handle:
                text = handle.read().strip()
        except OSError as exc:
            raise UsageError(f"--token-file {path}: {exc.strerror or exc}", field="--token-file") from exc
        if not text:
            raise UsageError(f"--token-file {path} is empty", field="--token-file")
        return text
    value = (os.environ if env is None else env).get(TOKEN_ENV, "").strip()
    return value or None


def _cluster_body(args: argparse.Namespace) -> dict[str, Any]:
    from .config import parse_labels

    token = read_token(args)
    if getattr(args, "peer", None) is not None and token is None:
        raise UsageError(
            f"join needs the join token: --token-file FILE, ${TOKEN_ENV}, or --token", field="--token"
        )
    body: dict[str, Any] = {
        "name": args.name,
        "advertise_addr": args.advertise_addr,
        "labels": parse_labels(args.label, field="--label") if args.label else None,
        "token": token,
        "peer": getattr(args, "peer", None),
        "behind_nat": True if getattr(args, "behind_nat", False) else None,
        "cluster_cidr": getattr(args, "cluster_cidr", None),
        "domain": getattr(args, "domain", None),
    }
    return {k: v for k, v in body.items() if v is not None}


def _daemon_reachable(args: argparse.Namespace) -> bool:
    try:
        client_for(args).get("/version")
        return True
    except P2POrchError:
        return False


def _start_background_daemon(args: argparse.Namespace) -> None:
    """Start ``p2porch daemon`` detached with the node options, and wait until its socket answers."""
    import subprocess
    import time

    config = load_daemon_config(args)
    os.makedirs(config.node.data_dir, mode=0o700, exist_ok=True)
    log_path = os.path.join(config.node.data_dir, "daemon.log")
    argv = [
        sys.executable,
        "-m",
        "p2porch",
        "--host",
        f"unix://{config.api.socket}",
        "daemon",
        "--data-dir",
        config.node.data_dir,
        "--pid-file",
        os.path.join(config.node.data_dir, "daemon.pid"),
    ]
    for flag, value in (
        ("--advertise-addr", args.advertise_addr),
        ("--docker-host", args.docker_host),
        ("--name", args.name),
        ("--config", getattr(args, "config", None)),
    ):
        if value:
            argv += [flag, value]
    for label in args.label or []:
        argv += ["--label", label]
    with open(log_path, "ab") as log:
        env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}  # the daemon never needs it
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise P2POrchError(f"the daemon exited with code {proc.returncode}; see {log_path}")
        if _daemon_reachable(args):
            print(f"started the p2porch daemon (pid {proc.pid}, log {log_path})", file=sys.stderr)
            return
        time.sleep(0.1)
    raise P2POrchError(f"the daemon did not answer on unix://{config.api.socket} within 30 s; see {log_path}")


def _form_cluster(args: argparse.Namespace, path: str, render: Callable[[Any], str]) -> int:
    """init/join: through a running daemon, a new background daemon, or in the foreground."""
    body = _cluster_body(args)
    if args.foreground:
        import trio

        from .daemon import Daemon
        from .logs import setup_logging

        config = load_daemon_config(args)
        setup_logging(config.log.format, config.log.level)

        async def on_ready(daemon: Any) -> None:
            handler = daemon.cluster.init if path == "/cluster/init" else daemon.cluster.join
            try:
                result = await handler(body)
            except P2POrchError:
                daemon.request_stop()
                raise
            emit(args, _with_join_command(result, daemon.config), render)
            sys.stdout.flush()

        trio.run(Daemon(config, on_ready=on_ready).run)
        return EXIT_OK
    if not _daemon_reachable(args):
        _start_background_daemon(args)
    result = client_for(args).post(path, body)
    emit(args, result, render)
    return EXIT_OK


def _with_join_command(result: dict[str, Any], config: Any) -> dict[str, Any]:
    if "token" in result and "join_addr" in result:
        return {**result, "join_command": join_command_text(result["join_addr"], result["token"])}
    return result


def join_command_text(join_addr: str, token: str) -> str:
    """How to join, with the token in the environment rather than in the joiner's argv."""
    return f"{TOKEN_ENV}={token} p2porch join {join_addr}"


def cmd_init(args: argparse.Namespace) -> int:
    def render(d: dict[str, Any]) -> str:
        return (
            f"Cluster {d['cluster_id']} created; this node ({d['node_id']}) is its first voter.\n"
            f"To add a node, run this on it:\n\n    {join_command_text(d['join_addr'], d['token'])}\n"
        )

    return _form_cluster(args, "/cluster/init", render)


def cmd_join(args: argparse.Namespace) -> int:
    return _form_cluster(
        args,
        "/cluster/join",
        lambda d: f"This node joined cluster {d['cluster_id']} as a {d['role']} (node id {d['node_id']}).",
    )


def cmd_leave(args: argparse.Namespace) -> int:
    result = client_for(args).post("/cluster/leave", {"force": args.force})
    emit(args, result, lambda d: f"This node left cluster {d['left']}.")
    return EXIT_OK


def cmd_recover(args: argparse.Namespace) -> int:
    if not args.force_new_cluster:
        raise UsageError(
            "recover: this discards every other node's Raft log; confirm with --force-new-cluster",
            field="--force-new-cluster",
        )
    result = client_for(args).post("/cluster/recover", {"force_new_cluster": True})
    emit(
        args,
        result,
        lambda d: (
            f"Cluster {d['cluster_id']} restarted from this node's state (version {d['state_version']}, "
            f"{d['nodes']} nodes) as its only voter, Raft generation {d['generation']}.\n"
            f"Other nodes rejoin as replicas when they come back; the old log is in {d['old_raft_log']}."
        ),
    )
    return EXIT_OK


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    result = client_for(args).post("/cluster/rotate-keys", {})
    emit(
        args,
        result,
        lambda d: (
            f"Cluster key epoch {d['key_epoch']} started for {d['members']} members."
            + (
                f"\nLeft out (no node key; they must rejoin): {', '.join(d['left_out'])}"
                if d["left_out"]
                else ""
            )
        ),
    )
    return EXIT_OK


def cmd_token(args: argparse.Namespace) -> int:
    client = client_for(args)
    result = client.post("/token", {"rotate": True}) if args.rotate else client.get("/token")
    emit(
        args, result, lambda d: f"{d['token']}\n\nTo add a node, run this on it:\n\n    {d['join_command']}\n"
    )
    return EXIT_OK


NODE_COLUMNS = ["name", "id", "address", "raft_role", "availability", "status", "gossip", "labels"]


def _node_row(n: dict[str, Any]) -> list[Any]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(n["labels"].items()))
    return [
        n["name"] + (" *" if n.get("self") else ""),
        n["id"][:12],
        n["address"],
        n["raft_role"],
        n["availability"],
        n["status"],
        n.get("gossip", ""),
        labels,
    ]


def cmd_events(args: argparse.Namespace) -> int:
    for event in client_for(args).stream("/events"):
        if wants_json(args):
            print(json.dumps(event), flush=True)
            continue
        at = time.strftime("%H:%M:%S", time.localtime(event.get("at", 0)))
        details = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("at", "type") and v is not None)
        print(f"{at} {event.get('type', '?'):8} {details}", flush=True)
    return EXIT_OK


def cmd_network_inspect(args: argparse.Namespace) -> int:
    def render(d: dict[str, Any]) -> str:
        if not d.get("ready"):
            return f"overlay not ready: {d.get('health')}"
        lines = [json.dumps({k: v for k, v in d.items() if k != "peers"}, indent=2, sort_keys=True)]
        lines.append(
            table(
                ["node", "subnet", "underlay", "vtep mac", "programmed"],
                [
                    [p["node_id"][:12], p["subnet"], p["underlay_addr"], p["vtep_mac"], p["programmed"]]
                    for p in d.get("peers", [])
                ],
            )
        )
        return "\n".join(lines)

    emit(args, client_for(args).get("/network"), render)
    return EXIT_OK


def cmd_node_ls(args: argparse.Namespace) -> int:
    emit(args, client_for(args).get("/nodes"), lambda rows: table(NODE_COLUMNS, [_node_row(n) for n in rows]))
    return EXIT_OK


def cmd_node_inspect(args: argparse.Namespace) -> int:
    node = client_for(args).get(f"/nodes/{args.node}")
    emit(args, node, lambda d: json.dumps(d, indent=2, sort_keys=True))
    return EXIT_OK


def cmd_node_update(args: argparse.Namespace) -> int:
    from .config import parse_labels

    body = {
        "availability": args.availability,
        "label_add": parse_labels(args.label_add, field="--label-add"),
        "label_rm": args.label_rm,
    }
    node = client_for(args).post(f"/nodes/{args.node}/update", body)
    emit(args, node, lambda n: table(NODE_COLUMNS, [_node_row(n)]))
    return EXIT_OK


def cmd_node_rm(args: argparse.Namespace) -> int:
    result = client_for(args).delete(f"/nodes/{args.node}", {"force": args.force})
    emit(args, result, lambda d: f"removed node {d['name']} ({d['removed']})")
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
