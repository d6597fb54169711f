"""Member service: the cluster DNS, answered from committed state on the bridge gateway and advertise address
(shell).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

import trio

from ..dns.resolver import Resolver
from ..dns.server import serve_dns
from ..supervisor import drain, state_changes, supervise
from .overlay import wait_for_lease
from .views import (
    dns_zone,
    gateway_of,
)

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager

log = logging.getLogger(__name__)


async def serve_cluster_dns(
    manager: ClusterManager, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Answer the cluster domain from committed state on the bridge gateway and the advertise address."""
    task_status.started()
    await supervise(manager, "dns", partial(_run_dns, manager))


async def _run_dns(manager: ClusterManager) -> None:
    assert manager.local is not None
    store = manager.require_store()
    config = manager.config
    async with state_changes(manager) as changes:
        subnet = await wait_for_lease(manager, changes)
        await manager.overlay_ready.wait()  # the gateway address exists once the Docker network does
        gateway = gateway_of(subnet)
        advertise = manager.local.advertise_addr
        resolver = Resolver(dns_zone(store.snapshot(), (advertise,)), ttl_s=config.dns.ttl_s)
        manager.resolver = resolver
        upstreams = [_parse_upstream(u) for u in config.dns.upstreams] or None
        listen = [(gateway, config.dns.port), (advertise, config.dns.port)]
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(serve_dns, resolver, listen, upstreams, timeout_s=config.dns.forward_timeout_s)
            )
            log.info(
                "cluster DNS for %s. on %s", store.snapshot().domain, ", ".join(f"{h}:{p}" for h, p in listen)
            )
            async for _ in changes:
                drain(changes)  # one zone rebuild per burst of commits
                resolver.update_zone(dns_zone(store.snapshot(), (advertise,)))


def _parse_upstream(text: str) -> tuple[str, int]:
    host, _, port = text.partition(":")
    return host, int(port) if port else 53
