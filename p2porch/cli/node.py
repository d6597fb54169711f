"""``p2porch node ...`` and ``p2porch network inspect --overlay``: the nodes and this node's overlay.

Like every ``inspect``, both print text by default and JSON only with ``--json``.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import Any

from ..model import node_status_text
from .docker_paths import node_path
from .docker_values import pretty
from .filters import NODE_FILTERS, NODE_TASK_FILTERS, add_filter, apply_filters
from .goformat import add_inspect_output, add_list_format, inspect_each, listing
from .service_read import add_task_list_flags, emit_tasks
from .stats import add_node_stats
from .util import (
    EXIT_FAILED,
    EXIT_OK,
    LONG_OPERATION_TIMEOUT_S,
    Parser,
    add_ids_only,
    client_for,
    emit,
    remove_each,
    table,
)


def add_node_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    node = sub.add_parser("node", parents=[common], help="Manage cluster nodes")
    node_sub = node.add_subparsers(dest="node_command", metavar="ACTION", parser_class=Parser)
    node_sub.required = True
    ls = add_ids_only(node_sub.add_parser("ls", aliases=["list"], parents=[common], help="List nodes"))
    add_filter(ls, NODE_FILTERS)
    add_list_format(ls, NODE_COLUMNS, extra=NODE_EXTRA)
    ls.set_defaults(func=cmd_node_ls)
    ps = node_sub.add_parser("ps", parents=[common], help="List the tasks on nodes (default: this node)")
    ps.add_argument("nodes", metavar="NODE", nargs="*", help="node name or id (default: self)")
    add_task_list_flags(ps, NODE_TASK_FILTERS).set_defaults(func=cmd_node_ps)
    inspect = node_sub.add_parser("inspect", parents=[common], help="Show nodes")
    inspect.add_argument("nodes", metavar="NODE", nargs="+", help="node name or id (self: this node)")
    add_inspect_output(inspect)
    inspect.set_defaults(func=cmd_node_inspect)
    update = node_sub.add_parser("update", parents=[common], help="Change a node's availability or labels")
    update.add_argument("node", metavar="NODE", help="node name or id")
    update.add_argument(
        "--availability",
        choices=["active", "drain", "pause"],
        help="active: takes tasks; pause: keeps its tasks, takes no new ones; drain: its tasks move away",
    )
    update.add_argument(
        "--label-add",
        metavar="K[=V]",
        action="append",
        default=[],
        help="add or change a label (K alone: an empty value, as Docker's)",
    )
    update.add_argument("--label-rm", metavar="KEY", action="append", default=[], help="remove a label")
    update.add_argument("--role", choices=["manager", "worker"], help="(Docker's: refused, as node promote)")
    update.set_defaults(func=cmd_node_update)
    rm = node_sub.add_parser(
        "rm", aliases=["remove"], parents=[common], help="Remove a node that left or is down"
    )
    rm.add_argument("nodes", metavar="NODE", nargs="+", help="node name or id")
    rm.add_argument("--force", "-f", action="store_true", help="remove even a node that is still ready")
    rm.set_defaults(func=cmd_node_rm)
    add_node_stats(node_sub, common)
    for verb in ("promote", "demote"):
        role = node_sub.add_parser(
            verb,
            parents=[common],
            help=f"(Docker's node {verb}: refused; the cluster keeps its voters, Swarm's managers, itself)",
        )
        role.add_argument("nodes", metavar="NODE", nargs="+")
        role.set_defaults(func=cmd_node_role, verb=verb)


NODE_COLUMNS = [
    "name",
    "id",
    "address",
    "raft_role",
    "raft_index",
    "availability",
    "status",
    "gossip",
    "labels",
]


#: the fields ``node ls --format`` takes beside its columns, by Docker's names (:func:`_docker_fields`)
NODE_EXTRA = (
    "id",
    "hostname",
    "self",
    "manager_status",
    "engine_version",
    "tls_status",
    "status",
    "availability",
)
#: the fields of a row's ``{{json .}}``: docker/cli's node row's
NODE_JSON = (
    "id",
    "self",
    "hostname",
    "status",
    "availability",
    "manager_status",
    "tls_status",
    "engine_version",
)


def _docker_fields(n: dict[str, Any]) -> tuple[str, str, bool, str, str, str, str, str]:
    """A node's ``NODE_EXTRA``: its whole id (docker/cli's ``{{.ID}}``; the table's is cut), its name,
    whether it is this node (a bool, as Docker's: ``{{if .Self}}``, ``"Self":true``), Docker's
    ``ManagerStatus``: ``Leader``, ``Reachable`` or ``Unreachable`` for a voter (Docker's manager) by its
    status, empty for a replica (Docker's worker) or a node that left, and its Docker engine's version
    (gossip carries it: empty until the node's agent has read it), and Docker's ``TLSStatus`` (``Ready``
    / ``Needs Rotation`` from the key epoch the node runs in, ``Unknown`` when unknown, as docker/cli's:
    ``node_ops.tls_status``), and its status and availability as Docker's (``Ready``, ``Active``; the
    table's columns stay ``ready``)."""
    role = n["raft_role"]
    manager = "Leader" if role == "leader" else ""
    if role == "voter":
        manager = "Unreachable" if n["status"] == "down" else "Reachable"
    engine, tls = n.get("engine_version") or "", n.get("tls_status") or "Unknown"
    return (
        n["id"],
        n["name"],
        bool(n.get("self")),
        manager,
        engine,
        tls,
        pretty(n["status"]),
        pretty(n["availability"]),
    )


def _progress_cell(progress: dict[str, Any] | None) -> str:
    """Applied (or, seen from the leader, replicated) index, distance to the commit index, lag flag;
    ``-`` while the leader has not heard from the node yet, ``?`` where this node cannot know."""
    if progress and "match_index" in progress and progress["match_index"] is None:
        return "-"
    if not progress or progress.get("behind_entries") is None:
        return "?"
    index = progress.get("applied_index", progress.get("match_index"))
    cell = f"{index} (-{progress['behind_entries']})"
    return cell + (f" LAGGING {progress['lag_s']:.0f}s" if progress.get("lagging") else "")


def status_cell(n: dict[str, Any]) -> str:
    """The STATUS cell: ``status_text`` (``ready (engine unreachable)`` while its agent cannot reach its
    Docker engine, ``ready (restarting)`` while its daemon restarts), computed here from a daemon that
    does not send it."""
    reachable = (n.get("engine") or {}).get("reachable") is not False
    return str(n.get("status_text") or node_status_text(n["status"], reachable, bool(n.get("restart"))))


def _engine_line(engine: dict[str, Any] | None) -> str:
    """``node inspect``'s engine line: reachable, or unreachable since when and why (? when unknown)."""
    if not engine:
        return "?"
    if engine.get("reachable"):
        return "reachable"
    since = datetime.datetime.fromtimestamp(engine.get("unreachable_since") or 0, datetime.UTC)
    return f"unreachable since {since.isoformat(' ', 'seconds')}: {engine.get('error') or '?'}"


def _restart_note(restart: dict[str, Any] | None) -> str:
    """``node inspect``'s note on a node held while its daemon restarts: until when (UTC)."""
    if not restart:
        return ""
    until = datetime.datetime.fromtimestamp(restart.get("until") or 0, datetime.UTC)
    return f" (restarting: held until {until.isoformat(' ', 'seconds')})"


def _node_row(n: dict[str, Any]) -> list[Any]:
    labels = ",".join(f"{k}={v}" for k, v in sorted(n["labels"].items()))
    return [
        n["name"] + (" *" if n.get("self") else ""),
        n["id"][:12],
        n["address"],
        n["raft_role"],
        _progress_cell(n.get("raft_progress")),
        n["availability"],
        status_cell(n),
        n.get("gossip", ""),
        labels,
    ]


def cmd_node_ls(args: argparse.Namespace) -> int:
    rows = apply_filters(client_for(args).get("/nodes"), args.filters, NODE_FILTERS)
    emit(
        args,
        rows,
        lambda rows: listing(
            args,
            NODE_COLUMNS,
            [_node_row(n) for n in rows],
            NODE_EXTRA,
            [_docker_fields(n) for n in rows],
            docker_json=NODE_JSON,
            headers={"self": ""},  # docker/cli's: its column has no header
        ),
    )
    return EXIT_OK


def cmd_node_ps(args: argparse.Namespace) -> int:
    """Docker's ``node ps``: the tasks of every service on each node given, as ``service ps`` lists them."""
    client = client_for(args)
    tasks = []
    for ref in args.nodes or ["self"]:
        tasks += client.get(f"/nodes/{ref}/tasks", all="false" if args.running else "true")
    emit_tasks(args, apply_filters(tasks, args.filters, NODE_TASK_FILTERS))
    return EXIT_OK


def _platform(platform: dict[str, str] | None) -> str:
    """``linux/x86_64``: the node's OS and its engine's architecture (``?`` until gossip carried it)."""
    platform = platform or {}
    return f"{platform.get('os') or 'linux'}/{platform.get('architecture') or '?'}"


def describe_node(n: dict[str, Any]) -> str:
    """The ``node inspect`` text: identity, Raft role and progress, state, resources, ports, labels."""
    ports = n.get("ports") or {}
    cpus = (n.get("cpu_nanos") or 0) / 1e9
    memory = (n.get("memory_bytes") or 0) / 2**30
    joined = datetime.datetime.fromtimestamp(n.get("joined_at") or 0, datetime.UTC).isoformat(" ", "seconds")
    labels = ", ".join(f"{k}={v}" for k, v in sorted((n.get("labels") or {}).items()))
    lines = [
        f"node {n['name']}" + (" (this node)" if n.get("self") else ""),
        f"  id:           {n['id']}",
        f"  address:      {n['address']}",
        f"  raft:         {n['raft_role']}, index {_progress_cell(n.get('raft_progress'))}",
        f"  availability: {n['availability']}",
        f"  status:       {n['status']}{_restart_note(n.get('restart'))}, gossip {n.get('gossip') or '?'}",
        f"  engine:       {_engine_line(n.get('engine'))}",
        f"  tls:          {n.get('tls_status') or '?'}",
        f"  platform:     {_platform(n.get('platform'))}",
        f"  resources:    {cpus:g} CPUs, {memory:.1f} GiB memory",
        f"  subnet:       {n.get('subnet') or '-'}",
        "  ports:        " + (", ".join(f"{k} {v}" for k, v in ports.items() if v) or "-"),
        f"  joined:       {joined}",
        f"  labels:       {labels or '-'}",
    ]
    return "\n".join(lines)


def cmd_node_inspect(args: argparse.Namespace) -> int:
    client = client_for(args)
    return inspect_each(args, args.nodes, lambda ref: client.get(f"/nodes/{ref}"), describe_node, node_path)


def cmd_node_role(args: argparse.Namespace) -> int:
    """``node promote|demote``: Docker's manager/worker switch, which p2porch does not take (its leader
    keeps ``raft.voters`` voters itself and would undo a hand-made change): exit 1, nothing sent. Each
    node is looked up first: an unknown one is Docker's ``No such node: X`` (exit 1), as for any node
    command."""
    client = client_for(args)
    for ref in getattr(args, "nodes", None) or [args.node]:
        client.get(f"/nodes/{ref}")
    print(
        f"p2porch: error: node {args.verb}: p2porch chooses its Raft voters itself (raft.voters: 3, 5 "
        "from 7 nodes; a voter down for raft.replace_dead_voter_s is replaced by a replica), so a node "
        "cannot be promoted or demoted by hand; `node ls` shows each node's role. To take a voter out: "
        "`p2porch leave` on it, or `node rm` once it is down. Nothing was changed.",
        file=sys.stderr,
    )
    return EXIT_FAILED


def cmd_node_update(args: argparse.Namespace) -> int:
    from ..config import parse_labels

    if args.role:  # Docker's manager/worker switch, refused before anything is sent
        args.verb = f"update --role {args.role}"
        return cmd_node_role(args)
    body = {
        "availability": args.availability,
        # Docker's `--label-add foo` is the label foo with an empty value
        "label_add": parse_labels([k if "=" in k else f"{k}=" for k in args.label_add], field="--label-add"),
        "label_rm": args.label_rm,
    }
    node = client_for(args).post(f"/nodes/{args.node}/update", body)
    emit(args, node, lambda n: args.node)  # as `docker node update`: the node as given; --json: its view
    return EXIT_OK


def cmd_node_rm(args: argparse.Namespace) -> int:
    """``node rm A B ...`` as Docker's: each in turn (a missing one is an error, the others are still
    removed), each printed as given; --json: the daemon's answer (a list for several)."""

    def remove(client: Any, ref: str) -> Any:
        return client.delete(f"/nodes/{ref}", {"force": args.force})

    def line(ref: str, result: dict[str, Any]) -> str:
        if result.get("warning"):
            print(f"warning: {result['warning']}", file=sys.stderr)
        return ref

    # a leading voter steps down first and the rest switch to a new key epoch: allow for both
    return remove_each(args, args.nodes, remove, line, one_as_object=True, timeout_s=LONG_OPERATION_TIMEOUT_S)


def describe_overlay(d: dict[str, Any]) -> str:
    """The ``network inspect --overlay`` text: lease, VTEP, local network, then one row per peer."""
    if not d.get("ready"):
        return f"overlay not ready: {d.get('health')}"
    vtep, net = d.get("vtep") or {}, d.get("network") or {}
    lines = [
        f"overlay of node {str(d.get('node_id', '?'))[:12]}",
        f"  lease:        {d.get('lease') or '-'} (cluster {d.get('cluster_cidr') or '-'})",
        f"  vtep:         {vtep.get('device')} {'present' if vtep.get('present') else 'MISSING'}, "
        f"mac {vtep.get('mac') or '-'}, address {vtep.get('address') or '-'}, mtu {vtep.get('mtu') or '-'}",
        f"  underlay:     {vtep.get('local') or '-'} on {vtep.get('underlay_dev') or '-'}, "
        f"vni {vtep.get('vni')}, udp {vtep.get('port')}",
        f"  network:      {net.get('name') or '-'} (bridge {net.get('bridge') or '-'}, "
        f"gateway {net.get('gateway') or '-'})",
    ]
    known = {"node_id", "lease", "cluster_cidr", "vtep", "network", "peers", "ready"}
    lines += [f"  {k + ':':<13} {v}" for k, v in sorted(d.items()) if k not in known]
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


def cmd_network_inspect(args: argparse.Namespace) -> int:
    emit(args, client_for(args).get("/network"), describe_overlay)
    return EXIT_OK
