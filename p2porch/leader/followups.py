"""What the leader writes on services after a round (pure): a failed rollout's pause or rollback, a
completed rollout marked so, a finished `service rebalance` request cleared.

Each write is an ``UpdateService`` conditional on the service version read; this module never writes
(``leader/bookkeeping.py`` does) and never reads a clock.
"""

from __future__ import annotations

from ..model import Rollout, Service
from ..model.rollback_point import restores_template, rolled_back
from ..raft.command_gate import Readers, spec_refusal
from ..raft.commands import UpdateService
from ..raft.fsm_networks import network_refusal
from ..raft.fsm_secrets import file_refusal
from ..raft.state import ClusterState
from ..scheduler import RolloutDone, UpdateFailed


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
