"""Adapters from committed cluster state to each subsystem's own input types (pure).

The subsystems (overlay, DNS, agent, scheduler) never import the Raft state model; the daemon hands
them what these functions derive from a :class:`ClusterState` snapshot. No I/O, no clock.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from ..agent.model import HealthCheckSpec, MountSpec, PortSpec, TaskAssignment
from ..dns.zone import PortEntry, TaskEntry, ZoneData
from ..errors import ConfigError
from ..leader.scheduling import service_spec
from ..netoverlay.plan import LocalNode, OverlayPeer
from ..raft.state import ClusterState, TaskRecord
from ..stack.names import stack_dns_aliases, stack_dns_search

# A node whose status is one of these takes part in the data path.
LIVE_NODE_STATUSES = ("ready",)


def gateway_of(subnet: str) -> str:
    """The bridge gateway (.1) of a node's leased subnet: its containers' DNS server."""
    return str(ipaddress.IPv4Network(subnet).network_address + 1)


def local_overlay_node(state: ClusterState, node_id: str, bind_addr: str = "") -> LocalNode | None:
    """This node's VTEP: its own (bind) address, which differs from its record's behind a NAT."""
    node = state.nodes.get(node_id)
    lease = state.leases.get(node_id)
    if node is None or lease is None:
        return None
    return LocalNode(node_id=node_id, underlay_addr=bind_addr or node.addr, subnet=lease.subnet)


def overlay_peers(
    state: ClusterState, self_id: str, unreachable: frozenset[str] = frozenset()
) -> list[OverlayPeer]:
    """Every other live node with a lease, by node id; ``unreachable`` ids (dead in gossip) are left out."""
    peers = []
    for node_id in sorted(state.nodes):
        node = state.nodes[node_id]
        lease = state.leases.get(node_id)
        if (
            node_id == self_id
            or lease is None
            or node.status not in LIVE_NODE_STATUSES
            or node_id in unreachable
        ):
            continue
        peers.append(
            OverlayPeer(
                node_id=node_id, underlay_addr=node.addr, subnet=lease.subnet, vxlan_port=node.vxlan_port
            )
        )
    return peers


def _task_ports(spec: Mapping[str, Any]) -> tuple[PortEntry, ...]:
    ports = []
    for entry in spec.get("publish", ()) or ():
        if isinstance(entry, Mapping) and isinstance(entry.get("target"), int):
            ports.append(PortEntry(int(entry["target"]), str(entry.get("protocol", "tcp"))))
    return tuple(ports)


def task_is_healthy(task: TaskRecord) -> bool:
    """A task counts as healthy unless its health check says otherwise (no check = healthy)."""
    return task.health not in ("unhealthy", "starting")


def dns_zone(state: ClusterState, nameservers: tuple[str, ...] = (), local_node: str = "") -> ZoneData:
    """Services with their running tasks' overlay addresses, and nodes with their advertise addresses;
    ``local_node`` (an id): the zone prefers tasks in that node's region (its ``region`` label)."""
    services: dict[str, list[TaskEntry]] = {}
    by_service: dict[str, list[TaskRecord]] = {}
    for task in state.tasks.values():
        by_service.setdefault(task.service_id, []).append(task)
    for service in state.services.values():
        ports = _task_ports(service.spec)
        entries = [
            TaskEntry(
                slot=t.slot,
                address=t.address,
                healthy=task_is_healthy(t),
                running=t.state == "running" and t.desired_state == "running",
                ports=ports,
                site=_region(state, t.node_id),
            )
            for t in sorted(by_service.get(service.service_id, ()), key=lambda t: (t.slot, t.task_id))
            if t.address
        ]
        services[service.name] = entries
        for alias in stack_dns_aliases(service.spec.get("labels")):  # "<short>.<stack>" inside a stack
            services.setdefault(alias, entries)
    nodes = {n.name: n.addr for n in state.nodes.values() if n.status != "left"}
    return ZoneData(
        domain=state.domain or "p2p",
        services=services,
        nodes=nodes,
        nameservers=nameservers,
        version=state.version,
        local_site=_region(state, local_node),
    )


