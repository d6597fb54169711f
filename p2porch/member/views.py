"""Adapters from committed cluster state to each subsystem's own input types (pure).

The subsystems (overlay, DNS, agent, scheduler) never import the Raft state model; the daemon hands
them what these functions derive from a :class:`ClusterState` snapshot. No I/O, no clock.
"""

from __future__ import annotations

import ipaddress

from ..agent.model import MountSpec, PortSpec, TaskAssignment, TaskReport
from ..dns.zone import PortEntry, TaskEntry, ZoneData
from ..model import DesiredState, NodeStatus, ServiceSpec, Task, TaskHealth, TaskState
from ..netoverlay.plan import LocalNode, OverlayPeer
from ..raft import commands as C
from ..raft.state import ClusterState
from ..stack.names import stack_dns_aliases, stack_dns_search

# A node whose status is one of these takes part in the data path.
LIVE_NODE_STATUSES = (NodeStatus.READY,)


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


def _task_ports(spec: ServiceSpec) -> tuple[PortEntry, ...]:
    return tuple(PortEntry(p.target, p.protocol) for p in spec.publish)


def task_is_healthy(task: Task) -> bool:
    """A task counts as healthy unless its health check says otherwise (no check = healthy)."""
    return task.health not in (TaskHealth.UNHEALTHY, TaskHealth.STARTING)


def dns_zone(state: ClusterState, nameservers: tuple[str, ...] = (), local_node: str = "") -> ZoneData:
    """Services with their running tasks' overlay addresses, and nodes with their advertise addresses;
    ``local_node`` (an id): the zone prefers tasks in that node's region (its ``region`` label)."""
    services: dict[str, list[TaskEntry]] = {}
    by_service: dict[str, list[Task]] = {}
    for task in state.tasks.values():
        by_service.setdefault(task.service_id, []).append(task)
    for service in state.services.values():
        ports = _task_ports(service.spec)
        entries = [
            TaskEntry(
                slot=t.slot,
                address=t.address,
                healthy=task_is_healthy(t),
                running=t.state == TaskState.RUNNING and t.desired_state == DesiredState.RUNNING,
                ports=ports,
                site=_region(state, t.node_id),
            )
            for t in sorted(by_service.get(service.service_id, ()), key=lambda t: (t.slot, t.task_id))
            if t.address
        ]
        services[service.name] = entries
        for alias in stack_dns_aliases(service.spec.labels_dict()):  # "<short>.<stack>" inside a stack
            services.setdefault(alias, entries)
    nodes = {n.name: n.addr for n in state.nodes.values() if n.status != NodeStatus.LEFT}
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
    task: Task, spec: ServiceSpec, node_name: str, network: str, dns_server: str, domain: str
) -> TaskAssignment:
    """What the agent needs to run ``task`` of a service whose validated spec is ``spec``."""
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
        healthcheck=spec.health,
        desired_state=task.desired_state,
        state=task.state,
        spec_version=task.spec_version,
        stop_grace_s=spec.stop_grace_period_s,
        user=spec.user,
        workdir=spec.workdir,
        options=spec.container.to_dict(),
    )


def shutdown_assignment(task: Task, node_name: str) -> TaskAssignment:
    """A task whose service no longer exists: all the agent can do is stop it, with its own grace."""
    return TaskAssignment(
        task_id=task.task_id,
        service_name="",
        service_id=task.service_id,
        slot=task.slot,
        node_name=node_name,
        image="",
        desired_state=DesiredState.SHUTDOWN,
        state=task.state,
        spec_version=task.spec_version,
        stop_grace_s=task.stop_grace_s,
    )


def agent_assignments(
    state: ClusterState, node_id: str, node_name: str, network: str
) -> list[TaskAssignment]:
    """Every task committed to ``node_id`` as its agent runs it; a task whose service is gone or has an
    its service gone can only be stopped. Its containers use the node's bridge gateway as DNS server."""
    lease = state.leases.get(node_id)
    dns = gateway_of(lease.subnet) if lease else ""
    out = []
    for task in state.tasks.values():
        if task.node_id != node_id:
            continue
        service = state.services.get(task.service_id)
        spec = service.spec if service is not None else None
        if spec is None:
            out.append(shutdown_assignment(task, node_name))
        else:
            out.append(task_assignment(task, spec, node_name, network, dns, state.domain))
    return out


def status_report(report: TaskReport) -> C.TaskStatusReport:
    """An agent report as the ``ReportTaskStates`` command carries it (every field reported)."""
    return C.TaskStatusReport(
        task_id=report.task_id,
        state=TaskState(report.state),
        state_at=report.at,
        error=report.error,
        container_id=report.container_id,
        address=report.address,
        health=TaskHealth(report.health),
        exit_code=report.exit_code,
        reports_exit_code=True,
    )
