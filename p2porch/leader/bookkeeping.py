"""The leader's bookkeeping writes on services after a round (shell): cron ticks, a failed rollout's pause
or rollback, completed rollouts, finished `service rebalance` requests (decided in ``leader/cron.py`` and
``leader/followups.py``).

Each write is conditional on the service version read and fenced by the round's leader epoch. A lost race
(the service changed, the commit timed out) is logged and decided again next round; a refusal of the
write itself (a spec the FSM no longer admits) is logged once per service version and message, never
raised out of the scheduler. A refused automatic rollback is written as a pause naming the refusal, so
the failing service stops asking for it and the rest of the cluster is scheduled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..context import MemberContext
from ..errors import ConfigError, ConflictError, NotFoundError, ProposalTimeout
from ..model import Service
from ..raft import commands as C
from ..raft.state import ClusterState
from .cron import CronDecision
from .epoch import fenced, is_stale_epoch, still_leads
from .followups import (
    rebalance_done_updates,
    refused_rollback,
    rollout_done_updates,
    update_failure_updates,
)
from .scheduling import Round

log = logging.getLogger(__name__)

__all__ = ["Bookkeeping", "Outcome"]

#: the refusal fields that say the state moved under the write (the next round decides again)
RACE_FIELDS = frozenset({"service_version", "expected_version", "service_id"})
#: refusals remembered (logged once each); past it the memory starts afresh
MAX_REMEMBERED = 4096


@dataclass(frozen=True)
class Outcome:
    """How one bookkeeping write ended: ``committed``, ``lost`` (a race: decided again next round),
    ``refused`` (``message`` says why) or ``deposed`` (this node no longer leads in the epoch)."""

    kind: str
    message: str = ""


COMMITTED = Outcome("committed")
DEPOSED = Outcome("deposed")


class Bookkeeping:
    """Writes the leader's bookkeeping on services for the leader loop; owns the refusals already
    logged (``(service_id, version, message)``). Never raises a refused or lost write, and never
    writes once this node no longer leads in the round's epoch."""

    def __init__(self, ctx: MemberContext) -> None:
        self.ctx = ctx
        self.refused: set[tuple[str, int, str]] = set()

    async def cron_ticks(self, decisions: list[CronDecision], epoch: int) -> bool:
        """Commit cron ticks (each conditional on the service version read: a tick is handled once);
        True when one committed or this node was deposed (the round ends)."""
        wrote = False
        for d in decisions:
            if d.missed:
                log.warning(
                    "cron job %s: %d tick(s) missed while no leader handled them", d.service.name, d.missed
                )
            log.info("cron job %s: tick %.0f %s", d.service.name, d.tick, d.action)
            outcome = await self.write(d.service, d.command, f"cron tick ({d.action})", epoch)
            if outcome is DEPOSED:
                return True
            wrote |= outcome is COMMITTED
        return wrote

    async def after_round(self, state: ClusterState, plan: Round, epoch: int) -> bool:
        """The round's update failure actions, else its completed rollouts, else its finished rebalances:
        True when a write of the first of these kinds committed (the next round plans on the new specs)
        or this node was deposed; False when nothing was written, and the round goes on to its
        placements (a refused write stops no other service's)."""
        now = self.ctx.clock.now()
        if plan.update_failures:
            readers = self.ctx.store.command_readers
            failures = update_failure_updates(state, plan.update_failures, now, readers)
            if await self.update_failures(failures, now, epoch):
                return True
        if plan.rollouts_done:
            done = rollout_done_updates(state, plan.rollouts_done, now)
            for service, update in done:
                log.info("rollout of %s: %s", service.name, update.rollout.state if update.rollout else "")
            if await self.each(done, "rollout completion", epoch):
                return True
        if plan.rebalanced:
            balanced = rebalance_done_updates(state, plan.rebalanced, now)
            for service, _ in balanced:
                log.info("rebalance of %s done", service.name)
            return await self.each(balanced, "clearing the rebalance request", epoch)
        return False

    async def update_failures(
        self, failures: list[tuple[Service, C.UpdateService, str]], now: float, epoch: int
    ) -> bool:
        """Pause or roll back the services whose rollout failed; a rollback the FSM refuses for a reason
        other than a race is paused instead, the refusal in its reason. True as :meth:`after_round`."""
        wrote = False
        for service, update, action in failures:
            log.warning(
                "update of %s failed (%s): %s",
                service.name,
                update.rollout.reason if update.rollout else "",
                "rolling back" if action == "rollback" else "paused",
            )
            outcome = await self.write(service, update, "update failure action", epoch)
            if action == "rollback" and outcome.kind == "refused":
                log.warning("update of %s: rollback refused, pausing it instead", service.name)
                pause = refused_rollback(service, now, update, outcome.message)
                outcome = await self.write(service, pause, "update failure action", epoch)
            if outcome is DEPOSED:
                return True
            wrote |= outcome is COMMITTED
        return wrote

    async def each(self, writes: list[tuple[Service, C.UpdateService]], what: str, epoch: int) -> bool:
        """Write ``writes`` in order; True as :meth:`after_round`."""
        wrote = False
        for service, update in writes:
            outcome = await self.write(service, update, what, epoch)
            if outcome is DEPOSED:
                return True
            wrote |= outcome is COMMITTED
        return wrote

    async def write(self, service: Service, update: C.UpdateService, what: str, epoch: int) -> Outcome:
        """Write one bookkeeping ``update`` on ``service`` fenced by ``epoch`` (not at all once this node
        no longer leads in it), and say how it ended."""
        if not still_leads(self.ctx.store, epoch):
            log.info("%s for %s not written: this node no longer leads", what, service.name)
            return DEPOSED
        try:
            await self.ctx.write(fenced(update, epoch))
        except ProposalTimeout as exc:
            log.info("%s for %s not committed: %s", what, service.name, exc.message)
            return Outcome("lost", exc.message)
        except (ConfigError, ConflictError, NotFoundError) as exc:
            if isinstance(exc, ConflictError) and is_stale_epoch(exc):
                log.info("%s for %s refused: deposed (%s)", what, service.name, exc.message)
                return DEPOSED
            if exc.field in RACE_FIELDS and not isinstance(exc, ConfigError):
                log.info("%s for %s not committed: %s", what, service.name, exc.message)
                return Outcome("lost", exc.message)
            self.refused_once(service, what, exc.message)
            return Outcome("refused", exc.message)
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
