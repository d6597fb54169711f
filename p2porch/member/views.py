"""Adapters from committed cluster state to each subsystem's own input types (pure).

The subsystems (overlay, DNS, agent, scheduler) never import the Raft state model; the daemon hands
them what these functions derive from a :class:`ClusterState` snapshot. No I/O, no clock.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

from ..agent.model import KIND_INIT, KIND_SIDECAR, MemberSpec, MountSpec, PortSpec, TaskAssignment, TaskReport
from ..dns.zone import PortEntry, TaskEntry, ZoneData
from ..model import DesiredState, Mount, NodeStatus, Service, ServiceSpec, Task, TaskHealth, TaskState
from ..model.netrefs import HOST_NETWORK, on_host_network
from ..netoverlay.ingress import IngressPort
from ..netoverlay.plan import LocalNode, OverlayPeer
from ..netoverlay.traffic import Backend, TrafficSettings
from ..netoverlay.vip import ServiceVip
from ..raft import commands as C
from ..raft.state import ClusterState
from ..raft.vips import VIP_CIDR
from ..stack.names import stack_dns_aliases, stack_dns_search
from .held import hold_serves

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
    peers = (overlay_peer(state, node_id, self_id, unreachable) for node_id in sorted(state.nodes))
    return [p for p in peers if p is not None]


def overlay_peer(
    state: ClusterState, node_id: str, self_id: str, unreachable: frozenset[str] = frozenset()
) -> OverlayPeer | None:
    """``node_id`` as an overlay peer, or None when it is not one (itself, gone, not live, no lease, dead
    in gossip): one node's part of ``overlay_peers``, for a change that names it.

    A node held while its daemon restarts (``Node.restart_until``, leader/restart_hold.py) stays a peer
    although gossip calls it dead: its kernel keeps forwarding for its running containers, so its own
    published ports and its tasks' connections, DNATed to tasks elsewhere, must still reach them and be
    answered (dropped, each such connection hung until the node was back). Its own tasks stay in the
    other nodes' answers and rules while the hold serves (``node_down``, ``held.data_path_out``)."""
    node = state.nodes.get(node_id)
    lease = state.leases.get(node_id)
    if (
        node is None
        or node_id == self_id
        or lease is None
        or node.status not in LIVE_NODE_STATUSES
        or (node_id in unreachable and not node.restart_until)
    ):
        return None
    return OverlayPeer(
        node_id=node_id, underlay_addr=node.addr, subnet=lease.subnet, vxlan_port=node.vxlan_port
    )


def _task_ports(spec: ServiceSpec) -> tuple[PortEntry, ...]:
    return tuple(PortEntry(p.target, p.protocol) for p in spec.all_publish)


def task_is_healthy(task: Task) -> bool:
    """A task counts as healthy unless its health check says otherwise (no check = healthy)."""
    return task.health not in (TaskHealth.UNHEALTHY, TaskHealth.STARTING)


def dns_zone(state: ClusterState, nameservers: tuple[str, ...] = (), local_node: str = "") -> ZoneData:
    """Services with their running tasks' overlay addresses, and nodes with their advertise addresses;
    ``local_node`` (an id): the zone prefers tasks in that node's region (its ``region`` label)."""
    by_service: dict[str, list[Task]] = {}
    for task in state.tasks.values():
        by_service.setdefault(task.service_id, []).append(task)
    entries = {
        sid: task_entries(state, by_service.get(sid, ()), _task_ports(service.spec))
        for sid, service in state.services.items()
    }
    return zone_of(state, entries, nameservers, local_node)


def zone_of(
    state: ClusterState, entries: Mapping[str, list[TaskEntry]], nameservers: tuple[str, ...], local_node: str
) -> ZoneData:
    """The zone input of ``state`` given each service's task entries (``entries`` by service id)."""
    return zone_with(state, zone_names(state), zone_nodes(state), entries, nameservers, local_node)


#: a zone's names of the services (name or stack alias -> service id, in the zone's order) and their VIPs
ZoneNames = tuple[dict[str, str], dict[str, str]]


def zone_names(state: ClusterState) -> ZoneNames:
    """The zone's service names and VIPs (a function of ``state.services`` alone): each service's name,
    and a stack member's ``<short>.<stack>`` aliases where no service or alias took them first."""
    names: dict[str, str] = {}
    vips: dict[str, str] = {}
    for service in state.services.values():
        names[service.name] = service.service_id
        if service.vip:
            vips[service.name] = service.vip
        for alias in stack_dns_aliases(service.spec.labels_dict()):  # "<short>.<stack>" inside a stack
            names.setdefault(alias, service.service_id)
            if service.vip:
                vips.setdefault(alias, service.vip)
    return names, vips


