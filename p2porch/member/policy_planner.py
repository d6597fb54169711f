"""One node's network-policy plan over successive committed states, kept from the changes (pure).

``plan_policy`` walks every task address of the cluster (the sets' members); at 100,000 tasks that was
0.12 s per burst that changed an address (issue 19). ``PolicyPlanner.plan(state, changes)`` reads the
address mapping from a :class:`TaskNetworkIndex` (the node's one index, shared with the DNS view, or its
own) and tells a :class:`~p2porch.netoverlay.policy_sets.KeptPolicy` only the addresses whose networks
changed, as the index reports them (``changed_since``); when the index cannot say (it rebuilt, or the
planner is further behind than it keeps), the whole mappings are compared. A new CIDR, lease or internal
network set starts a new kept plan. It returns the previous plan object while nothing changed; the plan
equals ``plan_policy(policy_input(state, node_id))`` (tested against it). Never reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..netoverlay.netpolicy import PolicyPlan
from ..netoverlay.policy_sets import KeptPolicy
from ..raft.fsm import Change
from ..raft.state import ClusterState
from .task_networks import TaskNetworkIndex


class PolicyPlanner:
    """Owns one node's kept plan; reuse one per node for the whole stream. ``index``: the node's shared
    address index (updated here too: it follows whichever caller is furthest), else one of its own."""

    def __init__(self, node_id: str, index: TaskNetworkIndex | None = None) -> None:
        self.node_id = node_id
        self._index = TaskNetworkIndex() if index is None else index
        self._clients: Mapping[str, frozenset[str]] | None = None  # the mapping the kept plan follows
        self._generation = -1  # the index's generation of that mapping
        self._kept: KeptPolicy | None = None
        self._plan: PolicyPlan | None = None
        self.plans = 0  # new plan objects returned
        self.full_plans = 0  # kept plans built from the whole mapping
        self.full_compares = 0  # bursts whose changed addresses were found by comparing whole mappings

    @property
    def index_rebuilds(self) -> int:
        """Full rebuilds of the address index (a change stream it could not follow)."""
        return self._index.full_rebuilds

    def plan(self, state: ClusterState, changes: Iterable[Change] = ()) -> PolicyPlan | None:
        """The plan for ``state`` (None until the node has a lease), given the changes since the last call."""
        clients = self._index.update(state, changes)
        lease = state.leases.get(self.node_id)
        if lease is None or not state.cluster_cidr:
            self._kept = self._clients = self._plan = None
            return None
        internal = frozenset(n.name for n in state.networks.values() if n.internal)
        kept = self._kept
        if kept is None or (kept.cluster_cidr, kept.local_subnet, kept.internal) != (
            state.cluster_cidr,
            lease.subnet,
            internal,
        ):
            kept = self._kept = KeptPolicy(state.cluster_cidr, lease.subnet, internal, clients)
            self.full_plans += 1
        elif clients is not self._clients:
            old = self._clients
            assert old is not None
            changed = self._index.changed_since(self._generation)
            if changed is None:
                self.full_compares += 1
                changed = old.keys() | clients.keys()
            for address in changed:
                if old.get(address) != clients.get(address):
                    kept.set_address(address, clients.get(address), clients)
        self._clients, self._generation = clients, self._index.generation
        plan = kept.plan()
        if plan is not self._plan:
            self.plans += 1
            self._plan = plan
        return plan
