"""`service rollback` after an update that kept the tasks' template (README's `service update web --image
SAME --update-order start-first`, then `service rollback web`): refused, saying which updates keep a
rollback point. Found by the h26 new-user walk."""

from __future__ import annotations

import pytest

from p2porch.control.service_ops import ServiceOps
from p2porch.errors import ConflictError
from p2porch.testing.memstore import MemoryManager


async def test_rollback_without_a_rollback_point_says_which_updates_make_one():
    ops = ServiceOps(MemoryManager(), logs=None)  # type: ignore[arg-type]
    await ops.create({"name": "web", "image": "p2porch/busybox:latest", "replicas": 0})
    await ops.update("web", {"image": "p2porch/busybox:latest", "update": {"order": "start-first"}})
    with pytest.raises(ConflictError) as info:
        await ops.rollback("web")
    assert "no previous spec" in info.value.message and "image, command, env" in info.value.message
    await ops.update("web", {"env": {"V": "2"}})  # a template change keeps the one before
    await ops.rollback("web")
    assert not ops.find("web").spec.env
