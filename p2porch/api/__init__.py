"""p2porch.api: the control API over HTTP/JSON on a unix socket (shell).

server: the routes (an :class:`~p2porch.api.server.Endpoint` table built by :mod:`p2porch.control`),
error mapping and streaming responses, served by hypercorn's trio worker (entry point
:func:`~p2porch.api.server.serve_api`). client: :class:`~p2porch.api.client.ApiClient`, the only way
the command line talks to a daemon. Owns no cluster logic.
"""

__all__ = ["client", "server"]
