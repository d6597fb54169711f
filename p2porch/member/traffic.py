"""Member service: this node's ingress and VIP rules, rebuilt from committed state and gossip (shell).

Recomputes the pure view (``views.traffic_inputs``, kept by a ``TrafficIndex``: only the services the
commits touched are walked again) on every committed change and every gossip change of
reachability (``LocalBoard.reachability_changed``: a node declared dead is not a commit; an idle node
does not poll for it), at least every ``POLL_S``, writes the rules only when they changed, and
rewrites them in full every ``RESYNC_S`` (hand edits are repaired; a restarted daemon's first pass
replaces whatever a crashed one left). Leave closes the applier before the overlay teardown removes
every chain.
"""

from __future__ import annotations

import logging
from functools import partial

import trio

from ..context import MemberContext
from ..netoverlay.firewall import Firewall
from ..netoverlay.traffic_apply import TrafficApplier
from ..raft.fsm import Change
from ..raft.state import ClusterState
from ..supervisor import drained, supervise, wait_any
from .overlay import wait_for_lease
from .traffic_index import TrafficIndex

log = logging.getLogger(__name__)

__all__ = ["serve_traffic"]

POLL_S = 5.0  # fallback: commits and gossip changes (reachability_changed) wake the loop at once
RESYNC_S = 30.0  # full rewrite, like the overlay's resync
RETRY_S = 1.0


async def serve_traffic(
    ctx: MemberContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Keep this node's ingress and VIP NAT rules equal to committed state."""
    task_status.started()
    await supervise(ctx.board.health, "traffic", partial(_run_traffic, ctx))


async def _run_traffic(ctx: MemberContext) -> None:
    store, board, node_id = ctx.store, ctx.board, ctx.local.node_id
    async with ctx.state_changes() as changes:
        await wait_for_lease(ctx, changes)
        await board.overlay_ready.wait()  # the bridge, the VXLAN device and the jumps into our chains
        applier = TrafficApplier(Firewall())
        board.traffic = applier
        try:
            next_full = trio.current_time()
            done: tuple[ClusterState, frozenset[str]] | None = None  # (state, unreachable) last applied
            index = TrafficIndex(node_id)
            burst: list[Change] = []  # changes not yet given to the index
            while True:
                reachability = board.reachability_changed  # before reading: a later change sets it
                state, unreachable = store.snapshot(), frozenset(board.unreachable_nodes())
                force = trio.current_time() >= next_full
                # the inputs are a function of these two (a state is immutable: the same object, the same
                # state): a poll that finds neither changed costs nothing, where recomputing them walked
                # every task (~0.35 s at 100,000 tasks, every POLL_S)
                same = done is not None and done[0] is state and done[1] == unreachable
                inputs = None
                if force or not same:
                    inputs, burst = index.update(state, unreachable, burst), []
                if inputs is not None:
                    try:
                        await applier.apply(inputs, force=force)
                        if force:
                            next_full = trio.current_time() + RESYNC_S
                        done = (state, unreachable)
                    except Exception as exc:  # logged and retried: stale rules beat no loop at all
                        log.warning("traffic rules not applied, retrying in %.0f s: %s", RETRY_S, exc)
                        await trio.sleep(RETRY_S)
                        continue
                with trio.move_on_after(max(0.0, min(POLL_S, next_full - trio.current_time()))):
                    await wait_any(partial(_receive_into, changes, burst), reachability.wait)
                burst += drained(changes)  # one rebuild per burst of commits
        finally:
            board.traffic = None


async def _receive_into(changes: trio.MemoryReceiveChannel[Change], burst: list[Change]) -> None:
    burst.append(await changes.receive())
