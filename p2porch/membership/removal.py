"""A node the cluster removed while it kept running: how it learns so, and what it then leaves (shell).

A node that still follows the leader (a replica whose `node rm` key rotation failed, or one that applies
the removal before the new key epoch) learns it from its own replicated state: :class:`OwnRecord` (pure)
remembers the newest state in which it saw its record, and a later state of the same Raft generation
without it means removal. Otherwise:
`node rm` (of a live node, or of one cut off) takes the node out of the Raft configuration and starts a
key epoch without it, so it can follow nothing any more: it sees no leader. The voter-role watcher then
asks its peers (``ask_removed``) on their join port with its old key (the one question a peer serves to
an older epoch, ``key_rotation.KEY_OP``); each answer says whether the peer's state still records the
node. :func:`removed_by` (pure) decides: the peer runs the same Raft generation, its state is newer than
this node's own record, and holds no record of it (or one marked left): records are only deleted by
``node rm``. The node then does what Swarm's removed node does: it leaves. ``stop_node_work`` stops its
tasks' containers, its ingress/VIP rules and overlay; the manager stops its member services (Raft,
DNS, the agent), discards its cluster state and keeps a marker (``removed.json``), so that commands
answer :data:`REMOVED_MESSAGE` until the node joins again (with a new token).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from ..context import LocalBoard
from ..errors import P2POrchError
from ..model import NodeStatus
from ..raft.state import ClusterState
from .join_service import request_join
from .key_rotation import KEY_OP
from .localstate import LocalClusterState

log = logging.getLogger(__name__)

__all__ = [
    "REMOVED_MESSAGE",
    "OwnRecord",
    "ask_removed",
    "clear_marker",
    "load_marker",
    "member_fields",
    "removed_by",
    "save_marker",
    "since_version",
    "status",
    "stop_node_work",
]

REMOVED_MESSAGE = "this node was removed from the cluster; run p2porch join"
MARKER = "removed.json"
ASK_TIMEOUT_S = 2.0
STOP_GRACE_S = 3.0  # a leaving node's containers: SIGTERM, SIGKILL after this


@dataclass(slots=True)
class OwnRecord:
    """This node's record in its own committed state: the newest state version (and Raft generation) it
    was seen in. Owns only that memory; never reads a store or asks a peer (the watcher feeds it)."""

    seen_version: int | None = None
    seen_generation: int = 0

    def gone(self, state: ClusterState, node_id: str) -> bool:
        """Whether ``state`` shows this node removed: its record, seen in an older state of the same
        generation, is deleted (only ``node rm`` deletes a record: ``removed_by``'s rule, read locally).
        A record never seen yet (a joiner before its record reaches it) or a record marked left (this
        node leaving by itself) is no removal. Says so once (the owner leaves once), until seen again."""
        if node_id in state.nodes:
            self.seen_version, self.seen_generation = state.version, state.generation
            return False
        if self.seen_version is None or state.generation != self.seen_generation:
            return False
        if state.version <= self.seen_version:
            return False
        self.seen_version = None
        return True


def member_fields(state: ClusterState, node_id: str) -> dict[str, Any]:
    """What a key answer tells the asking node about itself: recorded or not, at which state."""
    node = state.nodes.get(node_id)
    return {
        "member": node is not None and node.status != NodeStatus.LEFT,
        "version": state.version,
        "generation": state.generation,
    }


def since_version(state: ClusterState, node_id: str) -> int:
    """The state version a peer must have passed for its missing record of this node to mean removal:
    this node's record's, else (its record already gone here) this node's own state's."""
    node = state.nodes.get(node_id)
    return node.version if node is not None else state.version


def removed_by(answer: Mapping[str, Any] | None, generation: int, since: int) -> bool:
    """Whether a peer's key answer shows this node removed (see the module docstring)."""
    if not isinstance(answer, Mapping) or answer.get("member") is not False:
        return False
    version, their_generation = answer.get("version"), answer.get("generation")
    if not isinstance(version, int) or not isinstance(their_generation, int):
        return False
    return their_generation == generation and version > since


async def ask_removed(local: LocalClusterState, hosts: list[str], join_port: int, since: int) -> str | None:
    """The first of ``hosts`` whose answer shows this node removed, or None."""
    found: list[str] = []

    async with trio.open_nursery() as nursery:

        async def ask(host: str) -> None:
            request = {"op": KEY_OP, "node_id": local.node_id}
            try:
                answer = await request_join(
                    host, join_port, local.keys, request, timeout_s=ASK_TIMEOUT_S, member=True
                )
            except P2POrchError as exc:
                log.debug("removal question to %s unanswered: %s", host, exc.message)
                return
            if removed_by(answer, local.generation, since):
                found.append(host)
                nursery.cancel_scope.cancel()

        for host in hosts:
            nursery.start_soon(ask, host)
    return found[0] if found else None


async def stop_node_work(board: LocalBoard) -> None:
    """Remove the containers of this node's tasks, its ingress/VIP rules and its overlay: a node that
    left (or was removed) runs nothing of the cluster."""
    executor = board.executor
    if executor is not None:
        try:
            found = await executor.list_containers()
        except P2POrchError as exc:  # an engine that does not answer: its containers stay, said in the log
            log.error("cannot stop this node's containers: %s", exc.message)
            found = []
        async with trio.open_nursery() as nursery:
            for container in found:
                stop = partial(executor.remove, container.container_id, stop_grace_s=STOP_GRACE_S)
                nursery.start_soon(stop)
    if board.traffic is not None:  # no more ingress/VIP writes: the teardown removes the chains
        await board.traffic.close()
    if board.overlay is not None:
        log.info("overlay removed: %s", await board.overlay.teardown())


def save_marker(data_dir: str, local: LocalClusterState, why: str, at: float) -> None:
    """Remember that this node was removed (for the commands' answer)."""
    marker = {"cluster_id": local.cluster_id, "node_id": local.node_id, "why": why, "at": at}
    path = os.path.join(data_dir, MARKER)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(marker, f)
    os.replace(path + ".tmp", path)


def load_marker(data_dir: str) -> dict[str, Any] | None:
    """The saved removal, or None (never removed, rejoined since, or an unreadable file)."""
    try:
        with open(os.path.join(data_dir, MARKER), encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def status(data_dir: str) -> dict[str, Any] | None:
    """``p2porch status``'s word on a removal: the message, who said so and when; None: not removed."""
    marker = load_marker(data_dir)
    return None if marker is None else {**marker, "message": REMOVED_MESSAGE}


def clear_marker(data_dir: str) -> None:
    """This node is a member again (it joined or started a cluster)."""
    try:
        os.unlink(os.path.join(data_dir, MARKER))
    except FileNotFoundError:
        pass
