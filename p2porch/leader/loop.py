"""The leader loop: while this node leads Raft, run the scheduling round and commit its placements (shell).

The decisions are :func:`~p2porch.leader.scheduling.plan_scope`'s (pure), for the services the
:class:`~p2porch.leader.incremental.IncrementalPlanner` picks (every one now and then); this loop wakes on
commits, gossip membership changes and the round's own deadline, no sooner than the pause after the last
round (``leader/round_pause.py``), and writes the round's commands. Every write is fenced by the leader
epoch claimed before the round (``leader/epoch.py``): a deposed leader's late writes are refused, and it
stops its round at the first refusal or as soon as it sees it no longer leads.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from ..config import SchedulerConfig
from ..context import ClusterStore, MemberContext
from ..errors import ConflictError, NotAllowedError, P2POrchError, ProposalTimeout
from ..member.command_reads import update_node_hold_behind
from ..model import TaskState
from ..raft import codec
from ..raft import commands as C
from ..raft.state import ClusterState
from ..scheduler import Orchestrator
from ..supervisor import drain, supervise, wait_any
from .bookkeeping import Bookkeeping
from .cron import plan_cron
from .engine_outage import EngineOutages
from .engine_view import EngineVersions
from .epoch import claim_epoch, fenced, is_stale_epoch, still_leads
from .gil_share import LeadershipCheck, RoundAbandoned
from .incremental import IncrementalPlanner
from .leading import until_leading
from .pacing import PacingLimits, PacingSignals, WritePacer
from .restart_hold import HoldPlan, PastHolds, RestartHolds, sightings, without_hold_fields
from .round_pause import round_pause
from .scheduling import node_status_updates, round_commands
from .unseen import UnseenNodes

log = logging.getLogger(__name__)

__all__ = ["LEADER_DEBOUNCE_S", "LEADER_IDLE_CHECK_S", "serve_scheduler"]

LEADER_DEBOUNCE_S = 0.02
LEADER_IDLE_CHECK_S = 1.0
LEADER_QUIET_CHECK_S = 10.0  # after a round that planned nothing and set no wake time (a safety net)
PACE_LOG_EVERY_S = 5.0  # a budget that grew is logged at most this often (every cut is)


async def serve_scheduler(
    ctx: MemberContext,
    section: SchedulerConfig,
    *,
    rng: random.Random | None = None,
    pacing: PacingLimits | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """While this node leads Raft: reconcile services with tasks and commit placements.

    ``rng`` (default: freshly seeded) drives the orchestrator's tie-breaks; a test passes a seeded one,
    and may pass the self-pacing's ``pacing`` limits (default: ``PacingLimits()``)."""
    task_status.started()
    rng = rng or random.Random(secrets.randbits(64))
    run = partial(_run_scheduler, ctx, section, rng, pacing or PacingLimits())
    await supervise(ctx.board.health, "scheduler", run)


