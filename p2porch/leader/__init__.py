"""p2porch.leader: what the Raft leader decides and the loops that carry it out.

Pure: scheduling (one scheduling round: node statuses from gossip, the orchestrator's placements,
rolling-update failures, rebalance) and autopilot (the next voter change). Shell: loop
(:func:`~p2porch.leader.loop.serve_scheduler`) and autopilot_loop
(:func:`~p2porch.leader.autopilot_loop.serve_autopilot`), started on every member with a
:class:`~p2porch.context.MemberContext` and acting only while this node leads; they read time through
the context's injected clock, so they run under trio's MockClock.
"""

__all__ = ["autopilot", "autopilot_loop", "loop", "scheduling"]
