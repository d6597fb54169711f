"""The autopilot loop: while this node leads Raft, keep the configured number of healthy voters (shell).

The decision is :func:`~p2porch.leader.autopilot.next_voter_change` (pure); this loop gathers its inputs
(Raft status, gossip, which promoted nodes already run as voters) and carries out one step at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from functools import partial
from typing import TYPE_CHECKING

import trio

from ..errors import ConflictError, ProposalTimeout, RaftError
from ..membership import voter_role
from ..model import Node, NodeRole
from ..raft import commands as C
from ..raft.state import ClusterState
from ..raft.store import RaftStore
from ..supervisor import supervise
from .autopilot import VoterChange, next_voter_change, voters_target

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager

log = logging.getLogger(__name__)


AUTOPILOT_CHECK_S = 0.5


async def serve_autopilot(
    manager: ClusterManager, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """While this node leads Raft: keep the configured number of healthy voters (see autopilot.py)."""
    task_status.started()
    await supervise(manager, "autopilot", partial(_run_autopilot, manager))


async def _run_autopilot(manager: ClusterManager) -> None:
    store = manager.require_store()
    while True:
        await trio.sleep(AUTOPILOT_CHECK_S)
        status = store.status()
        if not status.is_leader or store.config.self_addr is None:
            continue
        state = store.snapshot()
        live = [n for n in state.nodes.values() if n.status != "left"]
        alive = {node_id for node_id, seen in manager.gossip_states().items() if seen == "alive"}
        change = next_voter_change(
            state.nodes.values(),
            status.voters,
            alive,
            await voters_running(manager, state, status.voters),
            time.time(),
            target=voters_target(manager.config, len(live)),
            grace_s=manager.config.raft.replace_dead_voter_s,
            self_addr=store.config.self_addr,
        )
        if change is not None:
            await apply_voter_change(manager, store, state, change)


async def voters_running(
    manager: ClusterManager, state: ClusterState, raft_voters: Collection[str]
) -> set[str]:
    """Raft addresses of nodes recorded as voters, not in the configuration yet, that answer (join port)
    that their store runs as a voter of this generation."""
    pending = [
        n
        for n in state.nodes.values()
        if n.role == "voter" and n.status == "ready" and n.raft_addr not in raft_voters
    ]
    running: set[str] = set()
    local = manager.local
    assert local is not None

    async def ask(node: Node) -> None:
        answer = await voter_role.ask_node(local, node.addr, manager.join_port)
        if answer and (answer.get("running_role"), answer.get("running_generation")) == (
            "voter",
            state.generation,
        ):
            running.add(node.raft_addr)

    async with trio.open_nursery() as nursery:
        for node in pending:
            nursery.start_soon(ask, node)
    return running


async def apply_voter_change(
    manager: ClusterManager, store: RaftStore, state: ClusterState, change: VoterChange
) -> None:
    """Carry out one autopilot step; a failure is logged and the next check decides again."""
    log.warning("autopilot: %s %s (%s)", change.kind, change.addr, change.reason)
    try:
        if change.kind == "add":
            await store.add_voter(change.addr, timeout_s=15)
        elif change.kind == "remove":
            await store.remove_voter(change.addr)
        else:
            assert change.node_id is not None
            node = state.nodes[change.node_id]
            role = NodeRole.VOTER if change.kind == "promote" else NodeRole.REPLICA
            update = C.UpdateNode(at=time.time(), node_id=node.node_id, role=role, node_version=node.version)
            await manager.write(update.encode())
    except (RaftError, ConflictError, ProposalTimeout) as exc:
        log.warning("autopilot: %s %s failed: %s", change.kind, change.addr, exc.message)
        await trio.sleep(1.0)
