"""The leader refuses a membership change while its previous one is not applied (shell over pysyncobj).

pysyncobj 0.3.17's leader applies a membership change to its configuration when it appends it, and has a
guard against a second change while the first is uncommitted (``__changeClusterIDx``), but never sets it:
two changes could be in flight at once, and two uncommitted changes can give two disjoint majorities. This
mixin arms that guard: once the leader accepts a change it records the change's log index, and pysyncobj's
own check answers every later change REQUEST_DENIED (retried by the store's ``membership_changes``) until
this node applied that index or, leader again in a later term, its no-op. It guards changes from every node
(a store only knows its own); it owns nothing else and never decides which change to make.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OneMembershipChange"]


class OneMembershipChange:
    """Mixin for the SyncObj subclass (before SyncObj in its bases)."""

    def _SyncObj__changeCluster(self, request: Any) -> bool:  # noqa: N802 (pysyncobj's private name)
        index = self._SyncObj__getCurrentLogIndex() + 1  # type: ignore[attr-defined]  # where it goes
        accepted: bool = super()._SyncObj__changeCluster(request)  # type: ignore[misc]
        if accepted:
            self._SyncObj__changeClusterIDx = index
        return accepted

    def _SyncObj__onBecomeLeader(self) -> None:  # noqa: N802 (pysyncobj's private name)
        # a change this node appended in an earlier term may have been truncated by another leader, and
        # the log may not reach its index again for a long time: a new term starts without the guard
        # (pysyncobj's own check refuses every change until the new term's no-op is applied, which
        # commits any earlier change still in the log first)
        self._SyncObj__changeClusterIDx = None
        super()._SyncObj__onBecomeLeader()  # type: ignore[misc]
