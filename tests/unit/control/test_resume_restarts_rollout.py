"""A paused update resumed by an update that changes no template (``service scale S=N`` at its count,
the no-op ``service update S``, a label change) restarts the rollout (review r52d, 1): as swarmkit's
UpdateService resets the update status, only failures from the resume count. Before, the record kept
the paused rollout's start, so the orchestrator counted the very failures that had paused it and the
leader paused it again at once (the CLI's wait then ended "update paused", exit 1).

The real path: ServiceOps writes through the FSM (MemoryManager), the orchestrator reads the committed
service, and the leader's pause is ``update_failure_updates``."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from p2porch.control.service_ops import ServiceOps
from p2porch.leader.followups import update_failure_updates
from p2porch.model import Node, Rollout, Task
from p2porch.model.rollout import RolloutState
from p2porch.raft import commands as C
from p2porch.scheduler import Orchestrator, UpdateFailed
from p2porch.testing.memstore import MemoryManager

NODES = [Node("n1", "n1"), Node("n2", "n2")]
SPEC = {
    "name": "web",
    "image": "p2porch/busybox:1",
    "replicas": 2,
    "update": {"failure_action": "pause", "monitor_s": 30.0},
}


class Clock:
    """The wall clock the test moves (``at``); ServiceOps reads ``now`` only."""

    at = 1.0

    def now(self) -> float:
        return self.at


def failures(manager: MemoryManager, tasks: list[Task], now: float) -> list[UpdateFailed]:
    state = manager.state
    svc = next(iter(state.services.values()))
    r = Orchestrator(random.Random(1)).reconcile([svc], tasks, NODES, now=now)
    return [e for e in r.events if isinstance(e, UpdateFailed)]


async def paused_service() -> tuple[MemoryManager, ServiceOps, Clock, list[Task]]:
    """web updated to busybox:2 at 10.0, one new task failed at 25.0 (within monitor): paused."""
    manager, clock = MemoryManager(), Clock()
    ops = ServiceOps(manager, logs=None, clock=clock)  # type: ignore[arg-type]
    await ops.create(dict(SPEC))
    clock.at = 10.0
    await ops.update("web", {"image": "p2porch/busybox:2"})
    svc = ops.find("web")
    new = svc.spec.template_hash()
    failed = Task(
        "t9", svc.service_id, 1, "n1", state="failed", state_at=25.0, error="exit 1",  # type: ignore[arg-type]
        template_hash=new, created_at=20.0, started_at=24.0,
    )  # fmt: skip
    tasks = [failed]
    found = failures(manager, tasks, now=30.0)
    assert found, "the failed task pauses the update"
    for _svc, update, action in update_failure_updates(manager.state, found, 30.0):
        assert action == "pause"
        await manager.write(update.encode())
    assert ops.find("web").update_paused
    return manager, ops, clock, tasks


RESUMES: dict[str, Callable[[ServiceOps], Awaitable[object]]] = {
    "scale-to-its-count": lambda ops: ops.scale("web", 2),
    "no-op-update": lambda ops: ops.update("web", {}),
    "service-label-change": lambda ops: ops.update("web", {"service_labels": {"tier": "front"}}),
}


@pytest.mark.parametrize("how", sorted(RESUMES))
async def test_a_resumed_update_counts_only_failures_since_the_resume(how: str) -> None:
    manager, ops, clock, tasks = await paused_service()
    clock.at = 200.0
    answer = await RESUMES[how](ops)
    svc = ops.find("web")
    assert not svc.update_paused
    assert svc.rollout is not None and svc.rollout.state == "updating"  # main: "paused"
    assert svc.rollout.started_at == 200.0  # main: 10.0, the paused rollout's start
    if how != "service-label-change":
        assert answer["changed"] == ["resumed"]  # type: ignore[index]
    assert failures(manager, tasks, now=201.0) == []  # main: UpdateFailed, paused again at once


async def test_a_resumed_rollback_stays_a_rollback_with_its_policy() -> None:
    """A paused rollback resumes as a rollback (its policy, the rollback config, kept)."""
    manager, ops, clock, _tasks = await paused_service()
    svc = ops.find("web")
    rollout = Rollout.rolling_back(40.0, svc.spec.rollback, "update failed").paused("again")
    await manager.write(C.UpdateService.of(svc, at=41.0, rollout=rollout).encode())
    clock.at = 300.0
    await ops.scale("web", 2)
    after = ops.find("web").rollout
    assert after == replace(rollout, state=RolloutState.ROLLBACK_STARTED, started_at=300.0)
