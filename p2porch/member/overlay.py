"""Member service: this node's VXLAN overlay and Docker network, programmed from leases and live nodes
(shell)."""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from ..netoverlay.dockernet import DockerNetwork
from ..netoverlay.driver import NetlinkDriver
from ..netoverlay.firewall import Firewall
from ..netoverlay.plan import OverlaySettings
from ..netoverlay.reconciler import OverlayReconciler, run_overlay
from ..supervisor import forward, state_changes, supervise
from .views import (
    local_overlay_node,
    overlay_peers,
)

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager

log = logging.getLogger(__name__)


async def wait_for_lease(manager: ClusterManager, changes: trio.MemoryReceiveChannel[Any]) -> str:
    """This node's leased overlay subnet, waiting for the lease to be committed if needed."""
    assert manager.local is not None
    while True:
        lease = manager.require_store().snapshot().leases.get(manager.local.node_id)
        if lease is not None:
            return lease.subnet
        await changes.receive()


async def serve_overlay(
    manager: ClusterManager, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Program this node's VXLAN overlay and Docker network from leases and live nodes."""
    task_status.started()
    await supervise(manager, "overlay", partial(_run_overlay, manager))


async def _run_overlay(manager: ClusterManager) -> None:
    assert manager.local is not None
    node_id = manager.local.node_id
    store = manager.require_store()
    async with state_changes(manager) as changes:
        await wait_for_lease(manager, changes)
        state = store.snapshot()
        local = local_overlay_node(state, node_id)
        assert local is not None
        config = manager.config
        settings = OverlaySettings(
            cluster_cidr=state.cluster_cidr,
            vni=config.overlay.vni,
            vxlan_port=config.overlay.vxlan_port,
            dns_port=config.dns.port,
        )
        send, receive = trio.open_memory_channel[Any](math.inf)

        def peers() -> list[Any]:
            return overlay_peers(store.snapshot(), node_id, frozenset(manager.unreachable_nodes()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(forward, changes, send)
            reconciler: OverlayReconciler = await nursery.start(
                partial(
                    run_overlay,
                    local,
                    peers,
                    NetlinkDriver(),
                    settings=settings,
                    network=DockerNetwork(config.node.docker_host or None),
                    firewall=Firewall(),
                    changes=receive,
                )
            )
            manager.overlay = reconciler
            manager.overlay_ready.set()
            try:
                await trio.sleep_forever()
            finally:
                manager.overlay = None