def zone_nodes(state: ClusterState) -> dict[str, str]:
    """The zone's node names and addresses (a function of ``state.nodes`` alone)."""
    return {n.name: n.addr for n in state.nodes.values() if n.status != NodeStatus.LEFT}


def zone_with(
    state: ClusterState,
    names: ZoneNames,
    nodes: Mapping[str, str],
    entries: Mapping[str, list[TaskEntry]],
    nameservers: tuple[str, ...],
    local_node: str,
) -> ZoneData:
    """``zone_of`` from ``zone_names(state)`` and ``zone_nodes(state)`` (kept by a caller while those maps
    stay the same objects; never changed here)."""
    return ZoneData(
        domain=state.domain or "p2p",
        services={name: entries[sid] for name, sid in names[0].items()},
        nodes=nodes,
        nameservers=nameservers,
        version=state.version,
        local_site=_region(state, local_node),
        vips=names[1],
    )


def task_entries(state: ClusterState, tasks: Iterable[Task], ports: tuple[PortEntry, ...]) -> list[TaskEntry]:
    """A service's DNS entries: its tasks with an address, by slot; a task on a down node (a cut-off
    site's tasks kept in state, on_site_loss) or on a held one that does not serve is not running."""
    return [task_entry(state, t, ports) for t in sorted(tasks, key=task_order) if t.address]


def task_order(task: Task) -> tuple[int, str]:
    """The order of a service's DNS entries."""
    return (task.slot, task.task_id)


def task_entry(state: ClusterState, t: Task, ports: tuple[PortEntry, ...]) -> TaskEntry:
    """One task's DNS entry (a task with an address): a function of the task, ``ports`` and the
    region and down status of its node."""
    return TaskEntry(
        slot=t.slot,
        address=t.address,
        healthy=task_is_healthy(t),
        running=t.state == TaskState.RUNNING
        and t.desired_state == DesiredState.RUNNING
        and not node_down(state, t.node_id),
        ports=ports,
        site=_region(state, t.node_id),
    )


def node_down(state: ClusterState, node_id: str | None) -> bool:
    """Whether the tasks on ``node_id`` leave the DNS answers: its node is down, or held while its daemon
    restarts but not serving (its engine recorded unreachable, ``held.hold_serves``). A held node's
    running containers keep serving through the restart (the ingress and VIP rules keep them alike,
    ``held.data_path_out``); the leader marks it down when its hold runs out, and a host shutting down
    leaves gossip, which marks it down at once."""
    node = state.nodes.get(node_id or "")
    return node is not None and (
        node.status == NodeStatus.DOWN or (bool(node.restart_until) and not hold_serves(node))
    )


def _region(state: ClusterState, node_id: str | None) -> str:
    node = state.nodes.get(node_id or "")
    return node.labels.get("region", "") if node is not None else ""


def load_balanced(spec: ServiceSpec) -> bool:
    """Whether the service's tasks are backends of a VIP or of an ingress port (a stop must drain)."""
    return spec.endpoint_mode == "vip" or bool(spec.ingress_ports)


def is_backend(task: Task, live_nodes: frozenset[str]) -> bool:
    """A task receives ingress/VIP connections while it runs, should run, is healthy and its node is live."""
    return (
        task.state == TaskState.RUNNING
        and task.desired_state == DesiredState.RUNNING
        and task_is_healthy(task)
        and bool(task.address)
        and task.node_id in live_nodes
    )


def traffic_inputs(
    state: ClusterState, node_id: str, unreachable: frozenset[str] = frozenset()
) -> tuple[list[IngressPort], list[ServiceVip], TrafficSettings] | None:
    """This node's ingress ports and VIPs with their backends; None before the node has a lease.

    Backends are the running, healthy tasks that should run, on nodes that are ready and not in
    ``unreachable``: the member passes ``held.data_path_out`` (dead or left in its gossip unless held and
    serving: a node killed -9 drops out as soon as gossip declares it dead). An ingress port
    published by two services (possible only through a race) belongs to the older one."""
    if node_id not in state.leases:
        return None
    live = live_nodes(state, unreachable)
    backends: dict[str, list[Backend]] = {}
    for task in state.tasks.values():
        if is_backend(task, live):
            backends.setdefault(task.service_id, []).append(Backend(task.address, task.node_id == node_id))
    return traffic_of(state, node_id, {sid: tuple(found) for sid, found in backends.items()})


