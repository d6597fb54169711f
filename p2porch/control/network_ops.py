"""User-defined networks behind the API: create, list, inspect, remove (shell).

Owns checking a create request (name, driver, flags, labels) before it is written and presenting
networks with the services attached to them. The data path (isolation rules on every node) follows the
committed state in :mod:`p2porch.member.netpolicy`; this module only writes desired state.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import TYPE_CHECKING, Any

from ..api.server import Endpoint
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ConfigError, ConflictError, no_such
from ..model import NetworkRecord, TaskState
from ..model.metadata_limits import check_labels
from ..model.netrefs import (
    RESERVED_NETWORK_NAMES,
    NetworkAttachment,
    attached_networks,
    check_network_name,
    on_host_network,
    parse_attachments,
)
from ..raft import commands as C
from ..raft.commands_networks import NETWORK_DRIVERS
from ..raft.fsm_networks import DEFAULT_NETWORK, users_of
from ..raft.state import ClusterState

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager

__all__ = ["NetworkOps", "network_body", "network_endpoints"]

NETWORK_ID_BYTES = 8
_BODY_KEYS = {"name", "driver", "internal", "attachable", "labels", "subnet"}


def network_body(body: Any) -> dict[str, Any]:
    """A checked create request (name, driver, internal, attachable, labels); ConfigError names the field."""
    if not isinstance(body, dict):
        raise ConfigError("the network must be a JSON object", field="network")
    unknown = set(body) - _BODY_KEYS
    if unknown:
        raise ConfigError(f"unknown field(s) {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    name = check_network_name(body.get("name"), "name")
    if name in RESERVED_NETWORK_NAMES:
        raise ConfigError(f"network name {name!r} is reserved", field="name")
    driver = body.get("driver") or "overlay"
    if driver not in NETWORK_DRIVERS:
        raise ConfigError(
            f"driver {driver!r} is not supported (use {', '.join(NETWORK_DRIVERS)})", field="driver"
        )
    if body.get("subnet"):
        raise ConfigError(
            "p2porch networks share the cluster CIDR and are isolated by policy: a task's address comes from "
            "its node's lease, so a network has no subnet of its own (docs/overlay.md, Networks)",
            field="subnet",
        )
    for flag in ("internal", "attachable"):
        if not isinstance(body.get(flag, False), bool):
            raise ConfigError(f"{flag} must be true or false", field=flag)
    labels = body.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise ConfigError("labels must be a map of strings", field="labels")
    check_labels(labels, "labels")
    return {
        "name": name,
        "driver": driver,
        "internal": bool(body.get("internal", False)),
        "attachable": bool(body.get("attachable", False)),
        "labels": labels,
    }


def default_network_view(state: ClusterState) -> dict[str, Any]:
    """The built-in network of services that name none."""
    users = [s.name for s in state.services.values() if DEFAULT_NETWORK in attached_networks(s.spec.networks)]
    return {
        "id": "default",
        "name": DEFAULT_NETWORK,
        "driver": "overlay",
        "scope": "cluster",
        "internal": False,
        "attachable": False,
        "builtin": True,
        "labels": {},
        "services": sorted(set(users)),
        "created_at": state.created_at,
    }


def network_tasks(state: ClusterState, name: str) -> list[dict[str, Any]]:
    """The running tasks on network ``name``: ``{task, service, node, address}`` (Docker's "containers"),
    with the task's and its container's ids and its node's address (Docker's ``Peers``)."""
    out = []
    for svc in state.services.values():
        if name not in attached_networks(svc.spec.networks):
            continue
        for task in state.tasks_of_service(svc.service_id):
            if task.state == TaskState.RUNNING and task.address:
                node = state.nodes.get(task.node_id or "")
                out.append(
                    {
                        "task": f"{svc.name}.{task.slot}",
                        "service": svc.name,
                        "node": node.name if node else task.node_id,
                        "address": task.address,
                        "task_id": task.task_id,
                        "container_id": task.container_id,
                        "node_address": node.addr if node else "",
                    }
                )
    return sorted(out, key=lambda t: (t["service"], t["task"]))


def network_subnets(state: ClusterState) -> list[dict[str, str]]:
    """Where a network's addresses come from: each node's leased block of the cluster CIDR and its
    bridge's gateway (.1), as every network shares them (Docker's ``IPAM.Config``)."""
    out = []
    for node_id, lease in sorted(state.leases.items()):
        node = state.nodes.get(node_id)
        gateway = str(ipaddress.IPv4Network(lease.subnet).network_address + 1)
        out.append({"node": node.name if node else node_id, "subnet": lease.subnet, "gateway": gateway})
    return out


def network_view(state: ClusterState, record: NetworkRecord) -> dict[str, Any]:
    return {
        "id": record.network_id,
        "name": record.name,
        "driver": record.driver,
        "scope": "cluster",
        "internal": record.internal,
        "attachable": record.attachable,
        "builtin": False,
        "labels": dict(record.labels),
        "services": users_of(state, record.name),
        "created_at": record.created_at,
    }


class NetworkOps:
    """The API's view of networks; every write goes through the manager's Raft store."""

    def __init__(self, manager: ClusterManager, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.manager = manager
        self.clock = clock

    def _state(self) -> ClusterState:
        return self.manager.snapshot()

    def find(self, ref: str) -> NetworkRecord | None:
        """The record named (or with the id) ``ref``; None for the default network; NotFoundError else."""
        state = self._state()
        if ref in (DEFAULT_NETWORK, "default"):
            return None
        record = state.network_by_name(ref) or state.networks.get(ref)
        if record is None:
            matches = (
                [n for n in state.networks.values() if n.network_id.startswith(ref)] if len(ref) >= 4 else []
            )
            if len(matches) == 1:
                return matches[0]
            raise no_such("network", ref, field="NETWORK")
        return record

    def list_all(self) -> list[dict[str, Any]]:
        state = self._state()
        views = [network_view(state, r) for r in state.networks.values()]
        return [default_network_view(state), *sorted(views, key=lambda v: v["name"])]

    def inspect(self, ref: str) -> dict[str, Any]:
        record = self.find(ref)
        state = self._state()
        view = default_network_view(state) if record is None else network_view(state, record)
        view["tasks"] = network_tasks(state, view["name"])
        view["subnets"] = network_subnets(state)
        return view

    async def create(self, body: Any) -> dict[str, Any]:
        checked = network_body(body)
        if self._state().network_by_name(checked["name"]) is not None:
            raise ConflictError(f"a network named {checked['name']!r} already exists", field="name")
        network_id = secrets.token_hex(NETWORK_ID_BYTES)
        await self.manager.write(
            C.CreateNetwork(at=self.clock.now(), network_id=network_id, **checked).encode()
        )
        return self.inspect(checked["name"])

    async def remove(self, ref: str) -> dict[str, Any]:
        record = self.find(ref)
        if record is None:
            raise ConflictError(f"the default network {DEFAULT_NETWORK!r} cannot be removed", field="NETWORK")
        await self.manager.write(C.RemoveNetwork(at=self.clock.now(), name=record.name).encode())
        return {"removed": record.name, "id": record.network_id}


def network_endpoints(ops: NetworkOps) -> list[Endpoint]:
    """Create, list, inspect and remove networks."""

    async def create(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await ops.create(body)

    async def listing(body: dict[str, Any], params: dict[str, str]) -> Any:
        return ops.list_all()

    async def inspect(body: dict[str, Any], params: dict[str, str]) -> Any:
        return ops.inspect(params["network"])

    async def remove(body: dict[str, Any], params: dict[str, str]) -> Any:
        return await ops.remove(params["network"])

    return [
        Endpoint("POST", "/networks", create, "Create a network"),
        Endpoint("GET", "/networks", listing, "List networks (the default one first) and their services"),
        Endpoint("GET", "/networks/{network}", inspect, "Inspect a network"),
        Endpoint("DELETE", "/networks/{network}", remove, "Remove a network no service uses"),
    ]


def attached_targets(spec: dict[str, Any]) -> set[str]:
    """The networks a service spec is on: the ones it names, else the default one."""
    attached = parse_attachments(spec.get("networks") or [], "networks")
    return {a.target for a in attached} or {DEFAULT_NETWORK}


def network_changes(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Turn ``networks_add``/``networks_rm`` of an update into a whole ``networks`` list: removals by name,
    an addition replaces an attachment to the same network (new aliases). A service is always on a
    network: one that names none is on the default one, kept by an addition; removing the default
    network is refused when the service would be left on no other."""
    out = dict(changes)
    add = out.pop("networks_add", None) or []
    rm = out.pop("networks_rm", None) or []
    if not add and not rm:
        return out
    if not isinstance(add, list) or not isinstance(rm, list):
        raise ConfigError("networks_add and networks_rm must be lists", field="networks_add")
    added = parse_attachments(add, "networks_add")
    attached = parse_attachments(out.get("networks", current.get("networks") or []), "networks")
    # a service that names no network is on the default one, and an addition keeps it there as it
    # keeps any other (it dropped it: the service no longer reached the services it did); the host
    # network is a task's only one (Docker's --network host), so adding it leaves the default one
    on = attached or (NetworkAttachment(DEFAULT_NETWORK),)
    left = [a for a in on if a.target not in rm]
    # --network-rm front --network-rm p2porch of a service on [front]: left on the default one, refused below
    unnamed = DEFAULT_NETWORK in rm and not left and not added
    missing = [
        name
        for name in rm
        if name not in {a.target for a in on} and not (unnamed and name == DEFAULT_NETWORK)
    ]
    if missing:  # as --env-rm/--mount-rm: removing what is not there is a mistake, not "nothing changed"
        names = ", ".join(a.target for a in on)
        raise ConfigError(
            f"networks_rm: the service is not on network {missing[0]!r} (its networks: {names})",
            field="networks_rm",
        )
    if not attached and on_host_network(added):
        on = ()
    kept = [a for a in on if a.target not in rm and a.target not in {n.target for n in added}]
    if DEFAULT_NETWORK in rm and not kept and not added:  # naming none is the default one: not left
        raise ConfigError(
            f"networks_rm: a service is always on a network, and the default one ({DEFAULT_NETWORK}) when "
            "it names none: add another in the same update (--network-add NET --network-rm "
            f"{DEFAULT_NETWORK})",
            field="networks_rm",
        )
    networks = [a.to_dict() for a in (*kept, *added)]
    default_alone = [NetworkAttachment(DEFAULT_NETWORK).to_dict()]
    out["networks"] = [] if networks == default_alone else networks  # on the default one alone: names none
    return out
