"""``p2porch init|join|leave|recover|token|status|events|version``: the cluster as a whole (shell).

init and join start a background daemon when none answers on ``--host`` (or run one in the
foreground).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from .. import __version__
from ..errors import DaemonUnreachable, P2POrchError
from .daemon import ADVERTISED_PORTS as PORTS
from .daemon import add_node_options, load_daemon_config
from .filters import EVENT_FILTERS, add_filter, apply_filters
from .localfiles import TOKEN_FILE_BYTES, read_flag_text
from .util import (
    EXIT_OK,
    LONG_OPERATION_TIMEOUT_S,
    UsageError,
    client_for,
    command,
    emit,
    local_client_for,
    positive_seconds,
    wants_json,
)
from .view_format import add_view_format, view_lines

# Only what init and join use is imported above (a `p2porch join` starts in ~50-70 ms of CPU, issue 19): the
# template engine and the model come with a --format (view_format.py, the Docker paths below), the rows'
# texts with `status`.


def _info_path(view: Any, path: str) -> tuple[bool, Any]:
    """Docker's ``info --format`` paths (docker_paths.py, loaded with the first one asked for)."""
    from .docker_paths import info_path

    return info_path(view, path)


def _event_path(view: Any, path: str) -> tuple[bool, Any]:
    """Docker's ``events --format`` paths (docker_paths.py, loaded with the first one asked for)."""
    from .docker_paths import event_path

    return event_path(view, path)


def add_cluster_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    add_view_format(command(sub, common, "version", "Show the client and daemon versions", cmd_version))
    status = command(
        sub,
        common,
        "status",
        "Node, cluster, nodes and services at a glance (also `info`, as `docker info`'s Swarm part)",
        cmd_status,
        aliases=("info",),
    )
    status.add_argument("--watch", "-w", action="store_true", help="refresh until interrupted")
    add_view_format(status)
    status.add_argument(
        "--interval", type=positive_seconds, default=2.0, metavar="S", help="refresh period (default 2 s)"
    )
    init = command(sub, common, "init", "Create a cluster on this node and print the join command", cmd_init)
    add_node_options(init)
    init.add_argument("--cluster-cidr", metavar="CIDR", help="overlay address space (default 10.240.0.0/16)")
    init.add_argument("--domain", metavar="D", help="cluster DNS domain (default p2p)")
    _add_token_options(init, "use this pre-generated join token (P2PT-1-...)")
    init.add_argument("--foreground", action="store_true", help="run the daemon in the foreground")

    join = command(sub, common, "join", "Join the cluster a peer belongs to", cmd_join)
    join.add_argument("peer", metavar="PEER[:PORT]", help="address of any cluster member (join port 7948)")
    _add_token_options(join, "the join token from `p2porch token`")
    join.add_argument(
        "--behind-nat",
        action="store_true",
        help="this node reaches PEER through NAT: its --advertise-addr differs from the address the join "
        "connection comes from (it must still be no other node's address)",
    )
    add_node_options(join)
    join.add_argument("--foreground", action="store_true", help="run the daemon in the foreground")

    leave = command(sub, common, "leave", "Leave the cluster (this node)", cmd_leave)
    leave.add_argument(
        "--force",
        "-f",  # as `docker swarm leave -f`
        action="store_true",
        help="leave even if the cluster cannot be told, or this is the last node",
    )
    recover = command(
        sub,
        common,
        "recover",
        "After losing a majority of voters (Swarm's managers): restart the cluster from this node's state "
        "as its only voter, as docker swarm init --force-new-cluster",
        cmd_recover,
    )
    recover.add_argument(
        "--force-new-cluster",
        action="store_true",
        help="required: other nodes' unreplicated writes are lost; they rejoin as replicas",
    )
    events = command(
        sub, common, "events", "Stream cluster events: nodes, leader, services, tasks", cmd_events
    )
    for flag, what in (("--since", "first the kept events since"), ("--until", "stop at")):
        events.add_argument(
            flag, metavar="TIME", help=f"{what} a time: a duration ago (10m), a date or Unix time"
        )
    add_filter(events, EVENT_FILTERS)
    add_view_format(events, short=False)
    token = command(sub, common, "token", "Show the join token and join command", cmd_token)
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
    ca = cluster_sub.add_parser(
        "ca",
        parents=[common],
        help="print the CA bundle remote clients verify the API with (--tls-ca, context --ca-file)",
        description="Print the PEM of the CA that issued this node's API certificate: the cluster CA of "
        "the current key epoch (it changes with rotate-keys and node rm), or the operator's --api-ca.",
    )
    ca.set_defaults(func=cmd_cluster_ca)


def cmd_cluster_ca(args: argparse.Namespace) -> int:
    result = client_for(args).get("/cluster/ca")
    emit(args, result, lambda d: str(d["pem"]).rstrip("\n"))
    return EXIT_OK


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

    # Docker's `version --format '{{.Server.Version}}'`: the daemon's part is also `.Server`
    line = view_lines(args, lambda view, path: (path == ".Server", view["daemon"]))
    if line is not None:
        print(line(data))
        return EXIT_OK
    emit(args, data, render)
    return EXIT_OK


