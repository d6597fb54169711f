"""Cluster key rotation: start a new key epoch, follow it, fetch it when a switch was missed (shell).

``rotate_keys`` writes one Raft entry: the next epoch's key sealed to each member's public node key
(``keys.plan_rotation``), leaving out a node being removed. Every member that applies it opens its own
envelope and restarts its member services with the new key (``key_from_state``; the Raft password,
gossip key and member key all change; gossip still accepts the old key for a short switch). A member
that was down or cut off during the switch can no longer talk Raft with the others: it asks a peer's
join port for its envelope (``fetch_newer_keys``), on a session keyed with its old key; a peer serves
only that question to an old epoch (``key_answer``), and the envelope opens only with the asking
node's private key, so a removed node or a leaked old key learns nothing. Nothing here decides
membership; writes go through the manager's Raft store.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

import trio

from ..context import ClusterStore
from ..errors import AuthError, ConflictError, P2POrchError
from ..model import NodeStatus
from ..raft import commands as C
from ..raft.state import ClusterState
from .join_service import request_join
from .keys import ClusterKeys, new_cluster_keys, node_public_key, open_envelope, plan_rotation
from .localstate import LocalClusterState


class ClusterManager(Protocol):
    """What a key rotation needs of the cluster manager (a protocol: the manager imports this module)."""

    local: LocalClusterState | None

    def snapshot(self) -> ClusterState: ...

    async def write(self, command: bytes) -> Any: ...

    def require_store(self) -> ClusterStore: ...


log = logging.getLogger(__name__)

KEY_OP = "keys"  # the one member request a peer serves to a session keyed with an older epoch
FETCH_TIMEOUT_S = 2.0
ROTATE_ATTEMPTS = 3  # a rotation computed from a state a join has since changed is refused and redone
SETTLE_TIMEOUT_S = 20.0  # members switch within ~1 s (role check) plus a store restart and an election
SETTLE_POLL_S = 0.2


async def rotate_keys(manager: ClusterManager, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Start the next key epoch for every live member except ``exclude`` (node ids)."""
    for attempt in range(ROTATE_ATTEMPTS):
        try:
            return await _rotate_once(manager, exclude)
        except ConflictError as exc:
            if exc.field != "envelopes" or attempt == ROTATE_ATTEMPTS - 1:
                raise
            log.info("key rotation raced with a membership change (%s): again", exc.message)
    raise AssertionError("unreachable")


async def _rotate_once(manager: ClusterManager, exclude: tuple[str, ...]) -> dict[str, Any]:
    local = manager.local
    if local is None:
        raise ConflictError("this node is not part of a cluster", field="cluster")
    state = manager.snapshot()
    members = [
        (n.node_id, n.key_pub)
        for n in state.nodes.values()
        if n.status != NodeStatus.LEFT and n.node_id not in exclude
    ]
    new_keys = new_cluster_keys(local.cluster_id, state.key_epoch + 1)
    rotation = plan_rotation(new_keys, members, exclude)
    if local.node_id not in rotation.envelopes:
        raise ConflictError(
            "this node has not published its node key yet; retry in a few seconds", field="cluster"
        )
    excluded = (*exclude, *rotation.left_out)
    rotate = C.RotateKeys(
        at=time.time(), epoch=rotation.epoch, envelopes=rotation.envelopes, excluded=excluded
    )
    await manager.write(rotate.encode())
    left_out = [state.nodes[n].name for n in rotation.left_out]
    if left_out:
        log.warning("key epoch %d: %s hold no node key and must rejoin", rotation.epoch, ", ".join(left_out))
    log.info("key epoch %d started for %d members", rotation.epoch, len(rotation.envelopes))
    settled = await wait_settled(manager, rotation.epoch, SETTLE_TIMEOUT_S)
    if not settled:
        log.warning(
            "key epoch %d: the cluster did not commit in it within %.0f s", rotation.epoch, SETTLE_TIMEOUT_S
        )
    return {
        "key_epoch": rotation.epoch,
        "members": len(rotation.envelopes),
        "left_out": left_out,
        "settled": settled,
    }


