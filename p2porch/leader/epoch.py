"""The leader epoch this node's leader loops write under: claim it, stamp writes with it (shell helper).

A leader's decisions are fenced by its Raft term. Before a loop plans anything it makes sure that term
is the committed leader epoch (:func:`claim_epoch` commits ``ClaimLeaderEpoch`` once per term); every
write it then makes carries that epoch (:func:`fenced`), and the FSM refuses a write whose epoch is older
than the latest claimed one. A deposed leader whose writes arrive late (forwarded to the new leader after
it claimed its term) is therefore refused by every replica alike, however long its round took to plan.
:func:`still_leads` is the cheap local check between two writes of one round. Nothing here plans.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from ..context import ClusterStore, MemberContext
from ..errors import ConflictError, ProposalTimeout
from ..raft import commands as C

log = logging.getLogger(__name__)

__all__ = ["claim_epoch", "fenced", "is_stale_epoch", "still_leads", "write_as_leader"]


async def claim_epoch(ctx: MemberContext) -> int | None:
    """The epoch this node leads under, committed: its Raft term. None if it does not lead, a newer
    leader has claimed a later epoch, or the claim did not commit (the caller tries again later)."""
    status = ctx.store.status()
    state = ctx.store.snapshot()
    if not status.is_leader or not state.initialized or status.term < 1:
        return None
    if state.leader_epoch == status.term:
        return status.term
    if state.leader_epoch > status.term:
        return None  # a newer leader claimed its term: this node is deposed (its status is behind)
    try:
        await ctx.write(C.ClaimLeaderEpoch(at=ctx.clock.now(), epoch=status.term).encode())
    except (ConflictError, ProposalTimeout) as exc:
        log.info("leader epoch %d not claimed: %s", status.term, exc.message)
        return None
    log.info("leading under epoch %d", status.term)
    return status.term


async def write_as_leader(ctx: MemberContext, command: C.Command) -> Any:
    """Write ``command`` fenced by this node's leader epoch (claimed first if need be): the leader loops
    that write one command now and then (autopilot, autoscaler, re-seal). Its result; ConflictError
    (field ``leader_epoch``, unwritten) when this node does not lead or a newer leader claimed a later
    epoch, as every other refusal."""
    epoch = await claim_epoch(ctx)
    if epoch is None:
        raise ConflictError("this node does not lead (or no longer): not written", field="leader_epoch")
    return await ctx.write(fenced(command, epoch))


def still_leads(store: ClusterStore, epoch: int) -> bool:
    """This node still leads in the term of ``epoch`` (as far as it knows: the FSM decides for sure)."""
    status = store.status()
    return status.is_leader and status.term == epoch


def fenced(command: C.Command, epoch: int) -> bytes:
    """``command`` encoded as a leader command of ``epoch``."""
    return dataclasses.replace(command, leader_epoch=epoch).encode()


def is_stale_epoch(exc: ConflictError) -> bool:
    """The refusal says a newer leader claimed a later epoch (this node is deposed)."""
    return exc.field == "leader_epoch"
