"""p2porch.raft: the replicated cluster state (pure FSM, pysyncobj shell).

Pure: commands (encoded commands), fsm (applies them to a state), state (``ClusterState`` and its
records). Shell: store (:class:`~p2porch.raft.store.RaftStore`, the only importer of pysyncobj; entry
point :func:`~p2porch.raft.store.open_raft_store`), journal (durable log), node and procs (Raft as
separate processes for tests and benchmarks). Never imports gossip. See docs/raft.md.
"""

__all__ = ["commands", "fsm", "journal", "node", "procs", "state", "store"]
