"""The API's node operations: status, node list and views, availability and labels, removal (shell).

Reads the committed state and this node's board; every change is a Raft command through the cluster
manager's store. Also the views of this node's join token and overlay.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio

from ..errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    NotLeaderError,
    P2POrchError,
    RaftError,
    no_such,
)
from ..membership import join_checks, key_rotation
from ..model import Availability, Node, NodeRole, NodeStatus, natural_key, node_status_text
from ..raft import commands as C
from ..raft.lag import progress_view
from ..raft.state import ClusterState
from .fresh_read import redone_on_newer_record

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager

__all__ = ["NodeOps", "engine_view", "join_command", "raft_role", "tls_status"]

log = logging.getLogger(__name__)

STEP_DOWN_TIMEOUT_S = 20.0  # a demoted leader restarts as a replica (role check ~1 s) and the rest elect
VOTER_REMOVAL_TIMEOUT_S = 20.0  # one configuration change; a change already in flight goes first


def raft_role(node: Node, leader: str | None) -> str:
    """leader, voter or replica; ``none`` for a node that left (its store stopped: it votes and
    replicates nothing, whatever role its record kept)."""
    if node.status == NodeStatus.LEFT:
        return "none"
    return "leader" if leader is not None and node.raft_addr == leader else node.role


def tls_status(node_epoch: int | None, cluster_epoch: int) -> str:
    """Docker's ``TLSStatus`` of a node from the cluster key epoch it runs in (its API certificate and
    its Raft and gossip keys come from that epoch): ``Ready`` in the committed (current) epoch,
    ``Needs Rotation`` in an older one (not switched yet, or left out of a rotation: it must rejoin),
    ``""`` when unknown (gossip has not heard the node's epoch, or it left)."""
    if node_epoch is None:
        return ""
    return "Ready" if node_epoch >= cluster_epoch else "Needs Rotation"


def engine_view(node: Node) -> dict[str, Any]:
    """The node's Docker engine as its agent last recorded it: ``reachable``, else since when and why."""
    if not node.engine_down_at:
        return {"reachable": True}
    return {"reachable": False, "unreachable_since": node.engine_down_at, "error": node.engine_error}


def restart_view(node: Node, now: float) -> dict[str, Any] | None:
    """The restart hold of a node whose daemon announced a restart: until when (the leader's clock) it
    stays ready without its daemon (leader/restart_hold.py); None when it is not held, or its hold is past
    at ``now`` (inert, member/held.py, though still recorded while the version gate keeps it)."""
    return {"until": node.restart_until} if node.restart_until > now else None


def join_command(addr: str, port: int, token: str) -> str:
    """The join command, with the token in the environment (argv shows in `ps`)."""
    return f"P2PORCH_TOKEN={token} p2porch join {addr}:{port}"


class NodeOps:
    """Node queries and node commands of the API (see the module docstring)."""

    def __init__(self, cluster: ClusterManager) -> None:
        self.cluster = cluster

    async def token(self, rotate: bool) -> dict[str, Any]:
        """The join token (a new one with ``rotate``) and the join command that uses it."""
        cluster = self.cluster
        cluster.require_store()
        token = await cluster.rotate_token() if rotate else cluster.current_token()
        if token is None or cluster.local is None:  # the store is being swapped (a key epoch change)
            raise RaftError("this node is switching to a new key epoch; try again in a moment")
        me = cluster.snapshot().nodes.get(cluster.local.node_id)
        port = me.join_port if me is not None and me.join_port else cluster.config.join.port
        join = join_command(cluster.local.advertise_addr, port, str(token))
        return {"token": str(token), "join_command": join}

    def network(self) -> dict[str, Any]:
        """This node's overlay: lease, VTEP and programmed peers, or why it is not ready."""
        self.cluster.require_store()
        board = self.cluster.board
        if board.overlay is None:
            return {"ready": False, "health": board.health.get("overlay", "not started")}
        return {"ready": True, **board.overlay.status()}

    def status(self) -> dict[str, Any] | None:
        if self.cluster.local is None:
            return None
        base: dict[str, Any] = {
            "cluster_id": self.cluster.local.cluster_id,
            "node_id": self.cluster.local.node_id,
            "raft_role": self.cluster.local.role,
        }
        if self.cluster.store is None:
            return {**base, "ready": False}
        raft = self.cluster.store.status()
        state = self.cluster.store.snapshot()
        conflict = self.cluster.runtime.generation_conflict
        if self.cluster.board.gossip is not None:
            base["gossip"] = {
                "members": self.cluster.board.gossip_states(),
                "metrics": dict(self.cluster.board.gossip.metrics),
                "health_score": self.cluster.board.gossip.health_score(),
            }
        base["services_health"] = dict(self.cluster.board.health)
        return {
            **base,
            "ready": raft.ready,
            "leader": raft.leader,
            "is_leader": raft.is_leader,
            "has_quorum": raft.has_quorum,
            "term": raft.term,
            "commit_index": raft.commit_index,
            "state_version": state.version,
            "voters": list(raft.voters),
            "generation": state.generation,
            "key_epoch": state.key_epoch,
            "generation_conflict": conflict.to_dict() if conflict is not None else None,
            "nodes": len(state.nodes),
            "domain": state.domain,
            "cluster_cidr": state.cluster_cidr,
        }

    def node_view(
        self,
        node: Node,
        state: ClusterState,
        leader: str | None,
        engines: Mapping[str, str] | None = None,
        epochs: Mapping[str, int] | None = None,
        arches: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A node as the API shows it; ``engines``, ``epochs`` and ``arches``: the nodes' engine versions,
        key epochs and architectures from gossip (read once for a whole list; read here when not given)."""
        lease = state.leases.get(node.node_id)
        local = self.cluster.local
        is_self = node.node_id == (local.node_id if local else None)
        status = self.cluster.store.status() if self.cluster.store is not None else None
        if is_self and local is not None:
            epoch: int | None = local.key_epoch
        elif node.status == NodeStatus.LEFT:
            epoch = None
        else:
            epoch = (self.cluster.board.key_epochs() if epochs is None else epochs).get(node.node_id)
        engine = engine_view(node)
        restart = restart_view(node, self.cluster.clock.now())
        return {
            "id": node.node_id,
            "name": node.name,
            "address": node.addr,
            "ports": {
                "gossip": node.gossip_port,
                "raft": node.raft_port,
                "join": node.join_port or self.cluster.join_port,
                "vxlan": node.vxlan_port or self.cluster.config.overlay.vxlan_port,
            },
            "raft_role": raft_role(node, leader),
            "availability": node.availability,
            "status": node.status,
            "engine": engine,
            "status_text": node_status_text(node.status, bool(engine["reachable"]), restart is not None),
            "restart": restart,
            "labels": dict(node.labels),
            "cpu_nanos": node.cpu_nanos,
            "memory_bytes": node.memory_bytes,
            "joined_at": node.joined_at,
            "subnet": lease.subnet if lease else None,
            "gossip": self.cluster.board.gossip_states().get(node.node_id)
            or ("left" if node.status == NodeStatus.LEFT else "unknown"),  # gossip forgets a left node
            "self": is_self,
            "engine_version": self.cluster.board.engine_version
            if is_self
            else (self.cluster.board.engine_versions() if engines is None else engines).get(node.node_id, ""),
            # Docker's .Description.Platform: every node is Linux; its engine's architecture from gossip
            "platform": {
                "os": "linux",
                "architecture": self.cluster.board.architecture
                if is_self
                else (self.cluster.board.architectures() if arches is None else arches).get(node.node_id, ""),
            },
            "raft_progress": progress_view(status, node.raft_addr, is_self, node.role == "replica")
            if status
            else None,
            "tls_status": tls_status(epoch, state.key_epoch),
        }

    def nodes(self) -> list[dict[str, Any]]:
        store = self.cluster.require_store()
        state, leader = store.snapshot(), store.status().leader
        ordered = sorted(state.nodes.values(), key=lambda n: (natural_key(n.name), n.name))  # n2 before n10
        board = self.cluster.board
        engines, epochs, arches = board.engine_versions(), board.key_epochs(), board.architectures()
        return [self.node_view(n, state, leader, engines, epochs, arches) for n in ordered]

    def find_node(self, ref: str) -> Node:
        """The node named ``ref`` (or with that id, or a unique id prefix of 4+); ``self`` is this node,
        as in Docker (``node inspect self``), unless a node is named so. An unknown one is Docker's
        ``No such node: REF`` (every ``node`` command: exit 1)."""
        state = self.cluster.snapshot()
        if ref == "self" and state.node_by_name(ref) is None and self.cluster.local is not None:
            ref = self.cluster.local.node_id
        node = state.node_by_name(ref) or state.nodes.get(ref)
        if node is None:
            matches = [n for n in state.nodes.values() if n.node_id.startswith(ref)] if len(ref) >= 4 else []
            if len(matches) == 1:
                return matches[0]
            if matches:  # Docker's words for an id prefix of several nodes
                raise NotFoundError(f"node {ref} is ambiguous ({len(matches)} matches found)", field="NODE")
            raise no_such("node", ref, field="NODE")
        return node

    @redone_on_newer_record("node_version")
    async def update_node(self, ref: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change a node's availability and labels (``label_add`` map, ``label_rm`` list)."""
        node = self.find_node(ref)
        fields: dict[str, Any] = {}
        availability = body.get("availability")
        if availability is not None:
            if availability not in ("active", "drain", "pause"):
                raise ConfigError(
                    f"--availability {availability!r}: must be active, drain or pause", field="--availability"
                )
            fields["availability"] = Availability(availability)
        label_add = body.get("label_add") or {}
        label_rm = body.get("label_rm") or []
        if not isinstance(label_add, dict) or not isinstance(label_rm, list):
            raise ConfigError("label_add must be a map and label_rm a list", field="--label-add")
        if label_add or label_rm:
            # the keys and values a joiner's --label may have (a key with a space could never be
            # matched by a constraint), and at most as many labels
            added = join_checks.labels({str(k): str(v) for k, v in label_add.items()}, "--label-add")
            # as Docker's: a key the node does not have is refused (exit 1), nothing changed
            for key in label_rm:
                if key not in node.labels and key not in added:
                    raise NotFoundError(
                        f"--label-rm: key {key} doesn't exist in node's labels", field="--label-rm"
                    )
            labels = {k: v for k, v in node.labels.items() if k not in label_rm}
            labels.update(added)
            if len(labels) > join_checks.MAX_LABELS:
                raise ConfigError(
                    f"--label-add: at most {join_checks.MAX_LABELS} labels", field="--label-add"
                )
            join_checks.labels_fit_gossip(labels, "--label-add", before=node.labels)  # they travel in gossip
            fields["labels"] = labels
        if not fields:
            raise ConfigError(
                "nothing to update: give --availability, --label-add or --label-rm", field="--availability"
            )
        await self.cluster.write(
            C.UpdateNode(
                at=self.cluster.clock.now(), node_id=node.node_id, node_version=node.version, **fields
            ).encode()
        )
        store = self.cluster.require_store()
        return self.node_view(self.find_node(node.node_id), store.snapshot(), store.status().leader)

    async def remove_node(self, ref: str, force: bool) -> dict[str, Any]:
        node = self.find_node(ref)
        store = self.cluster.require_store()
        if self.cluster.local is not None and node.node_id == self.cluster.local.node_id:
            raise ConflictError("a node cannot remove itself: run `p2porch leave` on it", field="NODE")
        if node.status == NodeStatus.READY and not force:
            raise ConflictError(
                f"node {node.name} is {node.status}; make it leave first (`p2porch leave` on "
                "it) or use --force",
                field="--force",
            )
        if node.raft_addr in store.status().voters:
            await self._remove_voter(node)
        await self.cluster.write(C.RemoveNode(at=self.cluster.clock.now(), node_id=node.node_id).encode())
        removed: dict[str, Any] = {"removed": node.node_id, "name": node.name}
        try:  # node rm revokes: a new key epoch that the removed node holds no envelope for
            rotation = await key_rotation.rotate_keys(self.cluster, exclude=(node.node_id,))
        except P2POrchError as exc:
            log.warning("node %s removed, but its keys were not revoked: %s", node.name, exc.message)
            return {
                **removed,
                "key_epoch": None,
                "warning": f"keys not rotated ({exc.message}): run `p2porch cluster rotate-keys`",
            }
        if not rotation["settled"]:
            removed["warning"] = (
                f"key epoch {rotation['key_epoch']} not in use by a quorum yet: writes may wait"
            )
        return {**removed, "key_epoch": rotation["key_epoch"]}

    @redone_on_newer_record("node_version")
    async def _record_replica(self, node_id: str) -> None:
        """Record ``node_id`` as a replica (its store restarts as one), on its newest record."""
        node = self.find_node(node_id)
        demote = C.UpdateNode(
            at=self.cluster.clock.now(), node_id=node_id, node_version=node.version, role=NodeRole.REPLICA
        )
        await self.cluster.write(demote.encode())

    async def _remove_voter(self, node: Node) -> None:
        """Take ``node`` out of the Raft configuration before its record goes. The leader cannot be
        removed (Raft: it would have to remove itself), so a leading node is first recorded as a
        replica: it restarts its store as one and the others elect a leader among themselves."""
        store = self.cluster.require_store()
        if store.status().leader == node.raft_addr:
            await self._record_replica(node.node_id)
            log.warning(
                "node rm: %s leads the Raft group: recorded as a replica so that it steps down", node.name
            )
            with trio.move_on_after(STEP_DOWN_TIMEOUT_S):
                while store.status().leader in (None, node.raft_addr):
                    await trio.sleep(0.1)
            if store.status().leader in (None, node.raft_addr):
                raise ConflictError(
                    f"{node.name} leads the Raft group and did not step down within "
                    f"{STEP_DOWN_TIMEOUT_S:.0f} s; it is recorded as a replica now and nothing was "
                    "removed: run `node rm` again",
                    field="NODE",
                )
        try:
            await store.remove_voter(node.raft_addr, timeout_s=VOTER_REMOVAL_TIMEOUT_S)
        except NotLeaderError as exc:  # it became leader again meanwhile
            raise ConflictError(
                f"{exc.message}; nothing was removed: run `node rm` again", field="NODE"
            ) from exc
