"""The leader loop: while this node leads Raft, run the scheduling round and commit its placements (shell).

The decisions are :func:`~p2porch.leader.scheduling.plan_round` (pure); this loop wakes on commits, gossip
membership changes and the round's own deadline, and writes the round's commands.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from ..errors import ConflictError, ProposalTimeout
from ..model import Service
from ..raft import commands as C
from ..raft.state import ClusterState
from ..scheduler import Orchestrator
from ..supervisor import drain, state_changes, supervise, wait_any
from .scheduling import node_status_updates, plan_round

if TYPE_CHECKING:
    from ..membership.manager import ClusterManager

log = logging.getLogger(__name__)


LEADER_DEBOUNCE_S = 0.02


LEADER_IDLE_CHECK_S = 1.0


async def serve_scheduler(
    manager: ClusterManager, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """While this node leads Raft: reconcile services with tasks and commit placements."""
    task_status.started()
    await supervise(manager, "scheduler", partial(_run_scheduler, manager))


async def _run_scheduler(manager: ClusterManager) -> None:
    store = manager.require_store()
    orchestrator = Orchestrator(
        random.Random(secrets.randbits(64)), down_grace_s=manager.config.scheduler.down_grace_s
    )
    wake_at: float | None = None
    async with state_changes(manager) as changes:
        while True:
            timeout = (
                LEADER_IDLE_CHECK_S
                if wake_at is None
                else min(LEADER_IDLE_CHECK_S, max(0.0, wake_at - time.time()))
            )
            with trio.move_on_after(timeout):
                await wait_any(changes.receive, manager.membership_changed.wait)
                await trio.sleep(LEADER_DEBOUNCE_S)
            manager.membership_changed = trio.Event()
            drain(changes)
            if not store.status().is_leader:
                wake_at = None
                continue
            state = store.snapshot()
            if await sync_node_statuses(manager, state):
                continue  # the status writes change the state: plan on the new one
            now = time.time()
            plan = plan_round(
                state, now, orchestrator, rebalance_max_moves=manager.config.scheduler.rebalance_max_moves
            )
            wake_at = plan.wake_at
            if plan.update_failures:
                await apply_update_failures(manager, state, plan.update_failures)
                continue  # the service changed: plan again on the new spec
            if plan.rebalanced:
                await finish_rebalance_requests(manager, state, plan.rebalanced)
                continue  # the services changed: plan again on the new specs
            if plan.empty:
                continue
            try:
                put = C.PutTasks(at=now, items=tuple(plan.items), expected_version=state.version)
                await manager.write(put.encode())
            except ConflictError:
                wake_at = time.time()  # the state moved under us: plan again at once
            except ProposalTimeout as exc:
                log.warning("scheduling round not committed: %s", exc.message)


async def sync_node_statuses(manager: ClusterManager, state: ClusterState) -> bool:
    """Leader only: write node statuses that gossip contradicts (ready <-> down); True if any changed."""
    updates = node_status_updates(state, manager.gossip_states())
    for node_id, status in updates.items():
        log.info("node %s is %s (gossip)", state.nodes[node_id].name, status)
        try:
            update = C.UpdateNode(
                at=time.time(), node_id=node_id, status=status, node_version=state.nodes[node_id].version
            )
            await manager.write(update.encode())
        except (ConflictError, ProposalTimeout) as exc:
            log.info("node status write for %s not committed: %s", node_id, exc.message)
    return bool(updates)


async def apply_update_failures(manager: ClusterManager, state: ClusterState, failures: list[Any]) -> None:
    """A task of a rolling update failed: pause the update, or roll the service back, as configured."""
    for service_id in sorted({f.service_id for f in failures}):
        service = state.services.get(service_id)
        if service is None or service.update_paused:
            continue
        action = next(f.action for f in failures if f.service_id == service_id)
        now = time.time()
        if action == "rollback" and service.previous_spec is not None:
            update = C.UpdateService.of(
                service, at=now, spec=service.previous_spec, previous_spec=service.spec
            )
            log.warning("update of %s failed: rolling back", service.name)
        else:
            update = C.UpdateService.of(service, at=now, update_paused=True)
            log.warning("update of %s failed: paused", service.name)
        await write_service_bookkeeping(manager, service, update, "update failure action")


async def finish_rebalance_requests(
    manager: ClusterManager, state: ClusterState, service_ids: list[str]
) -> None:
    """Clear `service rebalance` requests of services found balanced."""
    for service_id in service_ids:
        service = state.services[service_id]
        update = C.UpdateService.of(service, at=time.time(), rebalance_requested=0.0)
        log.info("rebalance of %s done", service.name)
        await write_service_bookkeeping(manager, service, update, "clearing the rebalance request")


async def write_service_bookkeeping(
    manager: ClusterManager, service: Service, update: C.UpdateService, what: str
) -> None:
    """Leader bookkeeping on a service (``update`` is conditional on the version read); a lost race is
    logged (the next round decides again)."""
    try:
        await manager.write(update.encode())
    except (ConflictError, ProposalTimeout) as exc:
        log.info("%s for %s not committed: %s", what, service.name, exc.message)
