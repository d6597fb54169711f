"""A review of the h51 journey's ``service update`` removals: ``--secret-rm NAME`` matches a reference's
source first (Docker's "rotate a secret" walkthrough kept the new secret mounted at the old one's target
only by its source name), a removal of an existing object the service does not use is ignored with a
warning (as Docker's CLI ignores it: a revoke loop over every service must not stop), a typo is still
refused, and the default network is left only for another one."""

from __future__ import annotations

import base64

import pytest

from p2porch.control.network_ops import NetworkOps, network_changes
from p2porch.control.secret_ops import SecretOps, file_ref_changes
from p2porch.control.service_ops import ServiceOps
from p2porch.errors import ConfigError
from p2porch.testing.memstore import MemoryManager

IMAGE = "p2porch/busybox:latest"
KEY = (0, b"k" * 32)


@pytest.mark.parametrize(("kind", "base"), [("secret", "/run/secrets/"), ("config", "/")])
def test_rotating_a_secret_as_docker_documents_it_keeps_the_new_one(kind: str, base: str) -> None:
    # service update --secret-rm mysql_password --secret-add source=mysql_password,target=old_mysql_password
    # --secret-add source=mysql_password_v2,target=mysql_password mysql, then --secret-rm mysql_password
    old = {"source": "mysql_password", "target": base + "old_mysql_password"}
    new = {"source": "mysql_password_v2", "target": base + "mysql_password"}
    out = file_ref_changes({kind + "s": [old, new]}, {kind + "s_rm": ["mysql_password"]})
    assert out == {kind + "s": [new]}  # on main: both removed (the new one by its relative target)


def test_a_name_no_source_has_still_removes_by_target() -> None:
    refs = [{"source": "db_pw", "target": "/run/secrets/db.pw"}, {"source": "k", "target": "/run/secrets/k"}]
    assert file_ref_changes({"secrets": refs}, {"secrets_rm": ["db.pw"]}) == {"secrets": refs[1:]}


async def test_removing_an_existing_object_the_service_does_not_use_is_ignored_with_a_warning(
    ops: ServiceOps, manager: MemoryManager
) -> None:
    objects = SecretOps(manager, lambda: KEY)  # type: ignore[arg-type]
    for kind in ("secret", "config"):
        await objects.create(kind, {"name": "old_pw", "data": base64.b64encode(b"x").decode()})
    await NetworkOps(manager).create({"name": "front"})  # type: ignore[arg-type]
    await ops.create({"name": "api", "image": IMAGE, "replicas": 1})
    # for s in $(service ls -q); do service update --secret-rm old_pw "$s"; done (under set -e)
    changes = {"secrets_rm": ["old_pw"], "configs_rm": ["old_pw"], "networks_rm": ["front"]}
    out = await ops.update("api", changes)  # on main: ConfigError (exit 2), the loop stops
    assert out["changed"] == []  # nothing written
    assert out["ignored"] == [
        "api uses no secret 'old_pw': --secret-rm old_pw ignored",
        "api uses no config 'old_pw': --config-rm old_pw ignored",
        "api uses no network 'front': --network-rm front ignored",
    ]
    with pytest.raises(ConfigError) as info:  # a typo (no such object anywhere) is still refused
        await ops.update("api", {"secrets_rm": ["old-pw"]})
    assert info.value.field == "secrets_rm"
    updated = await ops.update("api", {"replicas": 2, "networks_rm": ["front"]})
    assert updated["changed"] == ["replicas"] and len(updated["ignored"]) == 1


def test_the_default_network_is_left_only_for_another() -> None:
    with pytest.raises(ConfigError) as info:  # on main: [] ("nothing changed", still on it), exit 0
        network_changes({"networks": []}, {"networks_rm": ["p2porch"]})
    assert (
        info.value.field == "networks_rm" and "--network-add NET --network-rm p2porch" in info.value.message
    )
    both = [{"target": "p2porch", "aliases": []}, {"target": "front", "aliases": []}]
    with pytest.raises(ConfigError):
        network_changes({"networks": both}, {"networks_rm": ["p2porch", "front"]})
    # on main: refused "(its networks: )": the default network was not seeded when the add is host
    out = network_changes({"networks": []}, {"networks_add": ["host"], "networks_rm": ["p2porch"]})
    assert out == {"networks": [{"target": "host", "aliases": []}]}
    front = [{"target": "front", "aliases": []}]
    assert network_changes({"networks": front}, {"networks_rm": ["front"]}) == {"networks": []}  # default


async def test_removing_the_default_network_with_the_services_last_one_is_refused(
    ops: ServiceOps, manager: MemoryManager
) -> None:
    """Review h51 4: on [front], `--network-rm front --network-rm p2porch` left it on p2porch (exit 0, "uses
    no network 'p2porch': ignored"): the update leaves it on no other network, so it is refused."""
    await NetworkOps(manager).create({"name": "front"})  # type: ignore[arg-type]
    await ops.create({"name": "api", "image": IMAGE, "networks": ["front"]})
    with pytest.raises(ConfigError) as info:  # on main: ignored, networks [] (the default one)
        await ops.update("api", {"networks_rm": ["front", "p2porch"]})
    assert (
        info.value.field == "networks_rm" and "--network-add NET --network-rm p2porch" in info.value.message
    )
    assert ops.view(ops.find("api"))["spec"]["networks"][0]["target"] == "front"  # nothing written
    out = await ops.update("api", {"networks_rm": ["p2porch"]})  # still on front: ignored as before
    assert out["ignored"] == ["api uses no network 'p2porch': --network-rm p2porch ignored"]
    front = [{"target": "front", "aliases": []}]
    with pytest.raises(ConfigError, match="always on a network"):
        network_changes({"networks": front}, {"networks_rm": ["front", "p2porch"]})
