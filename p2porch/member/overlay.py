"""Member service: this node's VXLAN overlay and Docker network, programmed from leases and live nodes
(shell). ``overlay_ready`` is set once the VXLAN device, its peers and the iptables rules are in place; the
Docker network comes with a one-shot warm-up ``overlay.bridge_warm_after_s`` after the overlay started
(``warm_bridge``), on the node's first container if that comes first (``NodeBridge``, the agent), or at
start with ``overlay.bridge_at_start``."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from functools import partial
from typing import Any

import trio

from ..config import OverlayConfig
from ..context import ClusterStore, LocalBoard, MemberContext
from ..errors import ExecutorError, OverlayError
from ..netoverlay.bridge import warm_wait
from ..netoverlay.dockernet import DockerNetwork
from ..netoverlay.driver import NetlinkDriver
from ..netoverlay.firewall import Firewall
from ..netoverlay.plan import OverlayPeer, OverlaySettings
from ..netoverlay.reconciler import OverlayReconciler, run_overlay
from ..supervisor import forward, supervise
from .views import (
    local_overlay_node,
    overlay_peer,
    overlay_peers,
)

log = logging.getLogger(__name__)

__all__ = ["NodeBridge", "serve_overlay", "wait_for_lease", "warm_bridge"]


async def wait_for_lease(ctx: MemberContext, changes: trio.MemoryReceiveChannel[Any]) -> str:
    """This node's leased overlay subnet, waiting for the lease to be committed if needed."""
    while True:
        lease = ctx.store.snapshot().leases.get(ctx.local.node_id)
        if lease is not None:
            return lease.subnet
        await changes.receive()


async def serve_overlay(
    ctx: MemberContext,
    section: OverlayConfig,
    *,
    dns_port: int,
    docker_host: str,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Program this node's VXLAN overlay and Docker network from leases and live nodes."""
    task_status.started()
    await supervise(
        ctx.board.health, "overlay", partial(_run_overlay, ctx, section, dns_port, docker_host or None)
    )


async def _run_overlay(
    ctx: MemberContext, section: OverlayConfig, dns_port: int, docker_host: str | None
) -> None:
    node_id = ctx.local.node_id
    store, board = ctx.store, ctx.board
    started = trio.current_time()  # the warm-up's delay counts from here (the node's member services start)
    at_start = section.bridge_at_start or section.bridge_warm_after_s == 0
    async with ctx.state_changes() as changes:
        await wait_for_lease(ctx, changes)
        state = store.snapshot()
        local = local_overlay_node(state, node_id, ctx.local.bind_addr)
        assert local is not None
        settings = OverlaySettings(
            cluster_cidr=state.cluster_cidr,
            vni=section.vni,
            vxlan_port=section.vxlan_port,
            dns_port=dns_port,
            path_mtu=section.path_mtu,
        )
        send, receive = trio.open_memory_channel[Any](math.inf)

        peers = PeerView(store, board, node_id)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(forward, changes, send)
            reconciler: OverlayReconciler = await nursery.start(
                partial(
                    run_overlay,
                    local,
                    peers.all,
                    NetlinkDriver(),
                    settings=settings,
                    network=DockerNetwork(docker_host),
                    firewall=Firewall(),
                    changes=receive,
                    changed_peers=peers.changed,
                    bridge_at_start=at_start,
                    on_bridge_made=board.engine_answers_again,  # the policy and traffic loops' full pass
                )
            )
            board.overlay = reconciler
            board.overlay_ready.set()
            if not at_start:
                nursery.start_soon(warm_bridge, reconciler, section.bridge_warm_after_s, started)
            try:
                await trio.sleep_forever()
            finally:
                board.overlay = None


async def warm_bridge(overlay: OverlayReconciler, after_s: float, started: float) -> None:
    """The one-shot warm-up: ``after_s`` seconds after ``started`` (trio time), the node's Docker network
    made unless a task made it first (``warm_wait``, ``LazyBridge.warm``). An engine that does not answer
    leaves it wanted: the next full pass makes it (the engine back, the resync), not a retry here. A network
    it made wakes the policy and traffic loops (the reconciler's ``on_bridge_made``)."""
    if overlay.bridge is None:
        return
    wait = warm_wait(after_s, trio.current_time() - started, up=overlay.bridge.up)
    if wait is None:
        return
    await trio.sleep(wait)
    try:
        await overlay.ensure_bridge(warm=True)
    except OverlayError as exc:
        log.info("overlay: warm-up of the Docker network failed, made at the next full pass: %s", exc)


class PeerView:
    """The overlay's peers from the committed state and gossip's dead set, whole (``all``) or by node
    (``changed``). Remembers the dead set it handed out last, so that a node gossip declared dead or
    alive since is looked up with the nodes a commit named. Decides nothing (``views.overlay_peer``)."""

    def __init__(self, store: ClusterStore, board: LocalBoard, node_id: str) -> None:
        self.store, self.board, self.node_id = store, board, node_id
        self._unreachable: frozenset[str] = frozenset()

    def all(self) -> list[OverlayPeer]:
        self._unreachable = frozenset(self.board.unreachable_nodes())
        return overlay_peers(self.store.snapshot(), self.node_id, self._unreachable)

    def changed(self, node_ids: Iterable[str]) -> dict[str, OverlayPeer | None]:
        unreachable = frozenset(self.board.unreachable_nodes())
        moved = set(node_ids) | (unreachable ^ self._unreachable)
        self._unreachable = unreachable
        state = self.store.snapshot()
        return {n: overlay_peer(state, n, self.node_id, unreachable) for n in moved}


class NodeBridge:
    """The agent's way to the node's Docker network: made before the first container start on it
    (``ensure``), checked again after a start on it failed (``suspect``). Owns nothing itself: the
    running overlay's ``LazyBridge`` does."""

    def __init__(self, board: LocalBoard) -> None:
        self.board = board

    async def ensure(self) -> None:
        """The network exists as planned; ``ExecutorError`` when it cannot be made (the engine down, the
        overlay restarting, dockerd refusing it, the node leaving): the start's error (``MeasuredExecutor``),
        tried again as any failed start is. One it made wakes the network policy and traffic loops (the
        reconciler's ``on_bridge_made``)."""
        overlay = self.board.overlay
        if overlay is None:
            raise ExecutorError("the node's overlay is not running: its Docker network cannot be made")
        try:
            await overlay.ensure_bridge()
        except OverlayError as exc:
            raise ExecutorError(exc.message) from exc

    def suspect(self) -> None:
        overlay = self.board.overlay
        if overlay is not None and overlay.bridge is not None:
            overlay.bridge.suspect()