def _region(state: ClusterState, node_id: str | None) -> str:
    node = state.nodes.get(node_id or "")
    return node.labels.get("region", "") if node is not None else ""


def task_assignment(
    task: TaskRecord, spec: Any, node_name: str, network: str, dns_server: str, domain: str
) -> TaskAssignment:
    """What the agent needs to run ``task`` of a service whose validated spec is ``spec`` (a ServiceSpec)."""
    health = None
    if spec.health is not None:
        health = HealthCheckSpec(
            test=tuple(spec.health.test),
            interval_s=spec.health.interval_s,
            timeout_s=spec.health.timeout_s,
            retries=spec.health.retries,
            start_period_s=spec.health.start_period_s,
        )
    return TaskAssignment(
        task_id=task.task_id,
        service_name=spec.name,
        service_id=task.service_id,
        slot=task.slot,
        node_name=node_name,
        image=spec.image,
        command=spec.command,
        entrypoint=spec.entrypoint or None,
        env=spec.env_dict(),
        labels=spec.labels_dict(),
        mounts=tuple(
            MountSpec(
                type=m.type,
                source=m.source,
                target=m.target,
                read_only=m.readonly,
                volume_driver=m.volume_driver,
                volume_options=dict(m.volume_options),
                propagation=m.propagation,
                nocopy=m.nocopy,
                tmpfs_size_bytes=m.tmpfs_size_bytes,
                tmpfs_mode=m.tmpfs_mode,
                create_host_path=m.create_host_path,
            )
            for m in spec.mounts
        ),
        ports=tuple(
            PortSpec(target=p.target, published=p.published or 0, protocol=p.protocol, host_ip=p.host_ip)
            for p in spec.publish
        ),
        cpu_limit_nanos=spec.limit_cpu_nanos,
        memory_limit_bytes=spec.limit_memory_bytes,
        cpu_reservation_nanos=spec.reserve_cpu_nanos,
        memory_reservation_bytes=spec.reserve_memory_bytes,
        network=network,
        dns_servers=(dns_server,) if dns_server else (),
        dns_search=stack_dns_search(spec.labels_dict(), domain),
        healthcheck=health,
        desired_state=task.desired_state,
        state=task.state,
        spec_version=task.spec_version,
        stop_grace_s=spec.stop_grace_period_s,
        user=spec.user,
        workdir=spec.workdir,
        options=spec.container.to_dict(),
    )


def shutdown_assignment(task: TaskRecord, node_name: str) -> TaskAssignment:
    """A task whose service no longer exists: all the agent can do is stop it, with its own grace."""
    return TaskAssignment(
        task_id=task.task_id,
        service_name="",
        service_id=task.service_id,
        slot=task.slot,
        node_name=node_name,
        image="",
        desired_state="shutdown",
        state=task.state,
        spec_version=task.spec_version,
        stop_grace_s=task.stop_grace_s,
    )


def agent_assignments(
    state: ClusterState, node_id: str, node_name: str, network: str
) -> list[TaskAssignment]:
    """Every task committed to ``node_id`` as its agent runs it; a task whose service is gone or has an
    unreadable spec can only be stopped. Its containers use the node's bridge gateway as DNS server."""
    lease = state.leases.get(node_id)
    dns = gateway_of(lease.subnet) if lease else ""
    out = []
    for task in state.tasks.values():
        if task.node_id != node_id:
            continue
        service = state.services.get(task.service_id)
        try:
            spec = service_spec(service.spec) if service is not None else None
        except ConfigError:
            spec = None
        if spec is None:
            out.append(shutdown_assignment(task, node_name))
        else:
            out.append(task_assignment(task, spec, node_name, network, dns, state.domain))
    return out
