"""p2porch.raft: the replicated cluster state (pure FSM, pysyncobj shell).

Pure: commands (the typed commands, their decoder and dispatch table; ``codec`` holds the envelope
``{"t", "v", "b"}`` and result maps, ``commands_secrets`` the secret and key commands,
``commands_access`` the remote API's access tokens, ``fields`` the field checks), command_gate (the
command versions a write may use while nodes run different releases), fsm (applies them to a
state; ``fsm_secrets`` for secrets, ``fsm_access`` for access tokens), state (``ClusterState``
holding the model's records), pacer (the Raft tick: short with work, long when idle), status (the
``RaftStatus`` record, the leader-change count), frames (the Raft port's sealed frames). Shell: store
(:class:`~p2porch.raft.store.RaftStore`; bridge holds its pysyncobj subclass and hooks; entry point
:func:`~p2porch.raft.store.open_raft_store`), journal (durable log), node (one Raft process; the
process harness for tests and benchmarks is ``p2porch.testing.raftprocs``). Never
imports gossip. See docs/raft.md.
"""

__all__ = [
    "appends",
    "bridge",
    "codec",
    "command_gate",
    "commands",
    "commands_access",
    "commands_secrets",
    "fields",
    "fsm",
    "fsm_access",
    "fsm_secrets",
    "frames",
    "journal",
    "lag",
    "node",
    "pacer",
    "state",
    "status",
    "store",
    "transport_guard",
]
