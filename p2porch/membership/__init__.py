"""p2porch.membership: this node's lifecycle in a cluster (shell).

manager (:class:`~p2porch.membership.manager.ClusterManager`: init, join, leave, recover, role switches,
the join token; the entry point, wired by the daemon), runtime (one member run: Raft store, join port,
member services, role watcher), admission (the member side of a join), voter_role (a node follows its
recorded Raft role and generation), join_service (the token-authenticated join port), handshake and
token (join secrets and derived keys), localstate (``cluster.json``).
"""

__all__ = [
    "admission",
    "handshake",
    "join_service",
    "localstate",
    "manager",
    "runtime",
    "token",
    "voter_role",
]