async def _run_scheduler(
    ctx: MemberContext, section: SchedulerConfig, rng: random.Random, pacing: PacingLimits
) -> None:
    store, board, clock = ctx.store, ctx.board, ctx.clock
    orchestrator = Orchestrator(
        rng,
        down_grace_s=section.down_grace_s,
        site_grace_s=section.site_grace_s,
        engine_grace_s=section.engine_down_grace_s,
    )
    check = LeadershipCheck()  # a deposed leader stops planning (see gil_share.py)
    planner = IncrementalPlanner(
        orchestrator, rebalance_max_moves=section.rebalance_max_moves, checkpoint=check
    )
    reported: set[tuple[str, int]] = set()  # invalid services already reported (id, version)
    unseen = UnseenNodes()  # ready nodes this leader's gossip has never seen (leader/unseen.py)
    holds = RestartHolds()  # nodes whose daemon announced a restart (leader/restart_hold.py)
    past_holds = PastHolds()  # the scheduler plans on a past hold as on none (its clear may be gated)
    engines = EngineVersions()  # the scheduler plans on the nodes' gossiped Docker versions
    outages = EngineOutages()  # engine outages timed on this leader's monotonic clock (engine_outage.py)
    pacer = WritePacer(pacing)  # the placement budget per round, from this node's health (leader/pacing.py)
    logged = PaceLog()
    book = Bookkeeping(ctx)  # update failure actions, cron ticks, ... (leader/bookkeeping.py)
    wake_by: float | None = None  # monotonic (clock.monotonic): a wall clock step moves no wake-up
    quiet = False  # the last round planned nothing: commits, gossip changes and wake_by wake the loop
    paced_until = 0.0  # trio time: no round starts before it (see round_pause.py)
    async with ctx.state_changes() as changes:
        while True:
            # a follower sleeps until it leads (then plans at once); a leader waits for work
            if not await until_leading(store, changes):
                check_s = LEADER_QUIET_CHECK_S if quiet else LEADER_IDLE_CHECK_S
                left = math.inf if wake_by is None else max(0.0, wake_by - clock.monotonic())
                timeout = min(check_s, left)
                with trio.move_on_after(timeout):
                    await wait_any(changes.receive, board.membership_changed.wait)
                    await trio.sleep(LEADER_DEBOUNCE_S)
                if (pause := paced_until - trio.current_time()) > 0:
                    await trio.sleep(pause)  # changes meanwhile are planned together in the next round
            board.membership_changed = trio.Event()
            quiet = False
            drain(changes)
            epoch = await claim_epoch(ctx)  # None: not (or no longer) the leader
            if epoch is None:
                wake_by = None
                planner.reset()  # another leader wrote meanwhile: the next round plans everything
                continue
            round_started = trio.current_time()
            state = store.snapshot()
            if await sync_node_statuses(ctx, state, epoch, unseen, holds):
                continue  # the status writes change the state: plan on the new one
            now, mono = clock.now(), clock.monotonic()  # the round's wall time and monotonic time
            cron = plan_cron(state, now)
            if cron.decisions and await book.cron_ticks(cron.decisions, epoch):
                continue  # the ticks are committed: the next round starts their executions
            planned_at = trio.current_time()
            # off the trio thread: at 100k tasks a full round takes seconds, and the API, the control port
            # and the store's callbacks must keep answering meanwhile (the state is immutable; only this
            # loop uses the planner)
            check.restart(partial(still_leads, store, epoch))
            # the Raft thread's lateness while this loop waited (a new leader's: while it followed)
            budget = pace(pacer, store, now, [], 0, 0, logged)
            bounded = partial(planner.plan, budget=budget, repair_budget=pacer.repair_budget())
            try:
                held = past_holds.view(engines.view(state, board.engine_versions()), now)
                view = outages.view(held, now, clock.monotonic())
                plan = await trio.to_thread.run_sync(bounded, view, now)
            except RoundAbandoned:  # deposed while planning: the rest of the round is wasted CPU
                log.info("leadership lost while planning: round abandoned")
                planner.reset()
                wake_by = None
                continue
            took = trio.current_time() - planned_at
            paced_until = (
                planned_at + took + round_pause(took, wrote=plan.writes, takeover=planner.last_takeover)
            )
            report_skipped(state, plan.skipped, reported)
            wake_at = min(
                (w for w in (plan.wake_at, cron.wake_at, holds.wake_at) if w is not None), default=None
            )
            # the wall wake-up as a monotonic deadline now: a wall step while the round writes or the loop
            # waits (a replacement's engine-outage grace runs on the monotonic clock) delays nothing
            wake_by = None if wake_at is None else mono + (wake_at - now)
            if planner.sweeping:  # a first round left settled services to the next rounds: plan again
                wake_by = mono  # at once, after the pause if any (paced_until)
            if await book.after_round(state, plan, epoch):
                continue  # the services changed: plan again on the new specs
            if plan.empty:
                quiet = not plan.skipped and planner.quiet
                continue
            commits: list[float] = []  # seconds each of the round's commands took to commit
            placed = 0
            try:
                if await write_round(ctx, round_commands(plan.items, now, state.version), epoch, commits):
                    placed = placements(state, plan.items)
                    ctx.metrics.scheduler_placements.inc(placed)
                    ctx.metrics.scheduler_round_seconds.observe(trio.current_time() - round_started)
                else:
                    wake_by = None  # deposed: the next turn finds out whether it leads again
            except ConflictError:
                wake_by = clock.monotonic()  # the state moved under us: plan again at once
            except ProposalTimeout as exc:
                commits.append(ctx.commit_timeout_s)  # at least that long: pressure
                log.warning("scheduling round not committed: %s", exc.message)
            held_back = plan.held_back + sum(plan.deferred_repairs.values())
            pace(pacer, store, clock.now(), commits, placed, held_back, logged)