def status_view(client: Any) -> dict[str, Any]:
    """The daemon's status plus, for a member, its nodes and services (one at-a-glance view): this
    node's own copy of them (``stale``), so a node without quorum still shows itself and says so."""
    data: dict[str, Any] = client.get("/status")
    cluster = data.get("cluster")
    if cluster and cluster.get("ready"):
        data["nodes"] = client.get("/nodes", stale="true")
        data["services"] = client.get("/services", stale="true")
    return data


def render_status(d: dict[str, Any]) -> str:
    from .service_rows import failing_text, job_progress_text  # loads the template engine: status only

    node, daemon, cluster = d["node"], d["daemon"], d.get("cluster")
    lines = [
        f"node:     {node['name']}  ({node.get('advertise_addr') or 'no advertise address'})",
        f"daemon:   pid {daemon['pid']}, p2porch {daemon['version']}, up {daemon['uptime_s']:.0f} s",
    ]
    remote = d.get("remote_api")
    if remote:
        lines.append(f"api:      https://{remote['addr']} ({remote['certificate']})")
    if not cluster and d.get("removed"):
        lines.append(f"cluster:  {d['removed']['message']}")
        return "\n".join(lines)
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
        counts = job_progress_text(svc["job"]) if svc.get("job") else f"{svc['running']}/{svc['desired']}"
        line = f"service:  {svc['name']} {counts}"  # a job as service ls shows it: 0/2 (4/4 completed)
        for pending in svc.get("pending", []):
            line += f"  pending {pending['count']}: {pending['explanation']}"
        if svc.get("failing"):
            line += f"  {failing_text(svc)}"
        lines.append(line)
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    client = client_for(args)
    line = view_lines(args, _info_path)  # `info --format '{{.Swarm.LocalNodeState}}'`, the --json view
    show = (lambda view: print(line(view))) if line else (lambda view: emit(args, view, render_status))
    if not args.watch:
        show(status_view(client))
        return EXIT_OK
    while True:
        view = status_view(client)
        if not wants_json(args) and not line:
            print("\033[H\033[2J", end="")  # clear the terminal between refreshes
        show(view)
        sys.stdout.flush()
        time.sleep(args.interval)


TOKEN_ENV = "P2PORCH_TOKEN"


def _add_token_options(parser: argparse.ArgumentParser, what: str) -> None:
    # --token-file FILE (a global option) is the join token here: init/join talk to the local socket
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
        text = read_flag_text(path, "--token-file", TOKEN_FILE_BYTES).strip()
        if not text:
            raise UsageError(f"--token-file {path} is empty", field="--token-file")
        return text
    value = (os.environ if env is None else env).get(TOKEN_ENV, "").strip()
    return value or None


def _labels(given: list[str]) -> dict[str, str]:
    from ..config import parse_labels  # only with --label: a plain join never loads the config

    return parse_labels(given, field="--label")


def _cluster_body(args: argparse.Namespace) -> dict[str, Any]:
    token = read_token(args)
    if getattr(args, "peer", None) is not None and token is None:
        raise UsageError(
            f"join needs the join token: --token-file FILE, ${TOKEN_ENV}, or --token", field="--token"
        )
    body: dict[str, Any] = {
        "name": args.name,
        "advertise_addr": args.advertise_addr,
        "listen_addr": args.listen_addr,
        "advertise_ports": {
            kind: getattr(args, f"advertise_{kind}_port")
            for kind in PORTS
            if getattr(args, f"advertise_{kind}_port", None)
        }
        or None,
        "labels": _labels(args.label) if args.label else None,
        "token": token,
        "peer": getattr(args, "peer", None),
        "behind_nat": True if getattr(args, "behind_nat", False) else None,
        "cluster_cidr": getattr(args, "cluster_cidr", None),
        "domain": getattr(args, "domain", None),
    }
    return {k: v for k, v in body.items() if v is not None}


def _daemon_reachable(args: argparse.Namespace) -> bool:
    try:
        local_client_for(args).get("/version")
        return True
    except P2POrchError:
        return False


