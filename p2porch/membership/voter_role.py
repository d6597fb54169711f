"""This node's Raft role follows its committed record: promotion, demotion, and the check on return (shell).

The leader's autopilot (``autopilot.py``) records a replica as voter to replace a dead voter, and
records a dead voter as replica before removing it from the Raft configuration. This module makes the
node itself follow: ``watch_role`` restarts the store in the recorded role and keeps ``cluster.json``'s
voter list current, and ``role_on_return`` asks the peers, before a restarted voter opens its store,
whether it is still a voter. A removed voter that started as one would sit outside the configuration
(its peers refuse its connections) with a frozen copy of the state; asking first avoids that, and
``watch_role`` asks again whenever the node has seen no leader for a while (and whether its peers still
record it at all: a node removed while it ran leaves, removal.py). The answer also carries
the Raft generation: after ``recover --force-new-cluster`` a node of the old generation (whose
pysyncobj password no longer matches) sets its old log aside and resynchronises as a replica.
Nothing here writes state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any

import trio

from ..clock import Clock
from ..context import ClusterStore, LocalBoard
from ..errors import AuthError, P2POrchError
from ..model import NodeRole, NodeStatus
from ..raft.state import ClusterState
from ..raft.status import RaftStatus
from ..supervisor import drain, wait_any
from . import key_rotation, removal
from .join_service import request_join
from .localstate import LocalClusterState
from .recovery import GenerationConflict, may_follow

__all__ = [
    "RoleWatch",
    "ask_node",
    "holds_elections",
    "membership_answer",
    "recorded_voters",
    "role_on_return",
    "watch_role",
]

log = logging.getLogger(__name__)

ROLE_CHECK_S = 1.0  # at most one check a second; every second while unsettled (no leader, newer generation)
#: settled (a leader seen, no newer generation in gossip): the next check waits for a commit, a role change
#: or a gossip change, and this long at most (a safety net: a replica that loses its leader, a node that
#: comes back in a newer generation without gossip noticing a death)
ROLE_SAFETY_CHECK_S = 10.0
LEADERLESS_ASK_S = 3.0  # a voter without a leader this long asks its peers whether it still is one
ASK_TIMEOUT_S = 2.0
_REPORTED_LEFT_OUT: set[tuple[str, int]] = set()  # (node id, key epoch) already logged as left out


def sees_leader(status: RaftStatus) -> bool:
    """This store is connected to a leader (a replica keeps naming its last leader after losing it)."""
    return status.leader is not None and (status.is_leader or status.leader in status.connected_voters)


def recorded_voters(state: ClusterState) -> tuple[str, ...]:
    """Raft addresses of the nodes recorded as voters (what a store should be started with)."""
    return tuple(
        sorted(n.raft_addr for n in state.nodes.values() if n.role == "voter" and n.status != "left")
    )


def holds_elections(old: LocalClusterState, new: LocalClusterState) -> bool:
    """A switch from ``old`` to ``new`` starts a voter that is not in the Raft configuration yet (a promoted
    replica): like a joining voter (``MemberRuntime.start(joining=True)``) it must not campaign before it
    hears a leader (``StoreConfig.join_hold_elections_s``). Its peers drop its connections until the
    leader has added it, and the terms its elections raised would make the leader step down the moment
    it is added."""
    return old.role == NodeRole.REPLICA and new.role == NodeRole.VOTER


def recovered_state(
    state: ClusterState, node_id: str, lost: Collection[str] = (), now: float = 0.0
) -> ClusterState:
    """``state`` as ``recover --force-new-cluster`` on node ``node_id`` restores it into the new log
    (``RestoreState``): that node recorded as the only voter, every other node as replica, and the
    recorded voters that did not answer the recovery's question (``lost``: Raft addresses) ``down`` since
    ``now``, so their tasks are replaced at once instead of after the new leader's never-seen grace
    (``leader/unseen.py``); one that is in fact alive is seen by gossip and ready again."""
    nodes = {}
    for nid, n in state.nodes.items():
        n = replace(n, role=NodeRole.VOTER if nid == node_id else NodeRole.REPLICA)
        if nid != node_id and n.raft_addr in lost and n.status in (NodeStatus.READY, NodeStatus.JOINING):
            n = replace(n, status=NodeStatus.DOWN, status_at=now, restart_until=0.0, restart_incarnation=0)
        nodes[nid] = n
    return state.evolve(nodes=nodes)


def membership_answer(
    store: ClusterStore, local: LocalClusterState | None, request: dict[str, Any]
) -> dict[str, Any]:
    """A peer asks what the cluster records about it (role, voters), whether this node sees a leader,
    and how this node's own store runs (the leader adds a promoted node only once it runs as a voter)."""
    state, status = store.snapshot(), store.status()
    node = state.nodes.get(str(request.get("node_id", "")))
    return {
        "running_role": local.role if local is not None else None,
        "running_generation": local.generation if local is not None else None,
        "role": node.role if node is not None else None,
        "status": node.status if node is not None else None,
        "voters": list(recorded_voters(state)),
        "leader": status.leader if sees_leader(status) else None,
        "generation": state.generation,
        "founded_at_version": state.founded_at_version,
    }


