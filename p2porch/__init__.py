"""p2porch: a peer-to-peer, masterless container orchestrator.

Entry points: the console script ``p2porch`` (:func:`p2porch.cli.main`, also ``python -m p2porch``) and
the daemon (:class:`p2porch.daemon.Daemon`). ``docs/architecture.md`` shows the package graph: the
command line over the API, the daemon that wires the control plane by role (control, membership,
leader, member) over the leaf subsystems (gossip, raft, scheduler, agent, netoverlay, dns, stack).
"""

__version__ = "0.1.0"
API_VERSION = "v1"

__all__ = ["API_VERSION", "__version__"]
