"""p2porch.control: the API's operations on services, stacks, nodes and streams (shell).

Owns what each API route does: service_ops (create, update, scale, rollback, rebalance, remove, logs),
stack_ops (deploy diff, ls, ps, rm), node_ops (status, nodes, availability, labels, removal, token and
overlay views), logs (task logs across nodes), event_stream (``/events``) over events (pure
descriptions), and routes (the route tables). Every change is a Raft command through the store; never
places tasks or runs containers. Entry points: :func:`~p2porch.control.routes.cluster_endpoints`,
:func:`~p2porch.control.routes.service_endpoints`, :func:`~p2porch.control.stack_ops.stack_endpoints`,
wired by the daemon.
"""

__all__ = ["event_stream", "events", "logs", "node_ops", "routes", "service_ops", "stack_ops"]
