"""`service update` keeps a rollback point whatever it changes, as Swarm's ``PreviousSpec`` does
(README's `service update web --image SAME --update-order start-first`, then `service rollback web`,
was refused before: found by the h26 new-user walk); an update that changes nothing writes nothing."""

from __future__ import annotations

import pytest

from p2porch.control.service_ops import ServiceOps
from p2porch.errors import ConflictError
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryManager

IMAGE = "p2porch/busybox:latest"


async def test_any_update_keeps_a_rollback_point_and_a_second_rollback_swaps_back(ops: ServiceOps) -> None:
    await ops.create({"name": "web", "image": IMAGE, "replicas": 1})
    with pytest.raises(ConflictError) as info:
        await ops.rollback("web")
    assert "does not have a previous spec" in info.value.message and "never updated" in info.value.message
    answer = await ops.update("web", {"image": IMAGE, "update": {"order": "start-first"}})
    assert answer["changed"] == ["update"]
    rolled = await ops.rollback("web")
    assert rolled["changed"] == ["update"] and ops.find("web").spec.update.order == "stop-first"
    scaled = await ops.scale("web", 3)
    assert scaled["changed"] == ["replicas"] and ops.find("web").previous_spec.replicas == 1  # type: ignore[union-attr]
    await ops.rollback("web")
    service = ops.find("web")
    assert service.spec.replicas == 1 and service.previous_spec.replicas == 3  # type: ignore[union-attr]
    assert service.rollout is not None and service.rollout.state == "rollback_completed"  # no task replaced
    await ops.rollback("web")  # the second swaps back
    assert ops.find("web").spec.replicas == 3
    await ops.update("web", {"labels": {"tier": "front"}, "env": {"V": "2"}})
    service = ops.find("web")
    assert service.rollout is not None and service.rollout.state == "updating"  # env: a template change
    back = await ops.rollback("web")
    assert back["changed"] == ["env", "labels"]
    service = ops.find("web")
    assert not service.spec.env and not service.spec.labels and service.spec.replicas == 3
    assert service.rollout is not None and service.rollout.state == "rollback_started"


async def test_an_update_that_changes_nothing_writes_nothing_and_keeps_the_rollback_point(
    ops: ServiceOps, manager: MemoryManager
) -> None:
    await ops.create({"name": "web", "image": IMAGE, "replicas": 2})
    await ops.update("web", {"replicas": 4})
    before = ops.find("web")
    answer = await ops.update("web", {"replicas": 4, "image": IMAGE})
    assert answer["changed"] == [] and answer["version"] == before.version
    assert ops.find("web") == before and before.previous_spec is not None
    assert before.previous_spec.replicas == 2
    # a paused update is resumed by `service update`, changed or not; the rollback point stays
    await manager.write(C.UpdateService.of(before, at=1.0, update_paused=True).encode())
    resumed = await ops.update("web", {"replicas": 4})
    assert resumed["changed"] == ["resumed"] and resumed["version"] > before.version  # not "nothing changed"
    service = ops.find("web")
    assert not service.update_paused and service.previous_spec == before.previous_spec