@dataclass
class PaceLog:
    """The budget the leader's log last showed, and when (a grown budget is logged at most every
    ``PACE_LOG_EVERY_S``; every cut is)."""

    at: float = -math.inf
    budget: int | None = None


def pace(
    pacer: WritePacer,
    store: ClusterStore,
    now: float,
    commits: list[float],
    placed: int,
    held_back: int,
    logged: PaceLog | None = None,
) -> int | None:
    """Feed measurements to the pacer (its Raft thread's lateness since the last call, against its
    followers' estimated election window; the round's slowest commit; what it placed), say when the
    budget was cut (and, every ``PACE_LOG_EVERY_S`` at most, when it grew); the budget for the next
    round."""
    late = store.tick_lateness.take()
    signals = PacingSignals(late.late_s, late.share, max(commits, default=0.0), placed)
    logged = logged or PaceLog()
    if not pacer.observe(now, signals):
        budget = pacer.budget()
        if budget != logged.budget and now - logged.at >= PACE_LOG_EVERY_S:
            logged.at, logged.budget = now, budget
            log.info(
                "leader pacing: %s (grown; lateness %.2f s recent, %.2f s baseline)",
                "no bound" if budget is None else f"at most {budget} placements per round",
                pacer.recent,
                pacer.baseline,
            )
        return budget
    logged.at, logged.budget = now, pacer.budget()
    log.info(
        "leader pacing: at most %s placements per round (%s: Raft tick %.2f s late, %.2f of the "
        "followers' window %.2f s; lateness %.2f s recent, %.2f s baseline; slowest commit %.2f s, "
        "%d placed, %d held back)",
        pacer.budget(),
        pacer.why,
        signals.tick_late_s,
        signals.tick_share,
        late.window_s,
        pacer.recent,
        pacer.baseline,
        signals.commit_s,
        placed,
        held_back,
    )
    return pacer.budget()


async def write_round(
    ctx: MemberContext, commands: list[C.PutTasks], epoch: int, commits: list[float] | None = None
) -> bool:
    """Commit a round's commands in order, each fenced by ``epoch``; False (the rest unwritten) once this
    node no longer leads in that epoch (seen locally before a command, or refused by the FSM). The
    seconds each committed command took go to ``commits`` (trio time)."""
    for i, put in enumerate(commands):
        if not still_leads(ctx.store, epoch):
            log.warning(
                "leadership lost mid-round: %d of %d commands not written", len(commands) - i, len(commands)
            )
            return False
        started = trio.current_time()
        try:
            await ctx.write(fenced(put, epoch))
            if commits is not None:
                commits.append(trio.current_time() - started)
        except ConflictError as exc:
            if not is_stale_epoch(exc):
                raise
            log.warning(
                "deposed mid-round (%s): %d of %d commands refused",
                exc.message,
                len(commands) - i,
                len(commands),
            )
            return False
    return True


def placements(state: ClusterState, items: list[Any]) -> int:
    """Task records of a round that put a task on a node it was not on before."""
    count = 0
    for item in items:
        record = getattr(item, "task", None)
        if record is None or record.node_id is None or record.state != TaskState.ASSIGNED:
            continue
        before = state.tasks.get(record.task_id)
        if before is None or before.node_id != record.node_id:
            count += 1
    return count


def report_skipped(state: ClusterState, skipped: dict[str, str], reported: set[tuple[str, int]]) -> None:
    """Say once per service version that the leader leaves an invalid service alone (the event)."""
    for service_id, why in skipped.items():
        key = (service_id, state.services[service_id].version)
        if key not in reported:
            reported.add(key)
            log.error("service %s is left alone: its committed spec is invalid here (%s)", service_id, why)


