"""``--publish 80``, ``--publish target=80`` and Compose ``"80"``, ``"80/udp"``, ``- target: 80`` are
ingress ports the FSM assigns (Swarm's 30000-32767), seen by ``service inspect``/``service ls``/``stack
services``; a redeploy keeps the port; a chosen port that collides is refused with Docker's wording;
``mode=host,target=80`` stays host mode (the engine picks a host port per task)."""

from __future__ import annotations

import pytest

from p2porch.cli.docker_paths import docker_path
from p2porch.cli.main import build_parser
from p2porch.cli.service_describe import describe_service
from p2porch.cli.service_rows import SERVICE_COLUMNS, service_row
from p2porch.cli.service_spec_flags import spec_changes, validated_spec
from p2porch.cli.util import UsageError
from p2porch.control.service_ops import ServiceOps
from p2porch.control.stack_ops import StackOps
from p2porch.errors import ConflictError
from p2porch.stack import load_stack
from p2porch.testing.memstore import MemoryManager


def published(argv: list[str]) -> list[dict]:
    args = build_parser("service").parse_args(["service", "create", "--name", "web", *argv, "img"])
    return validated_spec(spec_changes(args))["publish"]


@pytest.mark.parametrize("flag", ["80", "target=80", "target=80,mode=ingress", "80/udp"])
def test_the_cli_forms_without_a_published_port_are_ingress(flag) -> None:
    (port,) = published(["-p", flag])
    assert port["mode"] == "ingress" and port["published"] is None


def test_one_assigned_port_per_container_port() -> None:
    assert len(published(["-p", "80", "-p", "80/udp", "-p", "8080:80"])) == 3
    with pytest.raises(
        UsageError, match="container port 80/tcp published twice without a published port"
    ) as caught:
        published(["-p", "80", "-p", "target=80"])
    assert caught.value.field == "--publish"


@pytest.mark.parametrize("flag", ["mode=host,target=80", "127.0.0.1::80"])
def test_host_mode_or_a_bound_address_stays_host(flag) -> None:
    (port,) = published(["-p", flag])
    assert "mode" not in port and port["published"] is None  # host: the stored form of before


@pytest.mark.parametrize(
    ("entry", "protocol"),
    [
        ('"80"', "tcp"),
        ('"80/udp"', "udp"),
        ("80", "tcp"),
        ("{target: 80}", "tcp"),
        ("{target: 80, mode: ingress}", "tcp"),
    ],
)
def test_compose_forms_without_a_published_port_are_ingress(entry, protocol) -> None:
    definition = load_stack("shop", f"services:\n  web:\n    image: x\n    ports: [{entry}]\n")
    (port,) = definition.services[0].spec["publish"]
    assert (port["target"], port["protocol"], port["published"], port["mode"]) == (
        80,
        protocol,
        None,
        "ingress",
    )


@pytest.mark.parametrize("entry", ["{target: 80, mode: host}", '"127.0.0.1::80"'])
def test_compose_host_mode_without_a_published_port_stays_host(entry) -> None:
    definition = load_stack("shop", f"services:\n  web:\n    image: x\n    ports: [{entry}]\n")
    (port,) = definition.services[0].spec["publish"]
    assert port.get("mode", "host") == "host" and port["published"] is None


@pytest.fixture
def services() -> ServiceOps:
    return ServiceOps(MemoryManager(), logs=None)  # type: ignore[arg-type]


async def test_inspect_ls_and_a_colliding_chosen_port(services) -> None:
    await services.create({"name": "web", "image": "x", "publish": ["80", "8080:81"]})
    view = services.view(services.find("web"))
    assert [(p["published"], p["target"], p.get("assigned")) for p in view["endpoint_ports"]] == [
        (30000, 80, True),
        (8080, 81, None),
    ]
    row = dict(zip(SERVICE_COLUMNS, service_row(view), strict=True))
    assert row["ports"] == "*:30000->80/tcp,*:8080->81/tcp"
    assert "Ports:     30000 -> 80/tcp (ingress: port 30000 of every node, assigned by the cluster)" in (
        describe_service(view)
    )
    found, ports = docker_path(view, ".Endpoint.Ports")
    assert found and [(p["PublishedPort"], p["TargetPort"]) for p in ports] == [(30000, 80), (8080, 81)]
    assert [p["PublishedPort"] for p in docker_path(view, ".Spec.EndpointSpec.Ports")[1]] == [0, 8080]
    with pytest.raises(
        ConflictError, match=r"port '30000' \(tcp\) is already in use by service 'web'"
    ) as caught:
        await services.create({"name": "api", "image": "x", "publish": ["30000:80"]})
    assert caught.value.field == "--publish"
    await services.create({"name": "api", "image": "x", "publish": ["80"]})
    assert services.view(services.find("api"))["endpoint_ports"][0]["published"] == 30001


STACK = """
services:
  web:
    image: x
    ports: ["80", "53/udp"]
  api:
    image: x
    ports: [{target: 80}]
"""


async def test_a_stack_deploy_assigns_and_a_redeploy_keeps_the_ports(services) -> None:
    stacks = StackOps(services)
    await stacks.apply(load_stack("shop", STACK))
    state = services.manager.snapshot()
    web, api = state.service_by_name("shop-web"), state.service_by_name("shop-api")
    assert web is not None and api is not None
    assert web.assigned_ports == (("tcp", 80, 30000), ("udp", 53, 30000))
    assert api.assigned_ports == (("tcp", 80, 30001),)
    await stacks.apply(
        load_stack("shop", STACK.replace("image: x\n    ports: [{", "image: y\n    ports: [{"))
    )
    again = services.manager.snapshot()
    assert again.service_by_name("shop-api").spec.image == "y"  # type: ignore[union-attr]
    assert again.service_by_name("shop-api").assigned_ports == api.assigned_ports  # type: ignore[union-attr]
    assert again.service_by_name("shop-web").assigned_ports == web.assigned_ports  # type: ignore[union-attr]
    rows = {v["name"]: service_row(v) for v in stacks.services_of("shop")}
    assert rows["shop-web"][SERVICE_COLUMNS.index("ports")] == "*:30000->80/tcp,*:30000->53/udp"
