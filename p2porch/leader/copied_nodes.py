"""A leader round's node views changed copy-on-write (pure).

Owns copying a node's view the first time a round changes it, so the views the caller holds (the planner's
kept ones) stay as they were. Never reads cluster state.
"""

from __future__ import annotations

from ..scheduler import NodeInfo


class CopiedOnChange:
    """A round's node views where a node is copied the first time it is changed; the others stay shared
    with the caller's list. Never changes a view it was given."""

    def __init__(self, infos: list[NodeInfo]) -> None:
        self._infos = infos
        self._by_id: dict[str, NodeInfo] | None = None  # built on the first change
        self._changed: dict[str, NodeInfo] = {}

    def to_change(self, node_id: str | None) -> NodeInfo | None:
        """The copy of ``node_id``'s view to change (made once), or None when the round has no such node."""
        key = node_id or ""
        node = self._changed.get(key)
        if node is None:
            if self._by_id is None:
                self._by_id = {n.node_id: n for n in self._infos}
            found = self._by_id.get(key)
            if found is None:
                return None
            node = self._changed[key] = found.copy()
        return node

    def result(self) -> list[NodeInfo]:
        """The views in the given order, changed ones replaced by their copies."""
        if not self._changed:
            return self._infos
        return [self._changed.get(n.node_id, n) for n in self._infos]


__all__ = ["CopiedOnChange"]