async def sync_node_statuses(
    ctx: MemberContext,
    state: ClusterState,
    epoch: int,
    unseen: UnseenNodes | None = None,
    holds: RestartHolds | None = None,
) -> bool:
    """Leader only: write node statuses that gossip contradicts (ready <-> down), ``down`` for ready
    nodes its gossip has never seen within ``unseen``'s grace, and the restart holds ``holds`` decides
    (a held node is not marked down meanwhile; ``holds.wake_at``: when the next hold runs out); True if
    any changed.

    The writes are one Raft entry (``propose_together``): nodes that gossip saw change together (joins in
    parallel, a partition healing) cost every node one entry to replicate, apply and rebuild its views
    for, not one per node (issue 19, joins). A refused mark (the record moved) is logged; another
    refusal (no longer the leader) ends the round."""
    members = ctx.board.gossip.members() if ctx.board.gossip is not None else {}  # one O(nodes) read
    gossip = {node_id: member.state for node_id, member in members.items()}  # board.gossip_states()
    now = ctx.clock.now()
    hold = HoldPlan()
    if holds is not None:  # the hold is update_node version 2: only once every member reads it
        seen = sightings(members)
        asked = any(s.restart_until for s in seen.values()) or any(
            n.restart_until for n in state.nodes.values()
        )
        behind = update_node_hold_behind(state, members) if asked else []
        hold = holds.plan(state, seen, now, allowed=not behind)
        holds.wake_at = hold.wake_at
        report_blocked_holds(ctx, state, hold, behind, holds.reported)
    never_seen = [] if unseen is None else unseen.downs(state, gossip, ctx.local.node_id, now, epoch)
    updates = hold.node_updates(node_status_updates(state, gossip), never_seen)
    if not updates:
        return False
    for node_id, change in updates.items():
        if node_id in hold.updates:
            why = hold.why(node_id)
        else:
            why = "never seen by gossip" if node_id in never_seen else "gossip"
        log.info("node %s is %s (%s)", state.nodes[node_id].name, change.get("status", "ready"), why)
    try:
        results = await propose_node_updates(ctx, state, updates, now, epoch)
    except ProposalTimeout as exc:
        log.info("node status writes not committed: %s", exc.message)
        return True
    failed: list[P2POrchError] = []  # raised after the others were looked at
    for node_id, result in zip(updates, results, strict=True):
        try:
            C.raise_for_result(result)
        except ConflictError as exc:
            log.info("node status write for %s not committed: %s", node_id, exc.message)
        except P2POrchError as exc:  # e.g. a deposed leader's epoch: the round ends as before
            failed.append(exc)
    if failed:
        raise failed[0]
    return True


#: the result of a hold-only update the gate refused: as a conflict, logged, and the next round decides
NOT_WRITTEN = codec.error("ConflictError", "its restart hold is not read by every node (not proposed)")


async def propose_node_updates(
    ctx: MemberContext, state: ClusterState, updates: dict[str, dict[str, Any]], now: float, epoch: int
) -> list[dict[str, Any]]:
    """Propose ``updates`` (node id -> ``UpdateNode`` fields) together, fenced by ``epoch``; their
    results in order. A hold the gate refuses (a member stopped reading ``update_node`` version 2 since
    the plan) does not drop the others: they go again without the hold fields, a hold-only one answers
    as not written (``NOT_WRITTEN``)."""

    async def propose(changes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        commands = [
            fenced(C.UpdateNode(at=now, node_id=n, node_version=state.nodes[n].version, **change), epoch)
            for n, change in changes.items()
        ]
        return await ctx.store.propose_together(commands, ctx.commit_timeout_s)

    try:
        return await propose(updates)
    except NotAllowedError as exc:
        log.info("node status writes proposed without their restart holds: %s", exc.message)
    plain = {n: kept for n, change in updates.items() if (kept := without_hold_fields(change))}
    results = dict(zip(plain, await propose(plain), strict=True))
    return [results.get(n, NOT_WRITTEN) for n in updates]


def report_blocked_holds(
    ctx: MemberContext,
    state: ClusterState,
    hold: HoldPlan,
    behind: list[str],
    reported: set[tuple[str, str, int]],
) -> None:
    """Log once per node and hold (and count) the holds and clears the gate ``hold.blocked``, naming the
    members ``behind``; ``reported`` keeps those still blocked."""
    now_blocked = {(node_id, what, inc) for node_id, (what, inc) in hold.blocked.items()}
    names = [node.name if (node := state.nodes.get(n)) is not None else n for n in behind]
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    for node_id, what, _ in sorted(now_blocked - reported):
        log.warning(
            "%s of node %s not written: the command-version gate is closed by %s, which do not read "
            "update_node version 2 (upgrade them, or `p2porch node rm` a node gone for good); meanwhile "
            "a past hold counts as none",
            "restart hold" if what == "hold" else "clear of the restart hold",
            state.nodes[node_id].name,
            shown,
        )
        ctx.metrics.restart_holds_gated.labels(what).inc()
    reported.clear()
    reported.update(now_blocked)
