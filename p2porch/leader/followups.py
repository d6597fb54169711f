"""What the leader writes on services after a round (pure): a failed rollout's pause or rollback, a
completed rollout marked so, a finished `service rebalance` request cleared, and what it does with each
write's outcome.

Each write is an ``UpdateService`` conditional on the service version read. :func:`round_writes` and
:func:`cron_writes` are the whole decision as generators: they yield each :class:`Write`, are sent its
:class:`Outcome` (:func:`outcome_of` names a refusal's) and return whether the round ends there. The real
leader loop (``leader/bookkeeping.py``) and the cluster simulator (``testing/sim_leader.py``) drive the same
generators. This module never writes and never reads a clock.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass

from ..errors import ConfigError, ConflictError, NotFoundError, ProposalTimeout
from ..model import Rollout, Service
from ..model.rollback_point import restores_template, rolled_back
from ..raft.command_gate import Readers, spec_refusal
from ..raft.commands import UpdateService
from ..raft.fsm_networks import network_refusal
from ..raft.fsm_secrets import file_refusal
from ..raft.state import ClusterState
from ..scheduler import RolloutDone, UpdateFailed
from .cron import CronDecision
from .epoch import is_stale_epoch
from .scheduling import Round

#: the refusal fields that say the state moved under the write (the next round decides again)
RACE_FIELDS = frozenset({"service_version", "expected_version", "service_id"})


@dataclass(frozen=True)
class Outcome:
    """How one bookkeeping write ended: ``committed``, ``lost`` (a race: decided again next round),
    ``refused`` (``message`` says why) or ``deposed`` (this node no longer leads in the epoch)."""

    kind: str
    message: str = ""


COMMITTED = Outcome("committed")
DEPOSED = Outcome("deposed")


def outcome_of(exc: ConfigError | ConflictError | NotFoundError | ProposalTimeout) -> Outcome:
    """The outcome of a write that raised ``exc``: deposed (a newer leader's epoch), lost (no commit,
    or the state moved under it: a field of :data:`RACE_FIELDS`), else refused."""
    if isinstance(exc, ConflictError) and is_stale_epoch(exc):
        return DEPOSED
    if isinstance(exc, ProposalTimeout) or (exc.field in RACE_FIELDS and not isinstance(exc, ConfigError)):
        return Outcome("lost", exc.message)
    return Outcome("refused", exc.message)


@dataclass(frozen=True)
class Write:
    """One bookkeeping write: ``update`` on ``service`` (``what`` names it in logs), after logging
    ``note`` (if any) at ``level``."""

    service: Service
    update: UpdateService
    what: str
    note: str = ""
    level: int = logging.INFO


#: the decision's generator: yields writes, is sent their outcomes, returns True when the round ends
Writes = Generator[Write, Outcome, bool]


def cron_writes(decisions: list[CronDecision]) -> Writes:
    """Each cron tick (conditional on the service version read: a tick is handled once); True when one
    committed or this node was deposed (the ticks' executions start next round)."""
    wrote = False
    for d in decisions:
        note = f"cron job {d.service.name}: tick {d.tick:.0f} {d.action}"
        if d.missed:
            note += f" ({d.missed} tick(s) missed while no leader handled them)"
        level = logging.WARNING if d.missed else logging.INFO
        outcome = yield Write(d.service, d.command, f"cron tick ({d.action})", note, level)
        if outcome is DEPOSED:
            return True
        wrote |= outcome is COMMITTED
    return wrote


def round_writes(state: ClusterState, plan: Round, now: float, readers: Readers | None = None) -> Writes:
    """The round's update failure actions, else its completed rollouts, else its finished rebalances:
    True when a write of the first of these kinds committed (the next round plans on the new specs) or
    this node was deposed; False when nothing was committed, and the round goes on to its placements (a
    refused or lost write stops no other service's)."""
    failures = update_failure_updates(state, plan.update_failures, now, readers)
    if (yield from failure_writes(failures, now)):
        return True
    done = [
        Write(s, u, "rollout completion", f"rollout of {s.name}: {u.rollout.state if u.rollout else ''}")
        for s, u in rollout_done_updates(state, plan.rollouts_done, now)
    ]
    if (yield from each(done)):
        return True
    balanced = rebalance_done_updates(state, plan.rebalanced, now)
    clear = "clearing the rebalance request"
    return (yield from each([Write(s, u, clear, f"rebalance of {s.name} done") for s, u in balanced]))


def failure_writes(failures: list[tuple[Service, UpdateService, str]], now: float) -> Writes:
    """Pause or roll back the services whose rollout failed; a rollback refused for a reason other than
    a race is paused instead, the refusal in its reason (:func:`refused_rollback`). True as
    :func:`round_writes`."""
    wrote = False
    for service, update, action in failures:
        why = update.rollout.reason if update.rollout else ""
        doing = "rolling back" if action == "rollback" else "paused"
        note = f"update of {service.name} failed ({why}): {doing}"
        outcome = yield Write(service, update, "update failure action", note, logging.WARNING)
        if action == "rollback" and outcome.kind == "refused":
            note = f"update of {service.name}: rollback refused, pausing it instead"
            pause = refused_rollback(service, now, update, outcome.message)
            outcome = yield Write(service, pause, "update failure action", note, logging.WARNING)
        if outcome is DEPOSED:
            return True
        wrote |= outcome is COMMITTED
    return wrote


def each(writes: list[Write]) -> Writes:
    """``writes`` in order; True when one committed or this node was deposed."""
    wrote = False
    for write in writes:
        outcome = yield write
        if outcome is DEPOSED:
            return True
        wrote |= outcome is COMMITTED
    return wrote


def update_failure_updates(
    state: ClusterState, failures: list[UpdateFailed], now: float, readers: Readers | None = None
) -> list[tuple[Service, UpdateService, str]]:
    """What a failed rollout makes the leader write: per service (once), the service rolled back to
    ``previous_spec`` (action rollback, when there is one that runs other tasks; rolled out with the
    failed spec's ``rollback`` config, the reason recorded; the failed spec is not kept as the rollback
    point, as swarmkit's automatic rollback clears ``PreviousSpec``: a ``service rollback`` after it is
    refused instead of rolling the failed update out again) or with ``update_paused`` set and its
    rollout paused, and which of the two ("rollback" | "pause"). A rollback point using a spec field a
    member does not read (``readers``: a node of an older release joined since), or a network removed
    since (a stack deploy pruned it), is paused instead: the FSM would refuse it (which stopped the
    scheduler at every round); so is one naming a secret or config removed since (each of its tasks would
    fail to start). Services already paused or gone are left alone."""
    out = []
    for service_id in sorted({f.service_id for f in failures}):
        service = state.services.get(service_id)
        if service is None or service.update_paused:
            continue
        failure = next(f for f in failures if f.service_id == service_id)
        why = f"update failed: {failure.reason}"
        change = rolled_back(service, now, why, service.spec.rollback)
        rolls_back = failure.action == "rollback" and change is not None and restores_template(service)
        unread = (
            spec_refusal(change.spec, service.spec, readers)
            or network_refusal(state, change.spec, service.spec)
            or file_refusal(state, change.spec)
            if rolls_back and change is not None
            else None
        )
        if change is not None and rolls_back and unread is None:
            update = UpdateService.of(
                service, at=now, spec=change.spec, previous_spec=None, rollout=change.rollout
            )
            out.append((service, update, "rollback"))
        else:
            if failure.action == "rollback" and change is None:
                why += " (nothing to roll back to)"
            elif unread is not None:
                why += f" (not rolled back: {unread})"
            elif failure.action == "rollback":  # a later update (a scale, a label) replaced the point
                why += " (nothing to roll back to: the previous spec runs the same tasks)"
            out.append((service, paused(service, now, why), "pause"))
    return out


def paused(service: Service, now: float, why: str) -> UpdateService:
    """``service`` with its update paused and its rollout record saying ``why``."""
    rollout = (service.rollout or Rollout.update(now)).paused(why)
    return UpdateService.of(service, at=now, update_paused=True, rollout=rollout)


def refused_rollback(service: Service, now: float, rollback: UpdateService, message: str) -> UpdateService:
    """The pause to write instead of the failure action ``rollback`` the FSM refused with ``message``
    (a rollback point it no longer admits: a chosen port another service was assigned since, ...)."""
    why = rollback.rollout.reason if rollback.rollout is not None else "update failed"
    return paused(service, now, f"{why} (not rolled back: {message})")


def rollout_done_updates(
    state: ClusterState, done: list[RolloutDone], now: float
) -> list[tuple[Service, UpdateService]]:
    """The services whose rollout just completed, with the record marked so."""
    out = []
    for service_id in sorted({d.service_id for d in done}):
        service = state.services.get(service_id)
        if service is None or service.rollout is None:
            continue
        out.append((service, UpdateService.of(service, at=now, rollout=service.rollout.done())))
    return out


def rebalance_done_updates(
    state: ClusterState, service_ids: list[str], now: float
) -> list[tuple[Service, UpdateService]]:
    """The services found balanced, without their `service rebalance` request."""
    return [
        (state.services[sid], UpdateService.of(state.services[sid], at=now, rebalance_requested=0.0))
        for sid in service_ids
        if sid in state.services
    ]
