"""p2porch.member: the services every member runs, one ``serve_*`` per module (shell).

gossip (:func:`~p2porch.member.gossip.serve_gossip_membership`), overlay
(:func:`~p2porch.member.overlay.serve_overlay`), dns (:func:`~p2porch.member.dns.serve_cluster_dns`)
and agent (:func:`~p2porch.member.agent.serve_agent`); views (pure) turns committed state into their
inputs (DNS zone, overlay peers, task assignments). Each receives a narrow
:class:`~p2porch.context.MemberContext` plus its own config section, never the manager; each runs
under supervision (failures retried with back-off, recorded in the board's health) and writes only
its own reports (task states, node capacity).
"""

__all__ = ["agent", "dns", "gossip", "overlay", "views"]
