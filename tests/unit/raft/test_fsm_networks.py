"""FSM tests for networks: create, refuse bad or taken names, rm refused while a service uses it, specs
naming a missing network refused, snapshot round trip."""

from __future__ import annotations

import pytest

from p2porch.errors import ConfigError, ConflictError, NotFoundError
from p2porch.model import ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState

AT = 1000.0


def net(network_id: str, name: str, **kw: object) -> bytes:
    return C.CreateNetwork(at=AT, network_id=network_id, name=name, **kw).encode()  # type: ignore[arg-type]


def rm(name: str) -> bytes:
    return C.RemoveNetwork(at=AT, name=name).encode()


def create(service_id: str, name: str, networks: list | None = None) -> bytes:
    spec = ServiceSpec.from_dict({"name": name, "image": "busybox", "networks": networks or []})
    return C.CreateService(at=AT, service_id=service_id, spec=spec).encode()


def update(s: ClusterState, service_id: str, networks: list) -> bytes:
    svc = s.services[service_id]
    spec = ServiceSpec.from_dict({**svc.spec.to_dict(), "networks": networks})
    return C.UpdateService.of(svc, at=AT, spec=spec).encode()


def ok(state: ClusterState, cmd: bytes) -> ClusterState:
    new, result, _ = apply(state, cmd)
    assert result["ok"], result
    return new


def refused(state: ClusterState, cmd: bytes, kind: type) -> str:
    new, result, _ = apply(state, cmd)
    assert not result["ok"]
    assert isinstance(C.error_of(result), kind), result
    assert new is state
    return str(result["message"])


@pytest.fixture
def base() -> ClusterState:
    s = ok(EMPTY_STATE, C.InitCluster(at=AT, cluster_id="c1").encode())
    return ok(s, net("n1", "front", internal=True, labels={"tier": "web"}))


def test_create_network_records_its_fields(base: ClusterState) -> None:
    record = base.network_by_name("front")
    assert record is not None
    assert (record.network_id, record.driver, record.internal, record.attachable) == (
        "n1",
        "overlay",
        True,
        False,
    )
    assert dict(record.labels) == {"tier": "web"} and record.created_at == AT


@pytest.mark.parametrize("name", ["p2porch", "ingress", "host", "bad name", "-x", ""])
def test_reserved_or_malformed_names_are_refused(base: ClusterState, name: str) -> None:
    refused(base, net("n2", name), ConfigError)


def test_a_taken_name_or_id_is_refused(base: ClusterState) -> None:
    assert "already exists" in refused(base, net("n2", "front"), ConflictError)
    refused(base, net("n1", "back"), ConflictError)


def test_unknown_driver_is_refused(base: ClusterState) -> None:
    refused(base, net("n2", "b", driver="macvlan"), ConfigError)


def test_rm_is_refused_while_services_use_it_and_names_them(base: ClusterState) -> None:
    s = ok(base, create("s1", "web", ["front"]))
    s = ok(s, create("s2", "api", ["name=front,alias=x"]))
    message = refused(s, rm("front"), ConflictError)
    assert "api, web" in message
    s = ok(s, C.RemoveService(at=AT, service_id="s1").encode())
    s = ok(s, C.RemoveService(at=AT, service_id="s2").encode())
    s = ok(s, rm("front"))
    assert s.network_by_name("front") is None and not s.networks
    refused(s, rm("front"), NotFoundError)


def test_service_naming_a_missing_network_is_refused(base: ClusterState) -> None:
    assert "nope" in refused(base, create("s1", "web", ["nope"]), NotFoundError)
    s = ok(base, create("s1", "web"))
    refused(s, update(s, "s1", ["nope"]), NotFoundError)
    s = ok(s, update(s, "s1", ["p2porch", "front"]))
    assert [n.target for n in s.services["s1"].spec.networks] == ["p2porch", "front"]


def test_an_update_keeping_its_networks_applies_even_if_one_vanished(base: ClusterState) -> None:
    """Networks a service is already on are not checked again: bookkeeping updates never get stuck."""
    s = ok(base, create("s1", "web", ["front"]))
    gone = s.evolve(networks={}, version=s.version)  # as if a concurrent rm had slipped through
    svc = gone.services["s1"]
    ok(gone, C.UpdateService.of(svc, at=AT, spec=svc.spec, update_paused=True).encode())


def test_networks_survive_a_snapshot_round_trip(base: ClusterState) -> None:
    again = ClusterState.from_dict(base.to_dict())
    assert again.networks == base.networks