async def wait_settled(manager: ClusterManager, epoch: int, timeout_s: float) -> bool:
    """Wait until this node runs in key ``epoch`` and a write commits in it; False after ``timeout_s``.

    Every member restarts its store with the new Raft password when it applies the rotation, each at
    its own moment: until a quorum has, nothing commits. Returning only once a barrier write (a
    ``Noop``) has committed in the new epoch means the next command (a join, a write) does not run into
    that switch. The barrier changes nothing in the state."""
    with trio.move_on_after(timeout_s):
        while True:
            local = manager.local
            if local is not None and local.key_epoch >= epoch:
                try:
                    await manager.write(C.Noop(at=time.time(), tag=f"key-epoch-{epoch}").encode())
                    return True
                except P2POrchError as exc:  # no store (restarting) or no quorum in the new epoch yet
                    log.debug("key epoch %d not settled yet: %s", epoch, exc.message)
            await trio.sleep(SETTLE_POLL_S)
    return False


def key_from_state(local: LocalClusterState, state: ClusterState) -> ClusterKeys | None:
    """The newer epoch's keys from this node's envelope in ``state``, or None when there is no newer
    epoch; raises AuthError when this node was left out of it (or its envelope does not open)."""
    if state.key_epoch <= local.key_epoch or state.cluster_id != local.cluster_id:
        return None
    envelope = state.key_envelopes.get(local.node_id)
    if envelope is None:
        raise AuthError(f"key epoch {state.key_epoch} left this node out: it was removed or must rejoin")
    return open_envelope(local.cluster_id, state.key_epoch, local.node_id, local.node_key, envelope)


def key_answer(manager: ClusterManager, request: dict[str, Any]) -> dict[str, Any]:
    """A peer asks for its envelope of the current key epoch (sealed to its own node key)."""
    state = manager.require_store().snapshot()
    node_id = str(request.get("node_id", ""))
    return {"key_epoch": state.key_epoch, "envelope": state.key_envelopes.get(node_id)}


async def fetch_newer_keys(local: LocalClusterState, hosts: list[str], join_port: int) -> ClusterKeys | None:
    """Ask ``hosts`` for this node's envelope of a newer key epoch; the first that opens wins."""
    if not hosts or not local.node_key:
        return None
    found: list[ClusterKeys] = []

    async with trio.open_nursery() as nursery:

        async def ask(host: str) -> None:
            try:
                answer = await request_join(
                    host,
                    join_port,
                    local.keys,
                    {"op": KEY_OP, "node_id": local.node_id},
                    timeout_s=FETCH_TIMEOUT_S,
                    member=True,
                )
                epoch, envelope = answer.get("key_epoch"), answer.get("envelope")
                if not isinstance(epoch, int) or epoch <= local.key_epoch or not isinstance(envelope, str):
                    return
                found.append(open_envelope(local.cluster_id, epoch, local.node_id, local.node_key, envelope))
                nursery.cancel_scope.cancel()
            except (P2POrchError, AttributeError) as exc:
                log.debug("key question to %s unanswered: %s", host, exc)

        for host in hosts:
            nursery.start_soon(ask, host)
    return max(found, key=lambda k: k.epoch) if found else None


async def publish_node_key(store: ClusterStore, local: LocalClusterState, now: float) -> None:
    """Record this node's public key if its record lacks it (nodes that joined before rotations)."""
    state = store.snapshot()
    me = state.nodes.get(local.node_id)
    if me is None or me.status == NodeStatus.LEFT or not local.node_key:
        return
    public = node_public_key(local.node_key)
    if me.key_pub != public:
        await store.write(C.UpdateNode(at=now, node_id=local.node_id, key_pub=public).encode())
        log.info("published this node's public key")
