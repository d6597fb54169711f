"""An ingress port is one service's on every node: no other service may publish the same number, in
ingress mode or in host mode (both would claim the nodes of the host-mode tasks). ServiceOps over the
real FSM in memory; the Compose check of the same rule before anything is sent."""

from __future__ import annotations

import pytest

from p2porch.errors import ConfigError, ConflictError
from p2porch.stack import load_stack

HOST_8181 = "published=8181,target=80,mode=host"


async def test_an_ingress_port_another_service_binds_in_host_mode_is_refused(ops, manager):
    await ops.create({"name": "edge", "image": "nginx", "mode": "global", "publish": [HOST_8181]})
    with pytest.raises(ConflictError) as info:
        await ops.create({"name": "web", "image": "nginx", "publish": ["8181:80"]})
    assert info.value.field == "--publish"
    assert "published by service edge with mode=host" in info.value.message
    await ops.create({"name": "web", "image": "nginx", "publish": ["8080:80"]})
    with pytest.raises(ConflictError):  # an update to that port, the same
        await ops.update("web", {"publish": ["8181:80"]})
    assert manager.snapshot().service_by_name("web").spec.publish[0].published == 8080


async def test_a_host_mode_port_another_service_serves_by_ingress_is_refused(ops):
    await ops.create({"name": "web", "image": "nginx", "publish": ["8181:80"]})
    with pytest.raises(ConflictError) as info:
        await ops.create({"name": "edge", "image": "nginx", "publish": [HOST_8181]})
    assert info.value.message.startswith("--publish: host port 8181/tcp is service web's ingress port")


async def test_host_mode_ports_may_share_a_number_and_other_protocols_are_free(ops):
    await ops.create({"name": "a", "image": "nginx", "publish": [HOST_8181]})
    await ops.create({"name": "b", "image": "nginx", "publish": [HOST_8181]})  # one task per node
    await ops.create({"name": "c", "image": "nginx", "publish": ["8181:80/udp"]})
    await ops.update("a", {"publish": ["published=8181,target=81,mode=host"]})  # its own port: no conflict


@pytest.mark.parametrize(
    ("a", "b", "fragment"),
    [
        ("'8080:80'", "{target: 80, published: 8080, mode: host}", "by service 'a' in ingress mode"),
        ("{target: 80, published: 8080, mode: host}", "'8080:80'", "by service 'a' in host mode"),
    ],
)
def test_a_stack_mixing_modes_on_one_port_is_refused_by_its_key(a, b, fragment):
    text = f"services:\n  a:\n    image: x\n    ports: [{a}]\n  b:\n    image: x\n    ports: [{b}]\n"
    with pytest.raises(ConfigError) as info:
        load_stack("s", text, lambda path: "")
    assert "services.b.ports: port 8080/tcp is published" in str(info.value)
    assert fragment in str(info.value)


def test_a_stack_of_host_mode_ports_sharing_a_number_loads():
    port = "{target: 80, published: 8080, mode: host}"
    text = f"services:\n  a:\n    image: x\n    ports: [{port}]\n  b:\n    image: x\n    ports: [{port}]\n"
    assert len(load_stack("s", text, lambda path: "").services) == 2