def _start_background_daemon(args: argparse.Namespace) -> None:
    """Start ``p2porch daemon`` detached with the node options, and wait until its socket answers."""
    import subprocess
    import time

    from ..launch import daemon_argv

    config = load_daemon_config(args)
    os.makedirs(config.node.data_dir, mode=0o700, exist_ok=True)
    log_path = os.path.join(config.node.data_dir, "daemon.log")
    argv = daemon_argv(
        ["--data-dir", config.node.data_dir, "--pid-file", os.path.join(config.node.data_dir, "daemon.pid")],
        host=f"unix://{config.api.socket}",
    )
    for flag, value in (
        ("--advertise-addr", args.advertise_addr),
        ("--listen-addr", args.listen_addr),
        ("--gossip-profile", args.gossip_profile),
        *((f"--advertise-{k}-port", str(getattr(args, f"advertise_{k}_port") or "")) for k in PORTS),
        ("--docker-host", args.docker_host),
        ("--name", args.name),
        ("--config", getattr(args, "config", None)),
        ("--api-addr", getattr(args, "api_addr", None)),
        ("--api-cert", getattr(args, "api_cert", None)),
        ("--api-key", getattr(args, "api_key", None)),
        ("--api-ca", getattr(args, "api_ca", None)),
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


# init/join wait for the daemon's answer past its own bounds (a join: the member's reply within 40 s, then
# this node's record within 30 s), so a slow join ends with the daemon's reason ("run the same join
# again"), not "the daemon did not answer in time" while it still works on it
FORM_TIMEOUT_S = 120.0


def _form_cluster(args: argparse.Namespace, path: str, render: Callable[[Any], str]) -> int:
    """init/join: through a running daemon, a new background daemon, or in the foreground."""
    body = _cluster_body(args)
    if args.foreground:
        _refuse_what_the_daemon_would(body)
        import trio

        from ..daemon import Daemon
        from ..logs import setup_logging

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
    try:  # one request when the daemon runs (no separate "is it up?" round trip first)
        result = local_client_for(args, FORM_TIMEOUT_S).post(path, body)
    except DaemonUnreachable:  # nothing listens: the request was not sent, so sending it again is safe
        _refuse_what_the_daemon_would(body)
        _start_background_daemon(args)
        result = local_client_for(args, FORM_TIMEOUT_S).post(path, body)
    emit(args, result, render)
    return EXIT_OK


def _refuse_what_the_daemon_would(body: dict[str, Any]) -> None:
    """Before a daemon is started for init/join: what the daemon would refuse at once (a malformed
    token or PEER, a bad --cluster-cidr, --domain, --name or --label) is refused here, so it leaves no
    daemon and no data dir behind."""
    from ..errors import ConfigError
    from ..membership.join_checks import check_api_body
    from ..membership.peer import split_peer
    from ..membership.token import parse_given_token

    check_api_body(body)  # ConfigError naming the flag: exit 2
    try:
        if "peer" in body:
            split_peer(str(body["peer"]), 7948)
        if "token" in body:
            parse_given_token(str(body["token"]))
    except ConfigError as exc:
        raise UsageError(exc.message, field=exc.field) from exc


def _with_join_command(result: dict[str, Any], config: Any) -> dict[str, Any]:
    if "token" in result and "join_addr" in result:
        return {**result, "join_command": join_command_text(result["join_addr"], result["token"])}
    return result


def join_command_text(join_addr: str, token: str) -> str:
    """How to join, with the token in the environment rather than in the joiner's argv."""
    return f"{TOKEN_ENV}={token} p2porch join {join_addr}"


def cmd_init(args: argparse.Namespace) -> int:
    def render(d: dict[str, Any]) -> str:
        if d.get("warning"):
            print(f"warning: {d['warning']}", file=sys.stderr)
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
    result = client_for(args, timeout_s=LONG_OPERATION_TIMEOUT_S).post("/cluster/rotate-keys", {})
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
            + ("" if d.get("settled", True) else "\nwarning: no write committed in the new epoch yet")
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


#: the ids events carry for ``--format``'s ``.Actor.ID`` (their text lines name the object instead)
_OBJECT_IDS = ("service_id", "node_id", "network_id", "secret_id", "config_id")


def cmd_events(args: argparse.Namespace) -> int:
    """Docker's ``events``: live events; with ``--since``/``--until`` first the node's kept ones between
    them, and with ``--until`` the stream ends there; ``--filter`` keeps the matching ones."""
    from .service_read import since_epoch  # the time flags as logs --since reads them

    now = time.time()
    since = since_epoch(args.since, now, "--since") if args.since is not None else None
    until = since_epoch(args.until, now, "--until") if args.until is not None else None
    if since is not None and until is not None and until < since:
        raise UsageError(f"--until: {args.until!r} is before --since {args.since!r}", field="--until")
    times = {k: f"{v:.3f}" for k, v in (("since", since), ("until", until)) if v is not None}
    line = view_lines(args, _event_path)  # Docker's `events --format '{{json .}}'`, `'{{.Actor.ID}}'`
    for event in client_for(args).stream("/events", **times):
        if args.filters and not apply_filters([event], args.filters, EVENT_FILTERS):
            continue
        if line is not None:
            print(line(event), flush=True)
            continue
        if wants_json(args):
            print(json.dumps(event), flush=True)
            continue
        at = time.strftime("%H:%M:%S", time.localtime(event.get("at", 0)))
        hidden: tuple[str, ...] = (
            ("at", "type", "inputs", "from", "to", "reason") if "text" in event else ("at", "type")
        )
        hidden += _OBJECT_IDS
        details = " ".join(f"{k}={v}" for k, v in event.items() if k not in hidden and v is not None)
        print(f"{at} {event.get('type', '?'):8} {details}", flush=True)
    return EXIT_OK
