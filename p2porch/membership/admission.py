"""Admission: what a joining node asks for, and how a member admits it (shell: writes through the store).

The joiner describes itself with :func:`node_request` (its address, ports, labels, host capacity and
public node key). The member it reaches runs :meth:`Admissions.admit` (admissions planned in turn,
committed together; :func:`plan_request` plans one): it checks the request against the address the
join connection comes from and the live nodes (``join_checks``), refuses a name already in use,
picks the role (voter until ``raft.voters`` is reached, else replica), records the node (a replica
from its own address ``ready``, else ``joining`` until gossip sees it alive: ``admitted_status``) and
leases its overlay subnet, in one Raft entry; the reply carries the cluster key
of the committed key epoch (sealed by the join handshake). A voter joins the Raft configuration later,
through the leader's autopilot, once it runs as one.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from ..clock import Clock
from ..config import Config
from ..context import ClusterStore
from ..errors import ConfigError
from ..leader.autopilot import voters_target
from ..model import Node, NodeRole, NodeStatus
from ..raft import commands as C
from ..raft.frames import cluster_key
from ..raft.state import ClusterState
from .addresses import NodeAddresses, node_addresses
from .admission_plan import AdmissionPlan, admitted_status, earlier_attempt, plan_admission, with_pending
from .join_checks import check_joiner, labels_fit_gossip
from .key_rotation import key_from_state
from .keys import b64, node_public_key
from .localstate import LocalClusterState

log = logging.getLogger(__name__)

__all__ = [
    "Admissions",
    "PlannedAdmission",
    "admission_reply",
    "guess_advertise_addr",
    "host_capacity",
    "is_local_addr",
    "local_addresses",
    "node_request",
    "plan_request",
]

#: writes one admission's commands in one Raft entry (``RaftStore.write_together``)
WriteTogether = Callable[[list[bytes]], Awaitable[Any]]


def guess_advertise_addr() -> str:
    """The source address of this host's default route (a UDP connect sends no packet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            return str(probe.getsockname()[0])
        except OSError as exc:
            raise ConfigError(
                "cannot determine an advertise address (no default route); pass --advertise-addr",
                field="--advertise-addr",
            ) from exc


def is_local_addr(addr: str) -> bool:
    """True when ``addr`` is an address of this host (binding it works)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((addr, 0))
            return True
        except OSError:
            return False


def local_addresses(config: Config, body: dict[str, Any]) -> NodeAddresses:
    """Where this node binds and what it advertises, from the init/join ``body`` over the config."""
    return node_addresses(config, body, is_local=is_local_addr, default_route_addr=guess_advertise_addr)


def host_capacity() -> tuple[int, int]:
    """(nano CPUs, memory bytes) of this host; the agent refines it from the Docker engine."""
    memory = 0
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    memory = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    return (os.cpu_count() or 1) * 1_000_000_000, memory


def node_request(
    config: Config,
    node_name: str,
    body: dict[str, Any],
    node_id: str,
    node_key: str,
    addrs: NodeAddresses,
) -> dict[str, Any]:
    """This node's record as an init or join request describes it (``body``: the API request; ``addrs``:
    its advertised address and ports, which peers use)."""
    labels = body.get("labels") or config.node.labels
    labels_fit_gossip(labels)  # refused here, before anything starts, as the leader would refuse the join
    cpu_nanos, memory_bytes = host_capacity()
    return {
        "node_id": node_id,
        "name": body.get("name") or node_name,
        "addr": addrs.advertise_addr,
        "raft_port": addrs.raft_port,
        "gossip_port": addrs.gossip_port,
        "join_port": addrs.join_port,
        "vxlan_port": addrs.vxlan_port,
        "labels": dict(labels),
        "cpu_nanos": cpu_nanos,
        "memory_bytes": memory_bytes,
        "key_pub": node_public_key(node_key),
    }


@dataclass(frozen=True)
class PlannedAdmission:
    """One admission as planned: the joiner's record, what to delete first and the commands to write."""

    record: Node
    plan: AdmissionPlan
    commands: list[bytes]


def plan_request(
    state: ClusterState, config: Config, now: float, request: dict[str, Any], source: str
) -> PlannedAdmission:
    """The writes that admit the joiner of ``request`` (``source``: the address its connection comes
    from) against ``state``: the committed nodes and those being admitted (``with_pending``)."""
    # the same node asking again (same address and node key: it keeps both across attempts) finds its
    # own record from an earlier attempt while it may be resumed (admission_plan.py)
    earlier = earlier_attempt(state, request, source)
    fields = check_joiner(request, source, [n for n in state.nodes.values() if n is not earlier])
    plan = plan_admission(state, fields, earlier, partial(voters_target, config.raft))
    record = Node(**fields, role=plan.role, status=admitted_status(plan.role, fields["addr"], source))
    commands: list[C.Command] = []
    if plan.remove_id is not None:
        commands.append(C.RemoveNode(at=now, node_id=plan.remove_id))
    if plan.add:
        commands.append(C.AddNode(at=now, node=record))
    if plan.lease:
        commands.append(C.LeaseSubnet(at=now, node_id=record.node_id))
    if earlier is not None and not plan.add:
        # resumed on this member's view of the record: the log must agree that it is still the one
        # seen (a lagging member could resume a voter the leader already made ready: ConflictError)
        commands.append(
            C.UpdateNode(at=now, node_id=earlier.node_id, node_version=earlier.version, status=earlier.status)
        )
    return PlannedAdmission(record, plan, [c.encode() for c in commands])


