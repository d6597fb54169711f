"""Admission: what a joining node asks for, and how a member admits it (shell: writes through the store).

The joiner describes itself with :func:`node_request` (its address, ports, labels, host capacity and
public node key). The member it reaches runs :func:`admit`: it checks the request against the address
the join connection comes from and the live nodes (``join_checks``), refuses a name already in use,
picks the role (voter until ``raft.voters`` is reached, else replica), records the node as ``joining``
(no tasks until gossip sees it alive) and leases its overlay subnet; the reply carries the cluster key
of the committed key epoch (sealed by the join handshake). A voter joins the Raft configuration later,
through the leader's autopilot, once it runs as one.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

from ..clock import Clock
from ..config import Config
from ..context import ClusterStore
from ..errors import ConfigError, P2POrchError
from ..leader.autopilot import voters_target
from ..model import Node, NodeRole, NodeStatus
from ..raft import commands as C
from .addresses import NodeAddresses, node_addresses
from .admission_plan import earlier_attempt, plan_admission
from .join_checks import check_joiner
from .key_rotation import key_from_state
from .keys import node_public_key
from .localstate import LocalClusterState

log = logging.getLogger(__name__)

__all__ = [
    "admit",
    "guess_advertise_addr",
    "host_capacity",
    "is_local_addr",
    "local_addresses",
    "node_request",
]


async def write_together(write: Callable[[bytes], Awaitable[Any]], commands: list[bytes]) -> None:
    """Propose ``commands`` at once, in order, and wait for all: the store packs proposals that wait
    together into one Raft entry, so an admission costs one commit round, not one per command. Each
    proposal is queued before the next is started (a proposal queues before its first checkpoint);
    raises the first command's error."""
    errors: list[BaseException | None] = [None] * len(commands)

    async def propose(index: int, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()  # the parent resumes only once this task blocks, i.e. after it queued
        try:
            await write(commands[index])
        except P2POrchError as exc:
            errors[index] = exc

    async with trio.open_nursery() as nursery:
        for index in range(len(commands)):
            await nursery.start(propose, index)
    for error in errors:
        if error is not None:
            raise error


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


async def admit(
    store: ClusterStore,
    write: Callable[[bytes], Awaitable[Any]],
    local: LocalClusterState,
    config: Config,
    clock: Clock,
    request: dict[str, Any],
    source: str,
) -> dict[str, Any]:
    """The member side of a join (``source``: the address the join connection comes from): record the
    joiner and lease its subnet; the reply tells it its role and the cluster key."""
    state = store.snapshot()
    # the same node asking again (same address and node key: it keeps both across attempts) finds its
    # own record from an earlier attempt while it may be resumed (admission_plan.py)
    earlier = earlier_attempt(state, request, source)
    fields = check_joiner(request, source, [n for n in state.nodes.values() if n is not earlier])
    plan = plan_admission(state, fields, earlier, partial(voters_target, config.raft))
    now = clock.now()
    record = Node(**fields, role=plan.role, status=NodeStatus.JOINING)  # ready once gossip sees it alive
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
    await write_together(write, [c.encode() for c in commands])
    state = store.snapshot()
    voters = [n for n in state.nodes.values() if n.status != NodeStatus.LEFT and n.role == NodeRole.VOTER]
    voters = [n for n in voters if n.node_id != record.node_id]
    # A voter joins the Raft configuration through the leader's autopilot, once it answers that
    # its store runs as a voter of this generation (adding it earlier could stall commits).
    log.info(
        "node %s (%s) %s as %s",
        record.name,
        record.addr,
        "admitted again" if plan.resumed else "joined",
        plan.role,
    )
    # the key of the epoch committed now (this node may not have switched to it yet); it only travels
    # inside the sealed reply of a mutually authenticated session
    keys = key_from_state(local, store.snapshot()) or local.keys
    me = state.nodes.get(local.node_id)
    return {
        # the joiner gossips with this member at once: it is seen alive (and marked ready) without
        # waiting for this member's next seed round
        "gossip_seed": f"{me.addr}:{me.gossip_port}" if me is not None else "",
        "cluster_id": local.cluster_id,
        "cluster_key": keys.to_text(),
        "key_epoch": keys.epoch,
        "role": plan.role,
        "voters": sorted(n.raft_addr for n in voters),
        "generation": state.generation,
    }
