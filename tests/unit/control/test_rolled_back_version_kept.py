"""A `service rollback` of a config's (or secret's) new version sticks: found by the h50 user journey.

`stack deploy` of a changed config rolls the services that follow it to version 2; `service rollback`
returns the service to version 1; a later `service scale` (any `service update` not about that object)
re-resolved every unpinned reference to the object's current version, so it silently rolled every task
to version 2 again, undoing the rollback (Swarm's scale changes the replica count only)."""

from __future__ import annotations

import base64

from p2porch.control.secret_ops import SecretOps
from p2porch.control.service_ops import ServiceOps
from p2porch.testing.memstore import MemoryManager

IMAGE = "p2porch/busybox:latest"
KEY = (0, b"k" * 32)


def _data(text: str) -> dict[str, str]:
    return {"data": base64.b64encode(text.encode()).decode()}


async def test_scale_after_rolling_back_a_config_version_keeps_the_rolled_back_version(
    ops: ServiceOps, manager: MemoryManager
) -> None:
    objects = SecretOps(manager, lambda: KEY)  # type: ignore[arg-type]
    await objects.create("config", {"name": "app_conf", **_data("hello v1")})
    await ops.create({"name": "web", "image": IMAGE, "replicas": 2, "configs": ["app_conf"]})
    assert ops.find("web").spec.configs[0].version == 1
    rolled = await objects.update("config", "app_conf", _data("hello v2"))
    assert rolled["rolled_services"] == ["web"] and ops.find("web").spec.configs[0].version == 2
    back = await ops.rollback("web")
    assert back["changed"] == ["configs"] and ops.find("web").spec.configs[0].version == 1
    scaled = await ops.scale("web", 3)
    assert scaled["changed"] == ["replicas"]  # was ["configs", "replicas"]: every task rolled to v2 again
    service = ops.find("web")
    assert service.spec.configs[0].version == 1 and service.spec.replicas == 3
    await ops.update("web", {"labels": {"tier": "front"}})
    assert ops.find("web").spec.configs[0].version == 1
    # the object moving on still rolls its follower, and a reference added by an update is the current one
    await objects.update("config", "app_conf", _data("hello v3"))
    assert ops.find("web").spec.configs[0].version == 3
    await objects.create("config", {"name": "extra", **_data("x1")})
    await objects.update("config", "extra", _data("x2"))
    await ops.update("web", {"configs": ["app_conf", "extra"]})
    assert [r.version for r in ops.find("web").spec.configs] == [3, 2]


async def test_a_reference_removed_and_added_again_in_one_update_takes_the_current_version(
    ops: ServiceOps, manager: MemoryManager
) -> None:
    """docs/secrets.md: "a reference the update adds takes the current one"; `--secret-rm S --secret-add
    S` (to change its options) is such an update. It kept the old version (review of h50)."""
    objects = SecretOps(manager, lambda: KEY)  # type: ignore[arg-type]
    await objects.create("config", {"name": "conf", **_data("v1")})
    await objects.create("secret", {"name": "pw", **_data("p1")})
    await ops.create({"name": "web", "image": IMAGE, "replicas": 1, "configs": ["conf"], "secrets": ["pw"]})
    for kind, name, value in (("secret", "pw", "p2"), ("config", "conf", "v2")):
        await objects.update(kind, name, _data(value))
        await ops.rollback("web")  # back to version 1
    service = ops.find("web")
    assert (service.spec.configs[0].version, service.spec.secrets[0].version) == (1, 1)
    await ops.update("web", {"configs_rm": ["conf"], "configs_add": ["source=conf,target=/etc/conf"]})
    service = ops.find("web")
    assert [(r.target, r.version) for r in service.spec.configs] == [("/etc/conf", 2)]  # on main: 1
    assert service.spec.secrets[0].version == 1  # not named by the update: kept
    await ops.update("web", {"secrets_rm": ["pw"], "secrets_add": [{"source": "pw", "mode": 0o400}]})
    assert ops.find("web").spec.secrets[0].version == 2  # on main: 1
