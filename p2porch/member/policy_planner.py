"""One node's network-policy plan over successive committed states, planned again only when its input
changed (pure).

``plan_policy`` walks every task address of the cluster (the sets' members; the rules name local tasks
only), and the network-policy service ran it after every burst of commits, although state reports (most
bursts) change no address. ``PolicyPlanner.plan(state, changes)`` keeps the addresses with a
:class:`TaskNetworkIndex` and returns the previous plan object while the inputs of ``policy_input`` are
unchanged (the same address mapping, cluster CIDR, lease and internal networks); otherwise it plans as
``plan_policy(policy_input(state, node_id))`` does (tested against it). Never reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..netoverlay.netpolicy import PolicyPlan, plan_policy
from ..raft.fsm import Change
from ..raft.state import ClusterState
from .netviews import policy_input
from .task_networks import TaskNetworkIndex


class PolicyPlanner:
    """Owns one node's address index and its last plan; reuse one per node for the whole stream."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._index = TaskNetworkIndex()
        self._clients: Mapping[str, frozenset[str]] | None = None
        self._rest: tuple[Any, ...] | None = None
        self._plan: PolicyPlan | None = None
        self.plans = 0  # times plan_policy ran

    @property
    def index_rebuilds(self) -> int:
        """Full rebuilds of the address index (a change stream it could not follow)."""
        return self._index.full_rebuilds

    def plan(self, state: ClusterState, changes: Iterable[Change] = ()) -> PolicyPlan | None:
        """The plan for ``state`` (None until the node has a lease), given the changes since the last call."""
        clients = self._index.update(state, changes)
        lease = state.leases.get(self.node_id)
        internal = frozenset(n.name for n in state.networks.values() if n.internal)
        rest = (state.cluster_cidr, lease.subnet if lease is not None else None, internal)
        if clients is self._clients and rest == self._rest:
            return self._plan
        spec = policy_input(state, self.node_id, clients)
        self._plan = plan_policy(spec) if spec is not None else None
        self.plans += spec is not None
        self._clients, self._rest = clients, rest
        return self._plan