def live_nodes(state: ClusterState, unreachable: frozenset[str] = frozenset()) -> frozenset[str]:
    """Nodes that take part in the data path: ready, and not dead in this node's gossip."""
    return frozenset(n for n in state.nodes if is_live(state, n, unreachable))


def is_live(state: ClusterState, node_id: str, unreachable: frozenset[str] = frozenset()) -> bool:
    """Whether ``node_id`` is one of ``live_nodes``."""
    node = state.nodes.get(node_id)
    return node is not None and node.status in LIVE_NODE_STATUSES and node_id not in unreachable


def traffic_of(
    state: ClusterState, node_id: str, backends: Mapping[str, tuple[Backend, ...]]
) -> tuple[list[IngressPort], list[ServiceVip], TrafficSettings] | None:
    """``traffic_inputs`` given each service's backends (by service id, in the order of ``state.tasks``)."""
    if node_id not in state.leases:
        return None
    parts = (service_traffic(s, backends.get(s.service_id, ())) for s in traffic_order(state))
    return traffic_joined(state, node_id, parts)


def traffic_order(state: ClusterState) -> list[Service]:
    """The order ``traffic_of`` takes the services in: the oldest first (an ingress port two services
    publish belongs to the older one)."""
    return sorted(state.services.values(), key=lambda s: (s.created_at, s.service_id))


#: one service's part of the traffic inputs: its VIP (None: it has none) and its ingress ports by key
ServiceTraffic = tuple[ServiceVip | None, tuple[tuple[tuple[str, int], IngressPort], ...]]


def service_traffic(service: Service, backends: tuple[Backend, ...]) -> ServiceTraffic:
    """``service``'s VIP and ingress ports with ``backends`` (a function of the service record and them)."""
    vip = ServiceVip(service.service_id, service.vip, backends) if service.vip else None
    ports = []
    for port in service.spec.ingress_ports:
        published = service.published_port(port)  # chosen, or assigned by the FSM
        if published is not None:
            key = (port.protocol, published)
            ports.append(
                (
                    key,
                    IngressPort(published, port.target, port.protocol, backends, service.spec.ingress_policy),
                )
            )
    return vip, tuple(ports)


def traffic_joined(
    state: ClusterState, node_id: str, parts: Iterable[ServiceTraffic]
) -> tuple[list[IngressPort], list[ServiceVip], TrafficSettings] | None:
    """``traffic_of`` from each service's part, in ``traffic_order``: an ingress port's first publisher
    keeps it."""
    lease = state.leases.get(node_id)
    if lease is None:
        return None
    settings = TrafficSettings(cluster_cidr=state.cluster_cidr, local_subnet=lease.subnet, vip_cidr=VIP_CIDR)
    ports: dict[tuple[str, int], IngressPort] = {}
    vips: list[ServiceVip] = []
    for vip, published in parts:
        if vip is not None:
            vips.append(vip)
        for key, port in published:
            ports.setdefault(key, port)
    return list(ports.values()), vips, settings


def _env_name(service: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in service.upper())


def discovery_env(state: ClusterState) -> dict[str, str]:
    """Kubernetes-style ``<NAME>_SERVICE_HOST`` / ``_SERVICE_PORT[_<port>[_UDP]]`` of every VIP service.

    A task gets the variables of the services that exist when its container is created; the environment of
    a running container never changes (services created later are found through DNS)."""
    env: dict[str, str] = {}
    for service in sorted(state.services.values(), key=lambda s: s.name):
        if not service.vip:
            continue
        prefix = _env_name(service.name)
        env[f"{prefix}_SERVICE_HOST"] = service.vip
        ports = sorted(
            {(p.protocol, p.target) for p in service.spec.all_publish}, key=lambda p: (p[0] != "tcp", p[1])
        )
        if ports:
            env[f"{prefix}_SERVICE_PORT"] = str(ports[0][1])
        for protocol, number in ports:
            suffix = "" if protocol == "tcp" else "_UDP"
            env[f"{prefix}_SERVICE_PORT_{number}{suffix}"] = str(number)
    return env