async def ask_node(
    local: LocalClusterState, host: str, join_port: int, node_id: str = ""
) -> dict[str, Any] | None:
    """``host``'s membership answer (about ``node_id``, and about itself), or None when it does not
    answer in time."""
    request = {"op": "membership", "node_id": node_id}
    try:
        return await request_join(host, join_port, local.keys, request, timeout_s=ASK_TIMEOUT_S, member=True)
    except P2POrchError as exc:
        log.debug("membership question to %s unanswered: %s", host, exc.message)
        return None


def _parse_answer(answer: Any, local: LocalClusterState) -> LocalClusterState | None:
    """This node as a peer's answer records it, or None when the answer is unusable: no leader seen,
    malformed, or from an older Raft generation than ours (never go back to a log a recovery replaced)."""
    if answer is None:
        return None
    try:
        if not answer.get("leader") or answer.get("role") not in ("voter", "replica"):
            return None
        generation = int(answer.get("generation") or 0)
        voters = tuple(str(v) for v in answer["voters"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    if generation < local.generation or not voters:
        return None
    return replace(local, role=str(answer["role"]), voters=voters, generation=generation)


async def ask_peers(local: LocalClusterState, hosts: list[str], join_port: int) -> LocalClusterState | None:
    """This node as the first peer that sees a leader records it, or None if none answers in time."""
    if not hosts:
        return None
    found: list[LocalClusterState] = []

    async with trio.open_nursery() as nursery:

        async def ask(host: str) -> None:
            recorded = _parse_answer(await ask_node(local, host, join_port, local.node_id), local)
            if recorded is not None:
                found.append(recorded)
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
    keys = await key_rotation.fetch_newer_keys(local, hosts, join_port)
    if keys is not None:
        log.warning("the cluster moved to key epoch %d while this node was away: following it", keys.epoch)
        local = local.with_keys(keys)
    recorded = await ask_peers(local, hosts, join_port)
    if recorded is None or (recorded.role, recorded.generation) == (local.role, local.generation):
        return local
    log.warning(
        "the cluster records this node as %s in Raft generation %d: starting as one",
        recorded.role,
        recorded.generation,
    )
    return recorded


def newer_generation_hosts(board: LocalBoard, local: LocalClusterState) -> list[str]:
    """Addresses of alive gossip members that run a newer Raft generation than this node (``g`` in
    their gossip metadata): this node was cut off during a forced recovery and must follow it."""
    gossip = board.gossip
    if gossip is None:
        return []
    hosts = []
    for member in gossip.members().values():
        meta = member.meta
        generation = meta.get("g") if isinstance(meta, dict) else None
        if member.state == "alive" and isinstance(generation, int) and generation > local.generation:
            hosts.append(str(meta.get("a") or ""))
    return sorted(h for h in hosts if h)


@dataclass(frozen=True)
class RoleWatch:
    """What the voter-role watcher reads, and the two things it may ask its owner to do."""

    store: ClusterStore
    board: LocalBoard
    join_port: int
    clock: Clock
    save_voters: Callable[[LocalClusterState], None]  # the recorded voters changed: remember them
    switch_role: Callable[[LocalClusterState, LocalClusterState], None]  # (expected, new): restart as new
    report_conflict: Callable[[GenerationConflict | None], None] = lambda conflict: None  # for `status`
    removed: Callable[[LocalClusterState, str], None] = lambda local, why: None  # (expected, why): leave


async def watch_role(watch: RoleWatch, local: LocalClusterState) -> None:
    """Restart the member in the recorded role (and generation) when they change; keep the saved voter
    list current. Never raises: a failed check is logged and retried.

    While settled, an idle node does not check every second (issue 19): the next check comes one
    ``ROLE_CHECK_S`` after a commit, a Raft role change or a gossip change, or after
    ``ROLE_SAFETY_CHECK_S``."""
    leaderless_since: float | None = None
    own = removal.OwnRecord()
    async with watch.store.subscribe() as changes:
        settled = False
        while True:
            await trio.sleep(ROLE_CHECK_S)
            # taken before the check reads the store and gossip: a change during the check is not missed
            role, gossip = watch.store.role_event(), watch.board.reachability_changed
            drain(changes)
            try:
                local, leaderless_since, changed, settled = await _check_role(
                    watch, local, leaderless_since, own
                )
            except Exception as exc:  # the role check must never take the member down
                log.warning("role check failed: %r", exc, exc_info=log.isEnabledFor(logging.DEBUG))
                continue
            if changed is not None:
                watch.switch_role(local, changed)
                return
            if settled:
                with trio.move_on_after(ROLE_SAFETY_CHECK_S - ROLE_CHECK_S):
                    await wait_any(changes.receive, role.wait, gossip.wait)


async def _check_role(
    watch: RoleWatch, local: LocalClusterState, leaderless_since: float | None, own: removal.OwnRecord
) -> tuple[LocalClusterState, float | None, LocalClusterState | None, bool]:
    """One check: (local state, leaderless since, the state to restart in if it must change, settled:
    a leader is seen and nothing is under way, so the next check may wait for a change); ``own``: where
    this node last saw its record (its removal, read from its own state while it still follows)."""
    store = watch.store
    port = watch.join_port
    newer = newer_generation_hosts(watch.board, local)
    if newer:
        changed = await role_on_return(local, port, newer)
        if changed.generation > local.generation and await _keep_generation(watch, local, newer):
            return local, leaderless_since, None, False
        return local, leaderless_since, (changed if changed != local else None), False
    state = store.snapshot()
    rotated = _rotated_keys(local, state)
    if rotated is not None:
        return local, None, rotated, False
    if own.gone(state, local.node_id):  # the owner leaves, which stops this watch
        watch.removed(local, f"its record was deleted at state version {state.version} (node rm)")
        return local, leaderless_since, None, False
    if sees_leader(store.status()):
        me = state.nodes.get(local.node_id)
        if me is None or me.status == "left":
            return local, None, None, False  # our record is not here yet (just joined) or we are leaving
        await key_rotation.publish_node_key(store, local, watch.clock.now())
        if me.role != local.role:
            log.warning("this node is recorded as %s now: restarting its store as one", me.role)
            return local, None, replace(local, role=me.role, voters=recorded_voters(state)), False
        voters = recorded_voters(state)
        if voters and set(voters) != set(local.voters):
            local = replace(local, voters=voters)
            watch.save_voters(local)
        return local, None, None, True
    now = watch.clock.monotonic()
    if leaderless_since is None:
        return local, now, None, False
    if now - leaderless_since < LEADERLESS_ASK_S:
        return local, leaderless_since, None, False
    others = sorted(n.join_target for n in state.nodes.values() if n.node_id != local.node_id)
    changed = await role_on_return(local, port, others)
    if changed != local:
        return local, now, changed, False
    gone = await removal.ask_removed(local, others, port, removal.since_version(state, local.node_id))
    if gone is not None:  # the owner leaves, which stops this watch
        watch.removed(local, f"{gone} holds no record of it")
    return local, now, None, False


def _rotated_keys(local: LocalClusterState, state: ClusterState) -> LocalClusterState | None:
    """This node in the newer key epoch its committed state names, or None (none, or left out)."""
    try:
        keys = key_rotation.key_from_state(local, state)
    except AuthError as exc:
        if (local.node_id, state.key_epoch) not in _REPORTED_LEFT_OUT:
            _REPORTED_LEFT_OUT.add((local.node_id, state.key_epoch))
            log.error("cannot follow key epoch %d: %s", state.key_epoch, exc.message)
        return None
    if keys is None:
        return None
    log.warning("cluster key epoch %d: restarting with the new key", keys.epoch)
    return local.with_keys(keys)


async def _keep_generation(watch: RoleWatch, local: LocalClusterState, newer: list[str]) -> bool:
    """Whether this node must stay in its generation: it has a working quorum and committed past the
    state the newer generation was recovered from (the conflict is reported for ``status``)."""
    answer = await ask_node(local, newer[0], watch.join_port, local.node_id)
    if answer is None:
        return False
    try:
        generation = int(answer.get("generation") or 0)
        founded_at = int(answer.get("founded_at_version") or 0)
    except (TypeError, ValueError):
        return False
    has_quorum = sees_leader(watch.store.status())
    version = watch.store.snapshot().version
    conflict = may_follow(has_quorum, local.generation, version, generation, founded_at)
    if conflict is not None:
        log.error("%s", conflict.to_dict()["message"])
    watch.report_conflict(conflict)
    return conflict is not None
