"""p2porch.api: the control API over HTTP/JSON on a unix socket (shell).

server: the routes (an :class:`~p2porch.api.server.Endpoint` table built by :mod:`p2porch.control`),
error mapping and streaming responses, served by hypercorn's trio worker (entry point
:func:`~p2porch.api.server.serve_api`). client: :class:`~p2porch.api.client.ApiClient`, the only way
the command line talks to a daemon. Owns no cluster logic.

Starlette's error-page middleware imports ``html``, whose ``__init__`` loads the HTML5 entity table
(``html.entities``, ~0.3 MB) for ``html.unescape``; it only calls ``html.escape`` on an unhandled
error. So ``html`` is registered unexecuted here (:mod:`p2porch.lazyimport`), before anything imports
starlette: its real ``__init__`` runs on the first ``html.X`` lookup.
"""

from ..lazyimport import register_unexecuted

register_unexecuted("html", ("entities", "parser"))

__all__ = ["client", "server"]
