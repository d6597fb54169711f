"""The leader's bookkeeping writes on services after a round (shell): cron ticks, a failed rollout's pause
or rollback, completed rollouts, finished `service rebalance` requests (decided in ``leader/cron.py`` and
``leader/followups.py``, whose generators say what to write and what each outcome means: the cluster
simulator drives the same ones).

Each write is conditional on the service version read and fenced by the round's leader epoch. A lost race
(the service changed, the commit timed out) is logged and decided again next round; a refusal of the
write itself (a spec the FSM no longer admits) is logged once per service version and message, never
raised out of the scheduler. A refused automatic rollback is written as a pause naming the refusal, so
the failing service stops asking for it and the rest of the cluster is scheduled.
"""

from __future__ import annotations

import logging

from ..context import MemberContext
from ..errors import ConfigError, ConflictError, NotFoundError, ProposalTimeout
from ..model import Service
from ..raft import commands as C
from ..raft.state import ClusterState
from .cron import CronDecision
from .epoch import fenced, still_leads
from .followups import (
    COMMITTED,
    DEPOSED,
    RACE_FIELDS,
    Outcome,
    Writes,
    cron_writes,
    outcome_of,
    round_writes,
)
from .scheduling import Round

log = logging.getLogger(__name__)

__all__ = ["COMMITTED", "DEPOSED", "RACE_FIELDS", "Bookkeeping", "Outcome"]

#: refusals remembered (logged once each); past it the memory starts afresh
MAX_REMEMBERED = 4096


class Bookkeeping:
    """Writes the leader's bookkeeping on services for the leader loop; owns the refusals already
    logged (``(service_id, version, message)``). Never raises a refused or lost write, and never
    writes once this node no longer leads in the round's epoch."""

    def __init__(self, ctx: MemberContext) -> None:
        self.ctx = ctx
        self.refused: set[tuple[str, int, str]] = set()

    async def cron_ticks(self, decisions: list[CronDecision], epoch: int) -> bool:
        """Commit cron ticks (``followups.cron_writes``); True when one committed or this node was
        deposed (the round ends)."""
        return await self.drive(cron_writes(decisions), epoch)

    async def after_round(self, state: ClusterState, plan: Round, epoch: int) -> bool:
        """The round's update failure actions, else its completed rollouts, else its finished rebalances
        (``followups.round_writes``): True when one committed (the next round plans on the new specs) or
        this node was deposed; False when nothing committed, and the round goes on to its placements."""
        now = self.ctx.clock.now()
        return await self.drive(round_writes(state, plan, now, self.ctx.store.command_readers), epoch)

    async def drive(self, writes: Writes, epoch: int) -> bool:
        """Carry out the decision ``writes``: each write it yields, logged, written and its outcome sent
        back; what it returns."""
        try:
            write = next(writes)
            while True:
                if write.note:
                    log.log(write.level, "%s", write.note)
                write = writes.send(await self.write(write.service, write.update, write.what, epoch))
        except StopIteration as stop:
            return bool(stop.value)

    async def write(self, service: Service, update: C.UpdateService, what: str, epoch: int) -> Outcome:
        """Write one bookkeeping ``update`` on ``service`` fenced by ``epoch`` (not at all once this node
        no longer leads in it), and say how it ended."""
        if not still_leads(self.ctx.store, epoch):
            log.info("%s for %s not written: this node no longer leads", what, service.name)
            return DEPOSED
        try:
            await self.ctx.write(fenced(update, epoch))
        except (ConfigError, ConflictError, NotFoundError, ProposalTimeout) as exc:
            outcome = outcome_of(exc)
            if outcome.kind == "refused":
                self.refused_once(service, what, exc.message)
            elif outcome is DEPOSED:
                log.info("%s for %s refused: deposed (%s)", what, service.name, exc.message)
            else:
                log.info("%s for %s not committed: %s", what, service.name, exc.message)
            return outcome
        return COMMITTED

    def refused_once(self, service: Service, what: str, message: str) -> None:
        """Log a refusal, once per service version and message."""
        key = (service.service_id, service.version, message)
        if key in self.refused:
            return
        if len(self.refused) >= MAX_REMEMBERED:
            self.refused.clear()
        self.refused.add(key)
        log.warning("%s for %s refused: %s", what, service.name, message)
