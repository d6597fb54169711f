"""The autopilot loop: while this node leads Raft, keep the configured number of healthy voters (shell).

The decision is :func:`~p2porch.leader.autopilot.next_voter_change` (pure); this loop gathers its inputs
(Raft status, gossip, which promoted nodes already run as voters) and carries out one step at a time: one
change, or the adds of every voter that runs and waits, each once the one before it committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from functools import partial
from typing import Any

import trio

from ..config import RaftConfig
from ..context import MemberContext
from ..errors import ConflictError, ProposalTimeout, RaftError
from ..model import Node, NodeRole, NodeStatus
from ..raft import commands as C
from ..raft.state import ClusterState
from ..supervisor import drained, supervise, wait_any
from .autopilot import (
    AdmittedVoters,
    VoterAnswers,
    VoterChange,
    next_check_s,
    next_voter_change,
    voters_target,
)
from .epoch import write_as_leader
from .leading import until_leading

log = logging.getLogger(__name__)

__all__ = ["AUTOPILOT_CHECK_S", "serve_autopilot"]

AUTOPILOT_CHECK_S = 0.5  # while a step is under way (a voter being added, a grace running out)
AUTOPILOT_QUIET_CHECK_S = 10.0  # nothing pending: commits and gossip changes wake the loop (a safety net)
AUTOPILOT_MIN_GAP_S = 0.05  # at most ~20 checks a second however often the state changes
VOTER_ANSWER_TTL_S = 2.0  # a waiting voter's "I run as a voter" is asked again after this (VoterAnswers)


async def serve_autopilot(
    ctx: MemberContext, section: RaftConfig, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """While this node leads Raft: keep the configured number of healthy voters (see autopilot.py)."""
    task_status.started()
    await supervise(ctx.board.health, "autopilot", partial(_run_autopilot, ctx, section))


async def _run_autopilot(ctx: MemberContext, section: RaftConfig) -> None:
    self_addr = ctx.local.voter_addr
    wait_s = AUTOPILOT_CHECK_S
    answers = VoterAnswers(VOTER_ANSWER_TTL_S)
    admitted = AdmittedVoters()
    looked_at = float("-inf")  # when the last look ended (trio's clock)
    async with ctx.state_changes() as changes:
        woke: list[Any] = []  # the change that woke the loop: noted with the rest, never dropped

        async def next_change() -> None:
            woke.append(await changes.receive())

        while True:
            if await until_leading(ctx.store, changes):  # a follower does not wake for it
                wait_s = 0.0  # a new leader looks at once
            # a committed change (a joiner marked ready) or a gossip change (a voter died) is looked at
            # at once, not at the next check: a joining voter is added about as soon as it runs; when
            # nothing is under way the next check is AUTOPILOT_QUIET_CHECK_S away
            gossip = ctx.board.reachability_changed  # taken before the step reads gossip
            with trio.move_on_after(wait_s):
                await wait_any(next_change, gossip.wait)
            # at least AUTOPILOT_MIN_GAP_S after the last look ended, and so after an add or a remove: the
            # store's status (at most ``status_refresh_s``, 50 ms, old) must show the change, or the next
            # look repeats it (without the gap one run re-added a voter 10 times in 2 ms, each "done in
            # 0.000 s"); a loop that waited longer than that looks at once (issue 19: a ready voter)
            await trio.sleep(max(0.0, looked_at + AUTOPILOT_MIN_GAP_S - trio.current_time()))
            changed = [c.record for c in [*woke, *drained(changes)] if c.kind == "node" and c.op == "put"]
            woke.clear()
            admitted.note(changed, ctx.store.status().term)  # every record, even one between two looks
            wait_s = await _autopilot_step(ctx, section, self_addr, answers, admitted)
            looked_at = trio.current_time()


async def _autopilot_step(
    ctx: MemberContext,
    section: RaftConfig,
    self_addr: str | None,
    answers: VoterAnswers,
    admitted: AdmittedVoters,
) -> float:
    """One look (and at most one step); returns how long the loop may wait before the next look."""
    store = ctx.store
    status = store.status()
    if not status.is_leader or self_addr is None:
        return AUTOPILOT_CHECK_S
    state = store.snapshot()
    admitted.observe(state.nodes.values(), status.voters, status.term)
    live = [n for n in state.nodes.values() if n.status != NodeStatus.LEFT]
    alive = {node_id for node_id, seen in ctx.board.gossip_states().items() if seen == "alive"}
    asked_at = ctx.clock.now()
    running = await voters_running(ctx, state, status.voters, answers, partial(admitted.running, alive=alive))
    added: set[str] = set()  # committed by this step (the store's status may not show them yet)
    while True:
        change = next_voter_change(
            state.nodes.values(),
            set(status.voters) | added,
            alive,
            running,
            ctx.clock.now(),
            target=voters_target(section, len(live)),
            grace_s=section.replace_dead_voter_s,
            self_addr=self_addr,
        )
        if change is None:
            break
        done = await apply_voter_change(ctx, state, change)
        if change.kind != "add" or not done:
            # a configuration change commits no state change, so nothing would wake the loop for the
            # next step: look again at once (a promotion's or demotion's commit wakes it anyway)
            return 0.0 if change.kind in ("add", "remove") else AUTOPILOT_CHECK_S
        # the next voter that runs and waits is added as soon as this add committed, in this step: no
        # loop turn, no 50 ms gap and no fresh status between them (issue 19's staircase: the leader's
        # loop took 0.14-0.36 s from one add's commit to the next add in an 8-way formation); the same
        # look's records, gossip and answers decide it, as they decided the first
        added.add(change.addr)
        if not store.status().is_leader or ctx.clock.now() - asked_at > VOTER_ANSWER_TTL_S:
            return 0.0  # no longer leading, or the answers are past their TTL (a slow commit): look afresh
        state = store.snapshot()
        alive = {node_id for node_id, seen in ctx.board.gossip_states().items() if seen == "alive"}
    if added:
        return 0.0
    grace_s = section.replace_dead_voter_s
    return next_check_s(
        live,
        status.voters,
        ctx.clock.now(),
        grace_s=grace_s,
        check_s=AUTOPILOT_CHECK_S,
        quiet_s=AUTOPILOT_QUIET_CHECK_S,
    )


async def voters_running(
    ctx: MemberContext,
    state: ClusterState,
    raft_voters: Collection[str],
    answers: VoterAnswers,
    known_running: Callable[[list[Node]], set[str]] = lambda pending: set(),
) -> set[str]:
    """Raft addresses of nodes recorded as voters, not in the configuration yet, that answer (join port)
    that their store runs as a voter of this generation; a recent answer (``answers``) is not asked again,
    nor are those ``known_running`` says run as voters (``AdmittedVoters.running``)."""
    pending = [
        n
        for n in state.nodes.values()
        if n.role == NodeRole.VOTER and n.status == NodeStatus.READY and n.raft_addr not in raft_voters
    ]
    known = answers.running((n.raft_addr for n in pending), state.generation, ctx.clock.monotonic())
    known = known | known_running(pending)

    async def ask(node: Node) -> None:
        answer = await ctx.ask_member(node.join_target)
        if answer and (answer.get("running_role"), answer.get("running_generation")) == (
            "voter",
            state.generation,
        ):
            answers.note(node.raft_addr, state.generation, ctx.clock.monotonic())
            known.add(node.raft_addr)

    async with trio.open_nursery() as nursery:
        for node in pending:
            if node.raft_addr not in known:
                nursery.start_soon(ask, node)
    return known


async def apply_voter_change(ctx: MemberContext, state: ClusterState, change: VoterChange) -> bool:
    """Carry out one autopilot step; True once done. A failure is logged (False) and the next check
    decides again."""
    log.warning("autopilot: %s %s (%s)", change.kind, change.addr, change.reason)
    started = ctx.clock.monotonic()
    try:
        if change.kind == "add":
            await ctx.voter_control.add_voter(change.addr, timeout_s=15)
        elif change.kind == "remove":
            await ctx.voter_control.remove_voter(change.addr)
        else:
            assert change.node_id is not None
            node = state.nodes[change.node_id]
            role = NodeRole.VOTER if change.kind == "promote" else NodeRole.REPLICA
            update = C.UpdateNode(
                at=ctx.clock.now(), node_id=node.node_id, role=role, node_version=node.version
            )
            await write_as_leader(ctx, update)
    except (RaftError, ConflictError, ProposalTimeout) as exc:
        log.warning("autopilot: %s %s failed: %s", change.kind, change.addr, exc.message)
        await trio.sleep(1.0)
        return False
    log.info("autopilot: %s %s done in %.3f s", change.kind, change.addr, ctx.clock.monotonic() - started)
    return True
