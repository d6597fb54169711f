"""Control API requests that arrive while this node's Raft store restarts wait for it (shell).

A role switch (autopilot makes a replica a voter, or a voter a replica) or a key switch (every member's,
after ``node rm`` or ``cluster rotate-keys``) stops this node's store and member services and starts them
again; a request in that gap (tens of milliseconds, or seconds while the services stop) was refused with
"this node is not part of a cluster (run p2porch init or p2porch join)". Owns only that wait: it never
changes a request or its answer, and a node in no cluster is answered at once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..api.server import Endpoint, Handler

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager

__all__ = ["STORE_RESTART_WAIT_S", "waiting_for_store"]

STORE_RESTART_WAIT_S = 10.0  # past it the request is answered as it is (the store is "restarting")


def waiting_for_store(
    cluster: ClusterManager, endpoints: list[Endpoint], timeout_s: float = STORE_RESTART_WAIT_S
) -> list[Endpoint]:
    """``endpoints`` whose handlers first wait (at most ``timeout_s``) while this member's store restarts."""
    return [replace(ep, handler=_waiting(cluster, ep.handler, timeout_s)) for ep in endpoints]


def _waiting(cluster: ClusterManager, handler: Handler, timeout_s: float) -> Handler:
    async def handle(body: dict[str, Any], params: dict[str, str]) -> Any:
        if cluster.local is not None and cluster.store is None:
            await cluster.runtime.wait_running(timeout_s)
        return await handler(body, params)

    return handle
