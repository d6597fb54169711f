"""A create body on the host network gets what Swarm takes unsaid, as ``service create --network host``
does (session 50: the API refused it, "a service on the host network has no virtual address: use dnsrr",
while the CLI defaulted to dnsrr): one function, ``netrefs.host_network_defaults``, for both."""

from __future__ import annotations

import pytest

from p2porch.control.service_ops import ServiceOps
from p2porch.errors import ConfigError

BODY = {"name": "exporter", "image": "prom/node-exporter", "networks": ["host"], "replicas": 0}


async def test_a_create_body_on_the_host_network_is_dnsrr_with_its_ports_on_the_node(ops: ServiceOps) -> None:
    created = await ops.create({**BODY, "publish": ["mode=host,target=9100"]})
    assert created["spec"]["endpoint_mode"] == "dnsrr"
    assert created["spec"]["publish"] == [
        {"target": 9100, "published": 9100, "protocol": "tcp", "mode": "host"}
    ]


async def test_an_explicit_vip_is_still_refused(ops: ServiceOps) -> None:
    with pytest.raises(ConfigError, match="no virtual address") as exc:
        await ops.create({**BODY, "endpoint_mode": "vip"})
    assert exc.value.field == "endpoint_mode"


async def test_an_update_onto_the_host_network_is_dnsrr_unless_it_says_otherwise(ops: ServiceOps) -> None:
    await ops.create({"name": "agent", "image": "busybox", "replicas": 0})
    updated = await ops.update("agent", {"networks": ["host"]})
    assert updated["spec"]["endpoint_mode"] == "dnsrr"
    again = await ops.update("agent", {"replicas": 0, "env": ["A=1"]})  # stays on the host network
    assert again["spec"]["endpoint_mode"] == "dnsrr"
