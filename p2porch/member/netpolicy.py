"""Member service: the network isolation rules of this node, following committed state (shell).

After every burst of commits (and every ``RESYNC_S`` seconds, to repair rules changed by hand) it builds
the plan for this node (:class:`p2porch.member.policy_planner.PolicyPlanner`: planned again only when an
address, network, the lease or the CIDR changed) and applies it in a worker thread
when it changed or the resync is due. The kernel state outlives the daemon: a restarted daemon's first
pass compares and repairs; ``leave`` removes the chains with the overlay's firewall rules.
"""

from __future__ import annotations

import logging
import math
from functools import partial

import trio

from ..context import MemberContext
from ..netoverlay.firewall import Firewall
from ..netoverlay.netpolicy import PolicyPlan
from ..netoverlay.policy_firewall import PolicyFirewall
from ..raft.fsm import Change
from ..supervisor import drained, supervise
from .overlay import wait_for_lease
from .policy_planner import PolicyPlanner

log = logging.getLogger(__name__)

__all__ = ["RESYNC_S", "serve_network_policy"]

RESYNC_S = 30.0


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
        planner = PolicyPlanner(ctx.local.node_id)
        burst: list[Change] = []
        while True:
            plan = planner.plan(ctx.store.snapshot(), burst)
            burst = []
            if plan is not None:
                due = ctx.clock.monotonic() >= next_resync
                if due or applied is None or plan.text != applied.text:
                    done = await trio.to_thread.run_sync(firewall.apply, plan)
                    if done:
                        log.info("network policy: %s", "; ".join(done))
                    applied = plan
                    if due:
                        next_resync = ctx.clock.monotonic() + RESYNC_S
            with trio.move_on_after(RESYNC_S):
                burst.append(await changes.receive())
                burst += drained(changes)
