"""Member service: the network isolation rules of this node, following committed state (shell).

After every burst of commits (and every ``RESYNC_S`` seconds, to repair rules changed by hand) it builds the
plan for this node (:class:`p2porch.member.policy_planner.PolicyPlanner`: kept from the changed addresses, a
new plan object only when an address, network, the lease or the CIDR changed) and applies it in a worker
thread when it changed (the set edits since the last plan, O(changed addresses)) or the resync is due (the
kernel's sets read and compared whole): every ``RESYNC_S`` and at once when the node's Docker engine answers
again (``LocalBoard.engine_back``: a restarted dockerd may have rewritten its chains). The kernel state
outlives the daemon: a restarted daemon's first pass compares and repairs; ``leave`` removes the chains with
the overlay's firewall rules.
"""

from __future__ import annotations

import logging
import math
from functools import partial

import trio

from ..context import MemberContext
from ..debounce import VIEW_REBUILD_MAX_GAP_S, VIEW_REBUILD_SHARE, CostShare, Debounce
from ..netoverlay.firewall import Firewall
from ..netoverlay.netpolicy import PolicyPlan
from ..netoverlay.policy_firewall import PolicyFirewall
from ..raft.fsm import Change
from ..supervisor import drained, supervise, wait_any
from .overlay import wait_for_lease
from .policy_planner import PolicyPlanner
from .task_networks import shared_index

log = logging.getLogger(__name__)

__all__ = ["POLICY_MAX_DELAY_S", "POLICY_QUIET_S", "RESYNC_S", "next_burst", "serve_network_policy"]

RESYNC_S = 30.0
#: a burst of commits is planned once it pauses for POLICY_QUIET_S, at the latest POLICY_MAX_DELAY_S after
#: its first change: while agents report tasks (each RUNNING report brings an address) every commit changed
#: the input and the whole rule set (O(task addresses)) was planned per commit. A task the rules do not
#: know yet is not policed (module docstring of netoverlay/netpolicy.py), so the delay never refuses a
#: connection; it delays isolation of a new address by at most this much (plus the rewrite itself).
POLICY_QUIET_S = 0.05
POLICY_MAX_DELAY_S = 1.0


async def serve_network_policy(
    ctx: MemberContext, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Keep this node's isolation chains equal to the committed networks and task addresses."""
    task_status.started()
    await supervise(ctx.board.health, "netpolicy", partial(_run_policy, ctx, PolicyFirewall(Firewall())))


async def _run_policy(ctx: MemberContext, firewall: PolicyFirewall) -> None:
    async with ctx.state_changes() as changes:
        await wait_for_lease(ctx, changes)
        await ctx.board.overlay_ready.wait()  # after the overlay's own rules and dockerd's chains
        applied: PolicyPlan | None = None
        next_resync = -math.inf
        planner = PolicyPlanner(ctx.local.node_id, shared_index(ctx.board))  # the DNS view's index
        burst: list[Change] = []
        debounce = Debounce(POLICY_QUIET_S, POLICY_MAX_DELAY_S)
        pacing = CostShare(VIEW_REBUILD_SHARE, VIEW_REBUILD_MAX_GAP_S)  # a plan is O(task addresses)
        while True:
            engine_back = ctx.board.engine_back  # before the pass: the engine answering later sets it
            started = trio.current_time()
            plan = planner.plan(ctx.store.snapshot(), burst)
            pacing.done(started, trio.current_time())
            burst = []
            if plan is not None:
                due = ctx.clock.monotonic() >= next_resync
                if due or applied is None or plan is not applied:  # a new plan object: something changed
                    done = await trio.to_thread.run_sync(partial(firewall.apply, plan, verify=due))
                    if done:
                        log.info("network policy: %s", "; ".join(done))
                    applied = plan
                    if due:
                        next_resync = ctx.clock.monotonic() + RESYNC_S
            await trio.sleep(pacing.wait_s(trio.current_time()))
            await wait_any(partial(next_burst, changes, debounce, burst, RESYNC_S), engine_back.wait)
            if engine_back.is_set():  # a restarted dockerd may have rewritten FORWARD/DOCKER-USER: verify
                log.info("network policy: the docker engine answers again, checking the kernel's rules")
                next_resync = -math.inf
                burst += drained(changes)  # a burst cut short: the snapshot read next holds these too
                debounce.first = debounce.last = None  # taken with it: the next burst is debounced anew


async def next_burst(
    changes: trio.MemoryReceiveChannel[Change], debounce: Debounce, burst: list[Change], wait_s: float
) -> None:
    """Append to ``burst`` the next changes once they pause (``debounce``); waits at most ``wait_s`` for
    the first one (then returns with ``burst`` unchanged). Returns right after draining the channel: a
    snapshot read before the next await holds exactly the changes in ``burst``."""
    with trio.move_on_after(wait_s):
        burst.append(await changes.receive())
    if not burst:
        return
    burst += drained(changes)
    debounce.change(trio.current_time())
    while not debounce.take(trio.current_time()):
        due = debounce.due_at()
        assert due is not None
        with trio.move_on_after(max(0.0, due - trio.current_time())):
            burst.append(await changes.receive())
            burst += drained(changes)
            debounce.change(trio.current_time())
    # a commit delivered while the last wait was being cancelled is queued, and already in the store's
    # snapshot: take it too, so the caller's snapshot (read next, without awaiting) matches the burst
    burst += drained(changes)