def task_assignment(
    task: Task,
    spec: ServiceSpec,
    node_name: str,
    network: str,
    dns_server: str,
    domain: str,
    discovery: dict[str, str] | None = None,
) -> TaskAssignment:
    """What the agent needs to run ``task`` of a service whose validated spec is ``spec``; ``discovery``
    (see ``discovery_env``) is added to the environment under the service's own variables."""
    return TaskAssignment(
        task_id=task.task_id,
        service_name=spec.name,
        service_id=task.service_id,
        slot=task.slot,
        node_name=node_name,
        node_id=task.node_id or "",
        global_mode=spec.mode.startswith("global"),
        image=spec.image,
        command=spec.command,
        entrypoint=spec.entrypoint or None,
        env={**(discovery or {}), **spec.env_dict()},
        labels=spec.labels_dict(),
        service_labels=dict(spec.service_labels),
        mounts=agent_mounts(spec.mounts),
        ports=tuple(  # ingress ports are served by the cluster's NAT rules, not bound on the node
            PortSpec(target=p.target, published=p.published or 0, protocol=p.protocol, host_ip=p.host_ip)
            for p in spec.all_publish
            if not p.ingress
        ),
        cpu_limit_nanos=spec.limit_cpu_nanos,
        memory_limit_bytes=spec.limit_memory_bytes,
        cpu_reservation_nanos=spec.reserve_cpu_nanos,
        memory_reservation_bytes=spec.reserve_memory_bytes,
        network=HOST_NETWORK if on_host_network(spec.networks) else network,  # the node's own namespace
        dns_servers=(dns_server,) if dns_server else (),
        dns_search=stack_dns_search(spec.labels_dict(), domain),
        healthcheck=spec.health,
        desired_state=task.desired_state,
        state=task.state,
        spec_version=task.spec_version,
        stop_grace_s=spec.stop_grace_period_s,
        started_at=task.started_at,
        drain_index=(
            task.version if task.desired_state == DesiredState.SHUTDOWN and load_balanced(spec) else 0
        ),
        drain_ports=tuple(sorted({p.target for p in spec.all_publish if p.protocol == "tcp"})),
        drain_listeners=spec.endpoint_mode == "vip",
        ready_ports=tuple(sorted({p.target for p in spec.ingress_ports if p.protocol == "tcp"})),
        user=spec.user,
        workdir=spec.workdir,
        options=spec.container.to_dict(),
        members=group_members(spec),
    )


def agent_mounts(mounts: Iterable[Mount]) -> tuple[MountSpec, ...]:
    """A spec's mounts as the agent creates them."""
    return tuple(
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
            volume_labels=dict(m.volume_labels),
            tmpfs_options=m.tmpfs_options,
            subpath=m.subpath,
        )
        for m in mounts
    )


def group_members(spec: ServiceSpec) -> tuple[MemberSpec, ...]:
    """A task group's init containers (in order) and sidecars as the agent runs them."""
    return tuple(
        MemberSpec(
            name=c.name,
            kind=kind,
            image=c.image,
            command=c.command,
            entrypoint=c.entrypoint or None,
            env=c.env_dict(),
            user=c.user,
            workdir=c.workdir,
            cpu_limit_nanos=c.limit_cpu_nanos,
            memory_limit_bytes=c.limit_memory_bytes,
            cpu_reservation_nanos=c.reserve_cpu_nanos,
            memory_reservation_bytes=c.reserve_memory_bytes,
            healthcheck=c.health,
            mounts=agent_mounts(c.mounts),
            privileged=c.privileged,
            share_pid=bool(c.pid),
            share_ipc=bool(c.ipc),
            cap_add=c.cap_add,
            cap_drop=c.cap_drop,
        )
        for kind, group in ((KIND_INIT, spec.init_containers), (KIND_SIDECAR, spec.sidecars))
        for c in group
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
    discovery = discovery_env(state)
    out = []
    for task in state.tasks.values():
        if task.node_id != node_id:
            continue
        service = state.services.get(task.service_id)
        spec = service.spec if service is not None else None
        if spec is None:
            out.append(shutdown_assignment(task, node_name))
        else:
            out.append(task_assignment(task, spec, node_name, network, dns, state.domain, discovery))
    return out


def status_report(report: TaskReport, committed: Task | None = None) -> C.TaskStatusReport:
    """An agent report as the ``ReportTaskStates`` command carries it (every field reported). A report
    of the state the ``committed`` task already has keeps that state's time: ``service ps`` SINCE is
    since the state changed, as Docker's, not since the agent last said so (an agent that restarts,
    as on the key switch of ``node rm``, reports every task again)."""
    kept = committed.state_at if committed is not None and committed.state == report.state else 0.0
    return C.TaskStatusReport(
        task_id=report.task_id,
        state=TaskState(report.state),
        state_at=kept or report.at,
        error=report.error,
        container_id=report.container_id,
        address=report.address,
        health=TaskHealth(report.health),
        exit_code=report.exit_code,
        reports_exit_code=True,
    )
