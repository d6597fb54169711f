"""The host network at the edges, as Swarm and Compose take it (h49fixc, reviewer r49c's findings 2, 3, 6):
a sidecar's ports on a host-network service bind the node's ports too (they were published in ingress mode
on a task address that doesn't exist); ``service create --network host`` needs no ``--endpoint-mode``
(Swarm's default for it allocates no virtual address) and a host-mode port no published number; a Swarm
file's ``endpoint_mode: vip`` beside the host network is taken as dnsrr with a warning; a Compose port
list that names one container port twice under ``network_mode: host`` is one port."""

from __future__ import annotations

import pytest

from p2porch.cli.main import build_parser, main
from p2porch.cli.service_spec_flags import spec_changes, validated_spec
from p2porch.errors import ConfigError
from p2porch.model import ServiceSpec
from p2porch.model.spec import check_endpoint_ports

from .compose_text import load, refusal, spec_of

HOST_BASE = {"name": "web", "image": "x", "networks": ["host"], "endpoint_mode": "dnsrr"}


def _ports(spec: dict) -> list[tuple]:
    return [(p["published"], p["target"], p.get("mode"), p["protocol"]) for p in spec.get("publish", [])]


def test_a_sidecar_port_on_the_host_network_is_checked_as_the_main_containers():
    sidecar = {"name": "side", "image": "y", "publish": ["9090:9000"]}
    with pytest.raises(
        ConfigError, match=r"sidecars\[0\]\.publish\[0\]: .* publish 9000:9000 with mode=host"
    ):
        check_endpoint_ports(ServiceSpec.from_dict({**HOST_BASE, "sidecars": [sidecar]}))
    bound = {**sidecar, "publish": [{"target": 9000, "published": 9000, "mode": "host"}]}
    check_endpoint_ports(ServiceSpec.from_dict({**HOST_BASE, "sidecars": [bound]}))


def test_a_service_network_mode_sidecar_of_a_host_network_service_binds_its_ports_on_the_node():
    definition = load(
        """
        services:
          web: {image: nginx, network_mode: host, ports: ["80:80"]}
          side: {image: exporter, network_mode: "service:web", ports: ["9090:9000", "9000:9000"]}
        """
    )
    web = spec_of(definition, "web")
    assert web["endpoint_mode"] == "dnsrr"
    assert [
        (p["published"], p["target"], p.get("mode", "ingress")) for p in web["sidecars"][0]["publish"]
    ] == [(9000, 9000, "host")]
    assert not ServiceSpec.from_dict(web).ingress_ports  # nothing on the routing mesh
    assert any(w.startswith("ports on the host network (service side)") for w in definition.warnings)


def test_x_p2porch_sidecars_ingress_port_on_the_host_network_is_refused_naming_it():
    message = refusal(
        """
        services:
          web:
            image: nginx
            network_mode: host
            x-p2porch-sidecars: [{name: side, image: exporter, publish: ["9090:9000"]}]
        """
    )
    assert "sidecars[0].publish[0]" in message and "publish 9000:9000 with mode=host" in message


def test_a_port_named_twice_under_network_mode_host_is_one_port():
    definition = load('services: {web: {image: nginx, network_mode: host, ports: ["8080:80", "80:80"]}}')
    assert _ports(spec_of(definition, "web")) == [(80, 80, "host", "tcp")]
    assert any(w.startswith("ports on the host network (service web)") for w in definition.warnings)
    udp = load('services: {dns: {image: x, network_mode: host, ports: ["53:53", "53:53/udp", "5353:53"]}}')
    assert _ports(spec_of(udp, "dns")) == [(53, 53, "host", "tcp"), (53, 53, "host", "udp")]


@pytest.mark.parametrize(
    "text",
    [
        "services: {web: {image: nginx, network_mode: host, deploy: {endpoint_mode: vip}}}",
        "services: {web: {image: nginx, networks: [hostnet], deploy: {endpoint_mode: vip}}}\n"
        "networks: {hostnet: {external: true, name: host}}",
    ],
)
def test_endpoint_mode_vip_beside_the_host_network_is_dnsrr_with_a_warning(text):
    definition = load(text)
    web = spec_of(definition, "web")
    assert web["endpoint_mode"] == "dnsrr" and web["networks"] == [{"target": "host", "aliases": []}]
    assert any(
        w.startswith("deploy.endpoint_mode (service web): a task on the host network has no virtual address")
        for w in definition.warnings
    )


def _created(*flags: str) -> dict:
    argv = ["service", "create", "--name", "ne", *flags, "prom/node-exporter"]
    return validated_spec(spec_changes(build_parser("service").parse_args(argv)))


def test_service_create_network_host_needs_no_endpoint_mode_nor_published_port():
    """``docker service create --mode global --network host prom/node-exporter`` (Swarm takes it)."""
    spec = _created("--mode", "global", "--network", "host")
    assert spec["endpoint_mode"] == "dnsrr" and spec["networks"] == [{"target": "host", "aliases": []}]
    spec = _created("--network", "host", "-p", "mode=host,target=9100")
    assert _ports(spec) == [(9100, 9100, "host", "tcp")]
    assert ServiceSpec.from_dict(spec).host_ports == (("tcp", 9100),)
    assert (
        _created("--publish", "mode=host,target=9100")["publish"][0]["published"] is None
    )  # off host: as before


def test_service_create_network_host_still_refuses_what_cannot_work(capsys):
    """An ingress port (the routing mesh would have no task address to forward it to) and an explicit
    ``--endpoint-mode vip`` are refused before anything is sent, naming the flag."""
    assert main(["service", "create", "--network", "host", "-p", "9100:9100", "img"]) == 2
    assert "--publish: " in capsys.readouterr().err
    assert main(["service", "create", "--network", "host", "--endpoint-mode", "vip", "img"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("p2porch: error: --endpoint-mode: ") and "host network has no virtual address" in err
    )
