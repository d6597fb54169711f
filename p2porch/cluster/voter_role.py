"""This node's Raft role follows its committed record: promotion, demotion, and the check on return (shell).

The leader's autopilot (``autopilot.py``) records a replica as voter to replace a dead voter, and
records a dead voter as replica before removing it from the Raft configuration. This module makes the
node itself follow: ``watch_role`` restarts the store in the recorded role and keeps ``cluster.json``'s
voter list current, and ``role_on_return`` asks the peers, before a restarted voter opens its store,
whether it is still a voter. A removed voter that started as one would sit outside the configuration
(its peers refuse its connections) with a frozen copy of the state; asking first avoids that, and
``watch_role`` asks again whenever the node has seen no leader for a while. The answer also carries
the Raft generation: after ``recover --force-new-cluster`` a node of the old generation (whose
pysyncobj password no longer matches) sets its old log aside and resynchronises as a replica.
Nothing here writes state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import trio

from ..errors import P2POrchError
from ..raft.store import RaftStatus
from . import localstate
from .join_service import request_join
from .localstate import LocalClusterState

if TYPE_CHECKING:
    from .manager import ClusterManager

log = logging.getLogger(__name__)

ROLE_CHECK_S = 1.0  # how often the record is compared with the running role
LEADERLESS_ASK_S = 3.0  # a voter without a leader this long asks its peers whether it still is one
ASK_TIMEOUT_S = 2.0


def sees_leader(status: RaftStatus) -> bool:
    """This store is connected to a leader (a replica keeps naming its last leader after losing it)."""
    return status.leader is not None and (status.is_leader or status.leader in status.connected_voters)


def recorded_voters(manager: ClusterManager) -> tuple[str, ...]:
    """Raft addresses of the nodes recorded as voters (what a store should be started with)."""
    state = manager.require_store().snapshot()
    return tuple(
        sorted(n.raft_addr for n in state.nodes.values() if n.role == "voter" and n.status != "left")
    )


def membership_answer(manager: ClusterManager, request: dict[str, Any]) -> dict[str, Any]:
    """A peer asks what the cluster records about it (role, voters), whether this node sees a leader,
    and how this node's own store runs (the leader adds a promoted node only once it runs as a voter)."""
    store = manager.require_store()
    node = store.snapshot().nodes.get(str(request.get("node_id", "")))
    local = manager.local
    return {
        "running_role": local.role if local is not None else None,
        "running_generation": local.generation if local is not None else None,
        "role": node.role if node is not None else None,
        "status": node.status if node is not None else None,
        "voters": list(recorded_voters(manager)),
        "leader": store.status().leader if sees_leader(store.status()) else None,
        "generation": store.snapshot().generation,
    }


async def ask_node(manager: ClusterManager, addr: str) -> dict[str, Any] | None:
    """One peer's membership answer about itself (None when it does not answer in time)."""
    assert manager.local is not None
    request = {"op": "membership", "node_id": ""}
    try:
        return await request_join(
            addr,
            manager.config.join.port or 7948,
            manager.local.cluster_token,
            request,
            timeout_s=ASK_TIMEOUT_S,
            member=True,
        )
    except P2POrchError as exc:
        log.debug("membership question to %s unanswered: %s", addr, exc.message)
        return None


async def ask_peers(local: LocalClusterState, hosts: list[str], join_port: int) -> dict[str, Any] | None:
    """The first membership answer from a peer that sees a leader, or None if none does in time."""
    if not hosts:
        return None
    found: list[dict[str, Any]] = []
    request = {"op": "membership", "node_id": local.node_id}

    async with trio.open_nursery() as nursery:

        async def ask(host: str) -> None:
            try:
                answer = await request_join(
                    host, join_port, local.cluster_token, request, timeout_s=ASK_TIMEOUT_S, member=True
                )
            except P2POrchError as exc:
                log.debug("membership question to %s unanswered: %s", host, exc.message)
                return
            if answer.get("leader") and answer.get("role") in ("voter", "replica"):
                found.append(answer)
                nursery.cancel_scope.cancel()

        for host in hosts:
            nursery.start_soon(ask, host)
    return found[0] if found else None


async def role_on_return(
    local: LocalClusterState, join_port: int, hosts: list[str] | None = None
) -> LocalClusterState:
    """This node's role and Raft generation as its peers record them (unchanged when nobody answers).

    ``hosts`` to ask default to the voters saved in ``cluster.json``."""
    if hosts is None:
        hosts = sorted({addr.rpartition(":")[0] for addr in local.voters if addr != local.raft_addr})
    answer = await ask_peers(local, hosts, join_port)
    if answer is None:
        return local
    generation = int(answer.get("generation") or 0)
    if answer["role"] == local.role and generation == local.generation:
        return local
    log.warning(
        "the cluster records this node as %s in Raft generation %d: starting as one",
        answer["role"],
        generation,
    )
    return replace(
        local,
        role=str(answer["role"]),
        voters=tuple(str(v) for v in answer["voters"]),
        generation=generation,
    )


async def watch_role(manager: ClusterManager, local: LocalClusterState) -> None:
    """Restart the member in the recorded role when it changes; keep the saved voter list current."""
    store = manager.require_store()
    leaderless_since: float | None = None
    while True:
        await trio.sleep(ROLE_CHECK_S)
        me = store.snapshot().nodes.get(local.node_id)
        if sees_leader(store.status()) and me is not None:
            leaderless_since = None
            if me.role != local.role and me.status != "left":
                log.warning("this node is recorded as %s now: restarting its store as one", me.role)
                manager.switch_role_soon(replace(local, role=me.role, voters=recorded_voters(manager)))
                return
            voters = recorded_voters(manager)
            if voters and set(voters) != set(local.voters):
                local = replace(local, voters=voters)
                localstate.save(manager.data_dir, local)
                manager.local = local
            continue
        now = time.monotonic()
        if leaderless_since is None:
            leaderless_since = now
        elif now - leaderless_since >= LEADERLESS_ASK_S:
            leaderless_since = now
            others = sorted(n.addr for n in store.snapshot().nodes.values() if n.node_id != local.node_id)
            changed = await role_on_return(local, manager.config.join.port or 7948, others)
            if changed != local:
                manager.switch_role_soon(changed)
                return
