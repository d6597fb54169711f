"""`secret update` / `config update` rolls every follower even when one changed meanwhile (review of h50).

The roll read every service once, then wrote each follower's update conditional on the version read:
a commit to a follower in between (the leader's rollout or rebalance bookkeeping, an autoscale, a user's
`service scale`) refused it with a 409 after the new version was committed, and the followers after it
were not rolled (and an update keeps a service's version, so they stayed on the old one). Each follower
is now read again and its roll redone on a newer record (control/fresh_read.py)."""

from __future__ import annotations

import base64

import pytest

from p2porch.control.secret_ops import SecretOps
from p2porch.control.service_ops import ServiceOps
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryManager

IMAGE = "p2porch/busybox:latest"
KEY = (0, b"k" * 32)


def _data(text: str) -> dict[str, str]:
    return {"data": base64.b64encode(text.encode()).decode()}


async def _followed(ops: ServiceOps, manager: MemoryManager, kind: str, services: list[str]) -> SecretOps:
    """A ``kind`` named ``obj`` at version 1, and one-replica ``services`` that follow it."""
    objects = SecretOps(manager, lambda: KEY)  # type: ignore[arg-type]
    await objects.create(kind, {"name": "obj", **_data("one")})
    for name in services:
        await ops.create({"name": name, "image": IMAGE, "replicas": 1, kind + "s": ["obj"]})
    return objects


async def test_a_follower_written_to_during_the_roll_is_rolled_and_so_are_the_others(
    ops: ServiceOps, manager: MemoryManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = await _followed(ops, manager, "secret", ["api", "web", "worker"])
    real = manager.write
    scaled: list[str] = []

    async def write(command: bytes) -> object:
        decoded = C.decode_command(command)
        if isinstance(decoded, C.UpdateService) and decoded.rollout is not None and not scaled:
            victim = manager.state.services[decoded.service_id].name
            scaled.append(victim)
            await ops.scale(victim, 3)  # committed between the roll's read and its write
        return await real(command)

    monkeypatch.setattr(manager, "write", write)
    rolled = await objects.update("secret", "obj", _data("two"))  # on main: ConflictError (409)
    assert sorted(rolled["rolled_services"]) == ["api", "web", "worker"]
    for name in ("api", "web", "worker"):
        service = ops.find(name)
        assert service.spec.secrets[0].version == 2
        assert service.spec.replicas == (3 if name in scaled else 1)  # the scale is kept too


async def test_a_roll_never_moves_a_follower_back_from_a_newer_version(
    ops: ServiceOps, manager: MemoryManager
) -> None:
    objects = await _followed(ops, manager, "config", ["web"])
    await objects.update("config", "obj", _data("two"))
    before = ops.find("web").version
    assert await objects._roll_followers("config", "obj", 2) == []  # already there: nothing written
    assert await objects._roll_followers("config", "obj", 1) == []  # an older one: never back
    assert ops.find("web").version == before and ops.find("web").spec.configs[0].version == 2
