"""``p2porch network ...``: create, ls, inspect, rm, prune user-defined networks (shell).

``network inspect --overlay`` shows this node's overlay (lease, VTEP, programmed peers); ``network inspect``
without a NAME (and without ``--overlay``) is a usage error (exit 2), as ``docker network inspect`` is.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError, NotFoundError
from ..model.netrefs import check_network_name
from .docker_paths import network_path
from .docker_types import GoTime
from .filters import NETWORK_FILTERS, NETWORK_VALUES, add_filter, apply_filters
from .goformat import add_list_format, inspect_each, labels_text, listing
from .node import cmd_network_inspect
from .util import (
    EXIT_OK,
    UsageError,
    add_ids_only,
    as_given,
    client_for,
    deleter,
    emit,
    noun_actions,
    remove_each,
    table,
    wants_json,
)

COLUMNS = ["id", "name", "driver", "scope", "internal", "services"]
#: Docker's ``network ls --format`` fields beside the columns: overlay networks here are IPv4 only
EXTRA = ("ipv4", "ipv6", "labels", "created_at")
#: the fields of a row's ``{{json .}}``: docker/cli's network row's (``{{.Services}}`` is p2porch's own)
DOCKER_JSON = ("id", "name", "driver", "scope", "ipv4", "ipv6", "internal", "labels", "created_at")
#: docker/cli's ``network ls`` ``table`` headers where they are not the field's words in capitals
DOCKER_HEADERS = {"id": "NETWORK ID", "created_at": "CREATED AT"}
#: why Swarm's ``ingress`` network is not there (``network inspect|rm ingress``)
INGRESS_HINT = (
    "p2porch has no ingress network: the routing mesh is built in, NAT rules on every node for each "
    "published port (docs/traffic.md); nothing to remove or customize"
)
#: network prune's ``--filter``: Docker's ``label`` (its ``until`` is not taken)
PRUNE_FILTERS = {"label": NETWORK_FILTERS["label"]}


def _created_text(at: float | None) -> str:
    """A network's creation time as Docker's ``{{.CreatedAt}}`` prints it (Go's ``time.String()``); ""
    for a network with no recorded time."""
    return GoTime(at).go_text() if at else ""


def _labels(values: list[str] | None) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not key or not sep:
            raise UsageError(f"--label {item!r}: expected KEY=VALUE", field="--label")
        out[key] = value
    return out


def _describe(view: dict[str, Any]) -> str:
    created = datetime.datetime.fromtimestamp(view.get("created_at") or 0, datetime.UTC).isoformat(
        " ", "seconds"
    )
    lines = [
        f"network {view['name']}" + (" (built-in default)" if view.get("builtin") else ""),
        f"  id:         {view['id']}",
        f"  driver:     {view['driver']}, scope {view['scope']}",
        f"  internal:   {str(view['internal']).lower()}",
        f"  attachable: {str(view['attachable']).lower()}",
        f"  services:   {', '.join(view.get('services') or []) or '-'}",
        f"  created:    {created}",
    ]
    if view.get("labels"):
        lines.append("  labels:     " + ", ".join(f"{k}={v}" for k, v in sorted(view["labels"].items())))
    if view.get("tasks"):
        lines.append(
            table(["task", "node", "address"], [[t["task"], t["node"], t["address"]] for t in view["tasks"]])
        )
    return "\n".join(lines)


def cmd_create(args: argparse.Namespace) -> int:
    try:
        check_network_name(args.name, "NAME")
    except ConfigError as exc:
        raise UsageError(exc.message, field="NAME") from exc
    if args.driver != "overlay":
        raise UsageError(f"--driver: {args.driver!r} is not supported (use overlay)", field="--driver")
    body = {
        "name": args.name,
        "driver": args.driver,
        "internal": args.internal,
        "attachable": args.attachable,
        "labels": _labels(args.label),
    }
    emit(args, client_for(args).post("/networks", body), lambda net: net["id"])  # as `docker network create`
    return EXIT_OK


def cmd_ls(args: argparse.Namespace) -> int:
    rows = apply_filters(client_for(args).get("/networks"), args.filters, NETWORK_FILTERS, NETWORK_VALUES)
    emit(
        args,
        rows,
        lambda rs: listing(
            args,
            COLUMNS,
            [
                [
                    r["id"] if args.no_trunc else r["id"][:12],
                    r["name"],
                    r["driver"],
                    r["scope"],
                    str(r["internal"]).lower(),
                    ",".join(r["services"]) or "-",
                ]
                for r in rs
            ],
            EXTRA,
            [("true", "false", labels_text(r.get("labels")), _created_text(r.get("created_at"))) for r in rs],
            docker_json=DOCKER_JSON,
            labels=[r.get("labels") for r in rs],
            headers=DOCKER_HEADERS,
        ),
    )
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    if args.overlay:
        if args.names:
            raise UsageError("NAME: give a network NAME or --overlay, not both", field="NAME")
        return cmd_network_inspect(args)
    if not args.names:
        raise UsageError(
            "NAME: the network to inspect is required (`p2porch network ls` lists them; this node's "
            "overlay: `p2porch network inspect --overlay`)",
            field="NAME",
        )
    client = client_for(args)
    return inspect_each(
        args, args.names, _ingress_hint(lambda name: client.get(f"/networks/{name}")), _describe, network_path
    )


def _ingress_hint(call: Callable[[str], Any]) -> Callable[[str], Any]:
    """``call(name)``; Swarm's ``ingress`` network, missing, is said to be built in (exit 1 still)."""

    def hinted(name: str) -> Any:
        try:
            return call(name)
        except NotFoundError as exc:
            if name != "ingress":
                raise
            raise NotFoundError(f"{exc.message}: {INGRESS_HINT}", field=exc.field) from exc

    return hinted


def cmd_rm(args: argparse.Namespace) -> int:
    def remove(client: Any, name: str) -> Any:
        try:
            return _ingress_hint(lambda n: client.delete(f"/networks/{n}"))(name)
        except NotFoundError:
            if args.force:  # as Docker's --force: a network that does not exist is no error
                return None
            raise

    # as docker/cli's network rm: each failure on stderr as it comes (its other rm commands keep them)
    # a missing one with --force: nothing printed, as docker/cli's
    return remove_each(args, args.names, remove, lambda n, r: n if r else "", errors_at_once=True)


PRUNE_WARNING = (
    "WARNING! This will remove all custom networks not used by at least one service.\n"
    "Are you sure you want to continue? [y/N] "
)


def cmd_prune(args: argparse.Namespace) -> int:
    """As ``docker network prune``: every user network no service uses (and that matches ``--filter
    label=...``), after a ``[y/N]`` question on stdin unless ``--force``; prints ``Deleted Networks:``
    and their names. A network a service starts using meanwhile is refused by the daemon, named on stderr."""
    client = client_for(args)
    if not args.force:
        print(PRUNE_WARNING, end="", flush=True)  # as Docker's, on stdout
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return EXIT_OK
    unused = [r for r in client.get("/networks") if not r.get("builtin") and not r.get("services")]
    names = [r["name"] for r in apply_filters(unused, args.filters, PRUNE_FILTERS)]
    if names and not wants_json(args):
        print("Deleted Networks:", flush=True)
    return remove_each(args, names, deleter("/networks/{}"), as_given, errors_at_once=True)


def add_network_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    action = noun_actions(
        sub, common, "network", "Manage networks (services on different networks are isolated)"
    )
    create = action("create", "Create an overlay network", cmd_create)
    create.add_argument("name", metavar="NAME")
    create.add_argument("--driver", "-d", default="overlay", help="overlay (the only driver)")
    create.add_argument("--internal", action="store_true", help="no traffic out of the cluster")
    create.add_argument("--attachable", action="store_true", help="recorded (Docker compatibility)")
    create.add_argument("--label", "-l", action="append", metavar="KEY=VALUE", help="metadata (repeatable)")
    ls = add_ids_only(action("ls", "List networks and the services on them", cmd_ls))
    ls.add_argument("--no-trunc", action="store_true", help="full network ids")
    add_filter(add_list_format(ls, COLUMNS, extra=EXTRA, labelled=True), NETWORK_FILTERS, NETWORK_VALUES)
    inspect = action("inspect", "Show a network, or with --overlay this node's overlay", cmd_inspect)
    inspect.add_argument("names", metavar="NAME", nargs="*")
    inspect.add_argument(
        "--overlay", action="store_true", help="this node's overlay instead: lease, VTEP, programmed peers"
    )
    inspect.add_argument(
        "--format",
        "-f",
        metavar="TEMPLATE",
        help="Go template over the JSON view, e.g. '{{.Name}} {{.Driver}}'",
    )
    rm = action("rm", "Remove networks no service uses", cmd_rm)
    rm.add_argument("names", metavar="NAME", nargs="+")
    rm.add_argument("--force", "-f", action="store_true", help="no error for a network that does not exist")
    prune = action("prune", "Remove every network no service uses", cmd_prune)
    prune.add_argument("--force", "-f", action="store_true", help="do not ask for confirmation")
    add_filter(prune, PRUNE_FILTERS, short=False)