class Admissions:
    """The admissions of this member whose writes are in flight (shell); what a join asks of a member.

    Planning is one at a time (under the caller's lock, a few ms) and sees the records still in flight
    (``admission_plan.with_pending``): two joiners never get one name or one address, and the voter
    count includes the voters being admitted. An admission's commands (record, lease) are one Raft entry
    (``write``); admissions run concurrently, so those that arrive while a commit is in flight are
    packed by the store into the next entry (group commit) instead of each waiting for the ones before.
    One admission per name at a time: a retry waits for its earlier attempt's write, then is planned
    against what that left. A joiner gets its reply only once its writes committed. Never holds a
    record past the end of its write.
    """

    def __init__(self) -> None:
        self._pending: dict[str, PlannedAdmission] = {}  # by name
        self._done: dict[str, trio.Event] = {}

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def admit(
        self,
        member: Callable[[], tuple[ClusterStore, LocalClusterState]],
        write: WriteTogether,
        config: Config,
        clock: Clock,
        request: dict[str, Any],
        source: str,
        plan_lock: trio.Lock,
    ) -> dict[str, Any]:
        """The member side of a join: record the joiner and lease its subnet; the reply tells it its role
        and the cluster key. ``member()``: this node's store and cluster state, read once the plan's
        turn has come (a role switch before it replaces the store); ``write`` writes the admission's
        commands through it, all in one Raft entry."""
        arrived = clock.monotonic()
        name = str(request.get("name") or "")
        while True:
            async with plan_lock:
                store, local = member()
                earlier = self._done.get(name)
                if earlier is None:
                    pending = [(p.record, p.plan.remove_id) for p in self._pending.values()]
                    state = with_pending(store.snapshot(), pending)
                    planned = plan_request(state, config, clock.now(), request, source)
                    self._pending[name] = planned
                    self._done[name] = trio.Event()
                    break
            await earlier.wait()
        writing, together = clock.monotonic(), self.in_flight
        try:
            await write(planned.commands)
        finally:
            del self._pending[name]
            self._done.pop(name).set()
        done = clock.monotonic()
        log.info(
            "node %s (%s) %s as %s",
            planned.record.name,
            planned.record.addr,
            "admitted again" if planned.plan.resumed else "joined",
            planned.plan.role,
        )
        log.info(
            "admission of %s took %.3f s (queued %.3f, commit %.3f, batch of %d)",
            planned.record.name,
            done - arrived,
            writing - arrived,
            done - writing,
            together,
        )
        # read again: a role switch meanwhile replaced the store (the joiner must hear of this one)
        store, local = member()
        return admission_reply(store, local, planned)


def admission_reply(
    store: ClusterStore, local: LocalClusterState, planned: PlannedAdmission
) -> dict[str, Any]:
    """What an admitted joiner is told, from the state its admission committed in."""
    state = store.snapshot()
    record = planned.record
    voters = [n for n in state.nodes.values() if n.status != NodeStatus.LEFT and n.role == NodeRole.VOTER]
    voters = [n for n in voters if n.node_id != record.node_id]
    # A voter joins the Raft configuration through the leader's autopilot, once it answers that
    # its store runs as a voter of this generation (adding it earlier could stall commits).
    # The key of the epoch committed now (this node may not have switched to it yet); it only travels
    # inside the sealed reply of a mutually authenticated session.
    keys = key_from_state(local, state) or local.keys
    me = state.nodes.get(local.node_id)
    return {
        # the joiner gossips with this member at once: it is seen alive (and marked ready) without
        # waiting for this member's next seed round
        "gossip_seed": f"{me.addr}:{me.gossip_port}" if me is not None else "",
        "cluster_id": local.cluster_id,
        "cluster_key": keys.to_text(),
        "key_epoch": keys.epoch,
        # the Raft frames' key of that password (PBKDF2, derived here already): the joiner opens its
        # store without deriving it (raft/frames.py, remember_cluster_key)
        "raft_key": b64(cluster_key(keys.raft_password(state.generation))),
        "role": planned.plan.role,
        "voters": sorted(n.raft_addr for n in voters),
        "generation": state.generation,
    }
