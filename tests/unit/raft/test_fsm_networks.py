"""FSM tests for networks: create, refuse bad or taken names, rm refused while a service uses it, specs
naming a missing network refused, snapshot round trip."""

from __future__ import annotations

import pytest

from p2porch.errors import ConfigError, ConflictError, NotFoundError
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState

AT = 1000.0


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
    s = ok(EMPTY_STATE, C.init_cluster(AT, cluster_id="c1"))
    return ok(s, C.create_network(AT, network_id="n1", name="front", internal=True, labels={"tier": "web"}))


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
    refused(base, C.create_network(AT, network_id="n2", name=name), ConfigError)


def test_a_taken_name_or_id_is_refused(base: ClusterState) -> None:
    assert "already exists" in refused(
        base, C.create_network(AT, network_id="n2", name="front"), ConflictError
    )
    refused(base, C.create_network(AT, network_id="n1", name="back"), ConflictError)


def test_unknown_driver_is_refused(base: ClusterState) -> None:
    refused(base, C.create_network(AT, network_id="n2", name="b", driver="macvlan"), ConfigError)


def test_rm_is_refused_while_services_use_it_and_names_them(base: ClusterState) -> None:
    spec = {"image": "busybox", "networks": [{"target": "front", "aliases": []}]}
    s = ok(base, C.create_service(AT, "s1", "web", spec))
    s = ok(s, C.create_service(AT, "s2", "api", spec))
    message = refused(s, C.remove_network(AT, name="front"), ConflictError)
    assert "api, web" in message
    s = ok(s, C.remove_service(AT, "s1"))
    s = ok(s, C.remove_service(AT, "s2"))
    s = ok(s, C.remove_network(AT, name="front"))
    assert s.network_by_name("front") is None and not s.networks
    refused(s, C.remove_network(AT, name="front"), NotFoundError)


def test_service_naming_a_missing_network_is_refused(base: ClusterState) -> None:
    spec = {"image": "busybox", "networks": [{"target": "nope"}]}
    assert "nope" in refused(base, C.create_service(AT, "s1", "web", spec), NotFoundError)
    s = ok(base, C.create_service(AT, "s1", "web", {"image": "busybox"}))
    refused(s, C.update_service(AT, "s1", spec), NotFoundError)
    ok(s, C.update_service(AT, "s1", {"image": "busybox", "networks": [{"target": "p2porch"}]}))


def test_networks_survive_a_snapshot_round_trip(base: ClusterState) -> None:
    again = ClusterState.from_dict(base.to_dict())
    assert again.networks == base.networks
