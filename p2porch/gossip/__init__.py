"""p2porch.gossip: SWIM membership with Lifeguard, encrypted (pure core, trio shell).

Pure: messages (wire codec), membership, suspicion, awareness, broadcast (transmit-limited queue), swim
(the protocol state machine, driven by ``now`` and an RNG), swim_output (the records it returns), config,
keyring. Shell: transport (UDP + TCP sockets), runner (the trio loop around
:class:`~p2porch.gossip.swim.Swim`). Entry point: :func:`p2porch.gossip.runner.serve_gossip`, started by
:mod:`p2porch.member.gossip`. Never imports raft. See docs/gossip.md.
"""

__all__ = [
    "awareness",
    "broadcast",
    "config",
    "keyring",
    "membership",
    "messages",
    "runner",
    "suspicion",
    "swim",
    "swim_output",
    "transport",
]
