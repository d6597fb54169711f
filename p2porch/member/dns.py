"""Member service: the cluster DNS, answered from committed state on the bridge gateway and advertise address
(shell).
"""

from __future__ import annotations

import logging
from functools import partial

import trio

from ..config import DnsConfig
from ..context import MemberContext
from ..debounce import VIEW_REBUILD_MAX_GAP_S, VIEW_REBUILD_SHARE, CostShare
from ..dns.guard import ClientPolicy
from ..dns.resolver import Resolver
from ..dns.scope import ClientScopes
from ..dns.server import ServerCounters, serve_dns
from ..raft.state import ClusterState
from ..supervisor import drained, supervise
from .netviews import DnsScopes
from .overlay import wait_for_lease
from .task_networks import shared_index
from .views import gateway_of
from .zone_builder import ZoneBuilder

log = logging.getLogger(__name__)

__all__ = ["serve_cluster_dns"]


async def serve_cluster_dns(
    ctx: MemberContext, section: DnsConfig, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Answer the cluster domain from committed state on the bridge gateway and the advertise address."""
    task_status.started()
    await supervise(ctx.board.health, "dns", partial(_run_dns, ctx, section))


async def _run_dns(ctx: MemberContext, section: DnsConfig) -> None:
    store = ctx.store
    async with ctx.state_changes() as changes:
        subnet = await wait_for_lease(ctx, changes)
        # the gateway address exists once the node's Docker network does, on its first container (or
        # never): bound before it (``free_bind``), answered as soon as it exists
        gateway = gateway_of(subnet)
        advertise = ctx.local.advertise_addr
        zones = ZoneBuilder((advertise,), ctx.local.node_id)  # rebuilds only what the changes touched
        clients = shared_index(ctx.board)  # the same mapping while no address changed: scopes keep their maps
        kept = DnsScopes()  # the services' part of the scopes, made again only when a service changed
        state = store.snapshot()
        zone = zones.update(state)
        resolver = Resolver(zone, ttl_s=section.ttl_s)
        scopes = ClientScopes(resolver, partial(Resolver, ttl_s=section.ttl_s))
        scopes.update(zone, kept.update(state, clients.update(state), clients.addresses_of))
        ctx.board.resolver = resolver
        upstreams = [_parse_upstream(u) for u in section.upstreams] or None
        listen = [(gateway, section.port), (ctx.local.bind_addr, section.port)]  # behind NAT: its own address
        # recursion (and no rate limit) only for this node's containers, the overlay and members
        policy = ClientPolicy([subnet, store.snapshot().cluster_cidr], _member_addresses(store.snapshot()))
        counters = ctx.board.dns_counters = ServerCounters()
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(
                    serve_dns,
                    resolver,
                    listen,
                    upstreams,
                    timeout_s=section.forward_timeout_s,
                    policy=policy,
                    counters=counters,
                    scopes=scopes,
                    free_bind=(gateway,),
                )
            )
            log.info(
                "cluster DNS for %s. on %s", store.snapshot().domain, ", ".join(f"{h}:{p}" for h, p in listen)
            )
            # the zone merge is O(names): at a large state rebuilds are spaced by their cost (CostShare),
            # and the changes that come meanwhile join the next burst
            pacing = CostShare(VIEW_REBUILD_SHARE, VIEW_REBUILD_MAX_GAP_S)
            async for change in changes:
                await trio.sleep(pacing.wait_s(trio.current_time()))
                burst = [change, *drained(changes)]  # one zone update per burst of commits
                state = store.snapshot()
                started = trio.current_time()
                scopes.update(
                    zones.update(state, burst),
                    kept.update(state, clients.update(state, burst), clients.addresses_of),
                )
                policy.set_members(_member_addresses(state))
                pacing.done(started, trio.current_time())


def _member_addresses(state: ClusterState) -> list[str]:
    return [node.addr for node in state.nodes.values() if node.status != "left"]


def _parse_upstream(text: str) -> tuple[str, int]:
    host, _, port = text.partition(":")
    return host, int(port) if port else 53
