"""Swarm's rule: a port published in ingress mode cannot be used with endpoint mode dnsrr (``port
published with ingress mode can't be used with dnsrr mode``); a host-mode port can. Refused at every
edge: service create (exit 2 naming --publish, nothing sent), the daemon's create and update (the merged
spec), and a stack file (short and long port forms). It used to be accepted. A committed spec from
before the rule still loads: such a service keeps running; its next update must fix it."""

from __future__ import annotations

import pytest

from p2porch.cli import service as cli_service
from p2porch.cli.main import main
from p2porch.errors import ConfigError
from p2porch.model import ServiceSpec
from p2porch.model.committed import committed_spec
from p2porch.model.spec import check_endpoint_ports
from p2porch.stack import load_stack

MESSAGE = "published with ingress mode can't be used with dnsrr mode"


# "80" and "target=80": ingress on a port the swarm assigns (Swarm refuses them with dnsrr too)
@pytest.mark.parametrize("port", ["8080:80", "published=8080,target=80,mode=ingress", "80", "target=80"])
def test_the_edge_check_refuses_an_ingress_port_on_dnsrr(port) -> None:
    spec = ServiceSpec.from_dict({"name": "web", "image": "x", "endpoint_mode": "dnsrr", "publish": [port]})
    with pytest.raises(ConfigError, match=MESSAGE) as caught:
        check_endpoint_ports(spec)
    assert caught.value.field == "publish[0]"
    assert committed_spec(spec.to_dict(), "s1") == (spec, "")  # committed before the rule: still valid


@pytest.mark.parametrize(
    "data",
    [
        {"endpoint_mode": "dnsrr", "publish": ["published=8080,target=80,mode=host"]},
        {"endpoint_mode": "dnsrr", "publish": ["mode=host,target=80"]},  # the engine picks a host port
        {"endpoint_mode": "dnsrr", "publish": [{"target": 80}]},  # a record of before assigned ports: host
        {"endpoint_mode": "vip", "publish": ["8080:80"]},
    ],
)
def test_host_mode_or_vip_is_allowed(data) -> None:
    check_endpoint_ports(ServiceSpec.from_dict({"name": "web", "image": "x", **data}))


async def test_the_daemon_refuses_it_on_create_and_on_update(ops, manager) -> None:
    body = {"name": "rr", "image": "x", "endpoint_mode": "dnsrr", "publish": ["8080:80"]}
    with pytest.raises(ConfigError, match=MESSAGE):
        await ops.create(body)
    await ops.create({"name": "web", "image": "x", "publish": ["8080:80"]})
    before = manager.snapshot().service_by_name("web")
    with pytest.raises(ConfigError, match=MESSAGE) as caught:
        await ops.update("web", {"endpoint_mode": "dnsrr"})
    assert caught.value.field == "publish[0]"
    assert manager.snapshot().service_by_name("web") == before  # nothing written
    await ops.update("web", {"endpoint_mode": "dnsrr", "publish": ["published=8080,target=80,mode=host"]})


def test_service_create_exits_2_naming_publish_and_sends_nothing(monkeypatch, capsys) -> None:
    monkeypatch.setattr(cli_service, "client_for", lambda args, **kw: pytest.fail("nothing may be sent"))
    argv = ["service", "create", "-d", "--name", "web", "--endpoint-mode", "dnsrr", "-p", "8080:80", "img"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("p2porch: error: --publish: ") and MESSAGE in err


@pytest.mark.parametrize(
    "ports",
    ['["8080:80"]', "[{target: 80, published: 8080, mode: ingress}]", "[{target: 80, published: 8080}]"],
)
def test_a_stack_file_is_refused_by_the_port_path(ports) -> None:
    text = f"services:\n  web:\n    image: x\n    deploy: {{endpoint_mode: dnsrr}}\n    ports: {ports}\n"
    with pytest.raises(ConfigError, match=MESSAGE) as caught:
        load_stack("shop", text)
    assert caught.value.field == "services.web.ports[0]"


def test_a_stack_file_with_a_host_port_on_dnsrr_loads() -> None:
    text = (
        "services:\n  web:\n    image: x\n    deploy: {endpoint_mode: dnsrr}\n"
        "    ports: [{target: 80, published: 8080, mode: host}]\n"
    )
    (service,) = load_stack("shop", text).services
    assert service.spec["endpoint_mode"] == "dnsrr"
