"""Member service: this node's ingress and VIP rules, rebuilt from committed state and gossip (shell).

Recomputes the pure view (``views.traffic_inputs``, kept by a ``TrafficIndex``: only the services the commits
touched are walked again) on every committed change and every gossip change of reachability
(``LocalBoard.reachability_changed``: a node declared dead is not a commit; an idle node does not poll for
it), when a restart hold runs out (``held.py``: a held node's tasks serve on while gossip calls its daemon
dead, until then), at least every ``POLL_S``, writes the rules only when they changed, and rewrites them in
full every ``RESYNC_S`` (hand edits are repaired; a restarted daemon's first pass replaces whatever a crashed
one left) and at once when the node's Docker engine answers again (``LocalBoard.engine_back``: a restarted
dockerd may have rewritten the tables). A write that drops backends deletes their conntrack entries (counted
in ``p2porch_conntrack_flushed``) in a task beside the loop, after the version is published: neither the next
write nor the drain acknowledgement waits for a flush. Leave closes the applier before the overlay teardown
removes every chain.

After a pass whose rules changed, or whose commits asked a task to stop, or a full rewrite, it publishes the
state version the rules now reflect (``drain_acks.publish_traffic_index``): a stopping task's agent waits for
every live node's index to reach its stop commit. A pass that carried a stop logs how long after the commit
arrived its rules were written.
"""

from __future__ import annotations

import logging
from functools import partial

import trio

from ..context import MemberContext
from ..model import TERMINAL_STATES, DesiredState
from ..netoverlay.conntrack_flush import ConntrackFlusher
from ..netoverlay.firewall import Firewall
from ..netoverlay.traffic_apply import TrafficApplier
from ..raft.fsm import Change
from ..raft.state import ClusterState
from ..supervisor import drained, supervise, wait_any
from .drain_acks import publish_traffic_index
from .held import data_path_out, next_hold_end
from .overlay import wait_for_lease
from .traffic_index import TrafficIndex

log = logging.getLogger(__name__)

__all__ = ["serve_traffic"]

POLL_S = 5.0  # fallback: commits and gossip changes (reachability_changed) wake the loop at once
RESYNC_S = 30.0  # full rewrite, like the overlay's resync
RETRY_S = 1.0
HOLD_END_MARGIN_S = 0.05  # a pass this long after a hold runs out finds it past


async def serve_traffic(
    ctx: MemberContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Keep this node's ingress and VIP NAT rules equal to committed state."""
    task_status.started()
    await supervise(ctx.board.health, "traffic", partial(_run_traffic, ctx))


async def _run_traffic(ctx: MemberContext) -> None:
    store, board, node_id = ctx.store, ctx.board, ctx.local.node_id
    async with ctx.state_changes() as changes, trio.open_nursery() as flushes:
        await wait_for_lease(ctx, changes)
        await board.overlay_ready.wait()  # the bridge, the VXLAN device and the jumps into our chains
        flushed = ctx.metrics.conntrack_flushed
        applier = TrafficApplier(
            Firewall(), ConntrackFlusher(), lambda proto, n: flushed.labels(proto).inc(n)
        )
        board.traffic = applier
        try:
            next_full = trio.current_time()
            done: tuple[ClusterState, frozenset[str]] | None = None  # (state, unreachable) last applied
            index = TrafficIndex(node_id)
            burst: list[Change] = []  # changes not yet given to the index
            announce, stops, first_seen = True, 0, trio.current_time()  # what the next written pass tells
            while True:
                reachability = board.reachability_changed  # before reading: a later change sets it
                engine_back = board.engine_back  # likewise: the engine answering again sets it
                state, now = store.snapshot(), ctx.clock.now()
                # dead or left in gossip, unless held while its daemon restarts (its containers serve on)
                unreachable = data_path_out(state, board.gone_nodes(), now)
                force = trio.current_time() >= next_full
                # the inputs are a function of these two (a state is immutable: the same object, the same
                # state): a poll that finds neither changed costs nothing, where recomputing them walked
                # every task (~0.35 s at 100,000 tasks, every POLL_S)
                same = done is not None and done[0] is state and done[1] == unreachable
                inputs = None
                if force or not same:
                    stops += sum(map(_asks_stop, burst))
                    inputs, burst = index.update(state, unreachable, burst), []
                if inputs is not None:
                    try:
                        wrote = await applier.apply(inputs, force=force)
                        if force:
                            next_full = trio.current_time() + RESYNC_S
                        done = (state, unreachable)
                        if stops:
                            log.info(
                                "traffic rules at version %d (%d stops) applied %.3f s after the commit "
                                "arrived (iptables-restore %.3f s, written: %s)",
                                state.version,
                                stops,
                                trio.current_time() - first_seen,
                                applier.last_apply_s,
                                wrote,
                            )
                        if announce or stops or wrote:
                            publish_traffic_index(board, state.version)
                        if applier.flush_waiting:
                            flushes.start_soon(applier.flush_removed)
                        announce, stops = False, 0
                    except Exception as exc:  # logged and retried: stale rules beat no loop at all
                        log.warning("traffic rules not applied, retrying in %.0f s: %s", RETRY_S, exc)
                        await trio.sleep(RETRY_S)
                        continue
                wait_s = min(POLL_S, next_full - trio.current_time())
                if (hold_end := next_hold_end(state, now)) is not None:  # its tasks leave then
                    wait_s = min(wait_s, hold_end - now + HOLD_END_MARGIN_S)
                with trio.move_on_after(max(0.0, wait_s)):
                    await wait_any(
                        partial(_receive_into, changes, burst), reachability.wait, engine_back.wait
                    )
                if engine_back.is_set():  # a restarted dockerd may have rewritten nat and filter: all again
                    log.info("traffic rules: the docker engine answers again, rewriting them in full")
                    next_full = trio.current_time()
                first_seen = trio.current_time()
                burst += drained(changes)  # one rebuild per burst of commits
        finally:
            board.traffic = None


def _asks_stop(change: Change) -> bool:
    """A task record committed with desired state shutdown that has not ended yet (its agent may wait for
    this node's index; the later report that it ended is not a stop)."""
    record = change.record
    return (
        change.kind == "task"
        and record is not None
        and record.desired_state == DesiredState.SHUTDOWN
        and record.state not in TERMINAL_STATES
    )


async def _receive_into(changes: trio.MemoryReceiveChannel[Change], burst: list[Change]) -> None:
    burst.append(await changes.receive())
