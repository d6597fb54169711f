"""The leader plans on node records that carry each node's Docker version from gossip (pure).

A node's agent publishes its engine's version in its gossip metadata (``node ls`` ENGINE VERSION); it is
never committed. The scheduler's engine-version filter (a volume ``subpath`` needs Docker 26.0) reads it
from ``Node.engine_version``, so :class:`EngineVersions` gives the round a ``ClusterState`` whose node
records have it set. It keeps its copies while neither a record nor a version changes: the incremental
planner plans everything again when a node record is a new object (``IncrementalPlanner._wants_full``),
which a changed version must do and an unchanged one must not. Never writes, never reads a clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from ..model import Node
from ..raft.state import ClusterState


class EngineVersions:
    """Owns the last view's node copies; never changes ``state``."""

    def __init__(self) -> None:
        self._copies: dict[str, tuple[Node, Node]] = {}  # node id -> (its record, that with its version)
        self._seen: tuple[Mapping[str, Node], dict[str, str]] | None = None
        self._nodes: Mapping[str, Node] = MappingProxyType({})

    def view(self, state: ClusterState, versions: Mapping[str, str]) -> ClusterState:
        """``state`` with each node's gossiped version on its record (``state`` itself when none is
        known); ``versions`` is ``node id -> version`` ("" unknown)."""
        known = {k: v for k, v in versions.items() if v and k in state.nodes}
        if not known:
            self._seen, self._copies = None, {}
            return state
        if self._seen is None or self._seen[0] is not state.nodes or self._seen[1] != known:
            nodes, copies = dict(state.nodes), {}
            for node_id, version in known.items():
                record = nodes[node_id]
                last = self._copies.get(node_id)
                if last is None or last[0] is not record or last[1].engine_version != version:
                    last = (record, replace(record, engine_version=version))
                copies[node_id] = last
                nodes[node_id] = last[1]
            self._seen, self._nodes, self._copies = (state.nodes, known), MappingProxyType(nodes), copies
        return replace(state, nodes=self._nodes)
