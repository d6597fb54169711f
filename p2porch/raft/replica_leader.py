"""A read-only replica keeps the leader whose snapshot it installs (shell over pysyncobj).

A snapshot's configuration is the voters as of its last entry. A leader's own dump may predate the
entry that added the leader itself: it was added (or promoted from replica) after its last compaction,
or its dump is the one it installed from the leader before it. pysyncobj's install sets a node's
configuration to the snapshot's and drops every connection outside it, the leader's included. A voter
hears the leader again as a stranger (``outside_config.py``: the leader dials it), but a read-only
replica listens on no port and dials only the voters of its configuration: it never heard the leader
again, and the entries after the snapshot (the add of that leader among them) never came. Seen on a
4-node sandbox: a replica that joined right after a failover loaded a dump at version ~73 and got no
append while the leader was at ~104 (its own record never replicated, the join failed after 30 s).

:class:`ReplicaKeepsLeader` (mixed into ``RaftBridge``): on a read-only replica, a configuration set
while it follows a leader (a snapshot's install, then the log's membership entries after it) keeps
that leader when it would drop it. The leader's log adds it after the snapshot (a leader is in the
latest configuration of its own log), and re-applying that add is a no-op. For a replica the
configuration only says whom it dials: it casts no vote and counts no quorum, so a leader kept here
changes no Raft decision. Voters are never touched (their configuration decides quorums). It owns
nothing but a counter.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class ReplicaKeepsLeader:
    """Mixed in before ``SyncObj``: a read-only replica's new configuration keeps its leader."""

    _SyncObj__selfNode: Any
    _SyncObj__raftLeader: Any
    _SyncObj__otherNodes: set[Any]
    leaders_kept = 0  # configurations set without the followed leader, which was kept (tests, diagnosis)

    def _SyncObj__updateClusterConfiguration(self, newNodes: list[Any]) -> None:  # noqa: N802, N803 (pysyncobj's)
        leader = self._SyncObj__raftLeader
        if self._SyncObj__selfNode is None and leader is not None and leader in self._SyncObj__otherNodes:
            ids = {getattr(node, "id", node) for node in newNodes}
            if leader.id not in ids:
                self.leaders_kept += 1
                log.info(
                    "raft replica: the new configuration %s lacks the leader %s; still following it",
                    sorted(str(i) for i in ids),
                    leader.id,
                )
                newNodes = [*newNodes, leader]
        super()._SyncObj__updateClusterConfiguration(newNodes)  # type: ignore[misc]
