"""What admitting a join request writes, against the committed nodes (pure).

A join is idempotent for the node that asks: a joiner keeps its node id and node key across attempts
(``ClusterManager``), so a retry after any failure midway (an admission that did not commit in time but
committed later, a joiner whose services started and then stopped, a lost reply) finds that node's own
record, from the same address with the same node key, and is admitted again: the record is kept (same
id and ports) or replaced (the node came back with another id or ports). A record still ``joining`` is
always the joiner's to resume. A record past it (``ready``, ``down``) is resumed only for a read-only
replica whose request came from the record's own address: a failed attempt wipes the joiner's Raft
state, and a voter that is already in the Raft configuration must never come back with an empty
journal (it could vote twice in a term and lose committed entries); and a node key is public, so
without the source-address check (``--behind-nat``) anyone holding the token could take over a
running node's name. Another node (another key or address) asking for a name in use is refused.
No I/O, no clock; the shell (``admission.Admissions``) writes what the plan says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConflictError
from ..model import Node, NodeRole, NodeStatus
from ..raft.state import ClusterState

__all__ = ["AdmissionPlan", "admitted_status", "earlier_attempt", "plan_admission", "with_pending"]

_PORTS = ("raft_port", "gossip_port", "join_port", "vxlan_port")


@dataclass(frozen=True, slots=True)
class AdmissionPlan:
    """The writes of one admission, in order: remove ``remove_id``, add the record (``add``), lease."""

    role: NodeRole  # the joiner's role (an existing record keeps its own)
    remove_id: str | None = None  # a record to delete first: a node that left, or this node's own old one
    add: bool = True  # write the joiner's record (False: its record from an earlier attempt stays)
    lease: bool = True  # lease its subnet (False: the lease exists already)

    @property
    def resumed(self) -> bool:
        """True when an earlier attempt's record is kept as it is."""
        return not self.add


def _is_same_node(node: Node, request: Mapping[str, Any]) -> bool:
    """``node`` is the record of the node that sends ``request``: same address and same node key."""
    return (
        node.status != NodeStatus.LEFT
        and bool(node.key_pub)
        and node.key_pub == request.get("key_pub")
        and node.addr == request.get("addr")
    )


def earlier_attempt(state: ClusterState, request: Mapping[str, Any], source_addr: str) -> Node | None:
    """The record an earlier join attempt of the same node committed under its name, if it may be
    resumed (module docstring): ``joining``, or a replica's asked for from its own address."""
    node = state.node_by_name(str(request.get("name") or ""))
    if node is None or not _is_same_node(node, request):
        return None
    if node.status == NodeStatus.JOINING:
        return node
    return node if node.role == NodeRole.REPLICA and node.addr == source_addr else None


def plan_admission(
    state: ClusterState,
    fields: Mapping[str, Any],
    earlier: Node | None,
    voters_target: Callable[[int], int],
) -> AdmissionPlan:
    """The writes that admit the joiner described by ``fields`` (checked by ``join_checks``);
    ``earlier``: its own record from an earlier attempt (``earlier_attempt``); ``voters_target``:
    how many voters a cluster of that many nodes wants. Raises ConflictError when the name belongs to
    another node."""
    name, node_id = fields["name"], fields["node_id"]
    existing = state.node_by_name(name)
    if existing is not None and existing.status != NodeStatus.LEFT and existing is not earlier:
        raise ConflictError(
            f"a node named {name!r} is already in the cluster; choose another --name or `p2porch node rm` it",
            field="--name",
        )
    if (
        earlier is not None
        and earlier.node_id == node_id
        and all(getattr(earlier, p) == fields.get(p, 0) for p in _PORTS)
    ):
        return AdmissionPlan(role=earlier.role, add=False, lease=node_id not in state.leases)
    remove_id = existing.node_id if existing is not None else None
    if remove_id is None and earlier is not None:
        remove_id = earlier.node_id
    live = [n for n in state.nodes.values() if n.status != NodeStatus.LEFT and n.node_id != remove_id]
    voters = sum(1 for n in live if n.role == NodeRole.VOTER)
    role = NodeRole.REPLICA if voters >= voters_target(len(live) + 1) else NodeRole.VOTER
    return AdmissionPlan(role=role, remove_id=remove_id)


def admitted_status(role: NodeRole, addr: str, source_addr: str) -> NodeStatus:
    """The status a new record is written with. A replica that joins from its own address is ``ready``
    at once: its admission is then the join's one Raft entry (no ready mark later; the leader marks it
    down if gossip never sees it, ``leader/unseen.py``), and a retry still finds it (a ready replica is
    resumed from its own address). A voter stays ``joining`` until gossip sees it: a voter past
    ``joining`` is never resumed (module docstring), and the autopilot adds it to the Raft
    configuration only once it is ready. A joiner behind NAT (another source address) stays
    ``joining`` too: only a ``joining`` record is resumed from another address."""
    if role == NodeRole.REPLICA and addr == source_addr:
        return NodeStatus.READY
    return NodeStatus.JOINING


def with_pending(state: ClusterState, pending: Iterable[tuple[Node, str | None]]) -> ClusterState:
    """``state`` as it will be once the admissions in flight have committed: each ``(record, remove_id)``
    puts its record, after deleting ``remove_id``. Admissions planned one after the other but written
    concurrently (``admission.Admissions``) each plan against this, so a name, an address or a voter
    seat taken by one still in flight counts as taken."""
    pending = list(pending)
    if not pending:
        return state
    nodes = dict(state.nodes)
    for record, remove_id in pending:
        if remove_id is not None:
            nodes.pop(remove_id, None)
        nodes[record.node_id] = record
    return state.evolve(nodes=nodes)
