"""A rolling upgrade: service create/update and stack deploy refuse a spec field some member does not read
yet (``command_gate.admit_spec``), naming it and the members behind; nothing is written. ServiceOps and
StackOps over the real FSM in memory, the members' advertisements as gossip tells them."""

from __future__ import annotations

import pytest

from p2porch.control.service_ops import ServiceOps
from p2porch.control.stack_ops import StackOps
from p2porch.errors import NotAllowedError
from p2porch.raft import command_gate
from p2porch.stack import load_stack
from p2porch.testing.memstore import MemoryManager

NEW = command_gate.advertisement()
SPEC = {"name": "web", "image": "p2porch/busybox:latest", "replicas": 0, "limit_memory": "64M"}
SWAP = {"container": {"memswap_limit": "128M"}}
COMPOSE = """
services:
  web:
    image: p2porch/busybox:latest
    deploy: {resources: {limits: {memory: 64M}}}
"""


def members(manager: MemoryManager, old: dict | None) -> None:
    manager.command_readers = lambda: {"n1": NEW, "n2": old}


async def test_create_and_update_refuse_a_field_an_older_member_does_not_read(
    ops: ServiceOps, manager: MemoryManager
) -> None:
    members(manager, None)  # n2 runs a release before the gate: spec version 1
    with pytest.raises(
        NotAllowedError, match="container.memswap_limit .* n2 read spec fields up to version 1"
    ):
        await ops.create({**SPEC, **SWAP})
    await ops.create(dict(SPEC))  # a spec without newer fields keeps working
    writes = manager.writes
    with pytest.raises(NotAllowedError) as exc:
        await ops.update("web", SWAP)
    assert exc.value.field == "container.memswap_limit" and manager.writes == writes
    await ops.update("web", {"replicas": 2})
    members(manager, NEW)  # n2 upgraded
    updated = await ops.update("web", SWAP)
    assert updated["spec"]["container"] == {"memswap_limit_bytes": 128 << 20}
    members(manager, None)  # n2 back on the old release: the field kept, other changes pass
    assert (await ops.update("web", {"replicas": 1}))["spec"]["replicas"] == 1


async def test_stack_deploy_refuses_it_before_any_write(manager: MemoryManager) -> None:
    ops = StackOps(ServiceOps(manager, logs=None))  # type: ignore[arg-type]
    members(manager, None)
    await ops.apply(load_stack("shop", COMPOSE, lambda path: ""))
    commands = list(manager.commands)
    swapped = COMPOSE + "    memswap_limit: 128M\n  api: {image: p2porch/busybox:latest}\n"
    with pytest.raises(NotAllowedError) as exc:
        await ops.apply(load_stack("shop", swapped, lambda path: ""))
    assert exc.value.field == "services.web.memswap_limit" and "n2" in exc.value.message
    assert manager.commands == commands  # nor the api service created
    new_service = COMPOSE + "  api: {image: p2porch/busybox:latest, memswap_limit: 128M, mem_limit: 64M}\n"
    with pytest.raises(NotAllowedError, match="services.api: container.memswap_limit"):
        await ops.apply(load_stack("shop", new_service, lambda path: ""))
    members(manager, {"update_node": 2})  # n2 runs the gate's release, which reads it
    result = await ops.apply(load_stack("shop", swapped, lambda path: ""))
    assert {s["name"]: s["action"] for s in result["services"]} == {
        "shop-web": "updated",
        "shop-api": "created",
    }


async def test_a_manual_rollback_to_a_spec_an_older_member_does_not_read_is_refused(
    ops: ServiceOps, manager: MemoryManager
) -> None:
    """Main wrote the rollback point unchecked: a service on ``host`` updated to another network, a
    spec-2 node joins, ``service rollback`` writes the host spec, which that node's FSM refuses
    ("network 'host' not found") while the newer ones apply it: the replicas diverge."""
    members(manager, NEW)
    host = {"name": "web", "image": "p2porch/busybox:latest", "replicas": 0, "networks": ["host"]}
    await ops.create({**host, "endpoint_mode": "dnsrr"})
    await ops.update("web", {"networks": []})
    members(manager, {**NEW, "spec": 2})  # n2 runs the release of spec version 2
    writes = manager.writes
    with pytest.raises(NotAllowedError, match="networks: host .* n2 read spec fields up to version 2"):
        await ops.rollback("web")
    assert manager.writes == writes and ops.find("web").spec.networks == ()
    members(manager, NEW)  # n2 upgraded
    assert [n["target"] for n in (await ops.rollback("web"))["spec"]["networks"]] == ["host"]
