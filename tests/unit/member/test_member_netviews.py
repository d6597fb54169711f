"""From committed state to isolation input and DNS scopes: task addresses get their service's networks,
finished tasks and unaddressed ones are left out, the default network stands in for none."""

from __future__ import annotations

import dataclasses

from p2porch.member.netviews import dns_scopes, policy_input, service_networks, task_networks
from p2porch.model import NetworkRecord, Service, ServiceSpec, SubnetLease, Task, TaskState
from p2porch.raft.state import ClusterState


def svc(service_id: str, name: str, **spec: object) -> Service:
    return Service(service_id, ServiceSpec.from_dict({"name": name, "image": "busybox", **spec}))


def state() -> ClusterState:
    return ClusterState(
        cluster_id="c",
        cluster_cidr="10.240.0.0/16",
        leases={"n1": SubnetLease("n1", "10.240.1.0/24")},
        networks={"x": NetworkRecord("x", "back", internal=True)},
        services={
            "s1": svc("s1", "web", networks=["name=back,alias=www", "front"]),
            "s2": svc("s2", "old"),
            "s3": svc("s3", "shop-db", labels={"p2porch.stack": "shop", "p2porch.stack.service": "db"}),
        },
        tasks={
            "t1": Task("t1", "s1", 1, "n1", state=TaskState.RUNNING, address="10.240.1.2"),
            "t2": Task("t2", "s2", 1, "n1", state=TaskState.RUNNING, address="10.240.1.3"),
            "t3": Task("t3", "s2", 2, "n1", state=TaskState.FAILED, address="10.240.1.4"),
            "t4": Task("t4", "s2", 3, "n1", state=TaskState.PENDING),
        },
    )


def test_service_networks_default_when_none_named() -> None:
    assert service_networks(svc("s", "x").spec) == {"p2porch"}
    assert service_networks(svc("s", "x", networks=["a", "b"]).spec) == {"a", "b"}


def test_task_networks_skip_finished_and_unaddressed_tasks() -> None:
    assert task_networks(state()) == {"10.240.1.2": {"back", "front"}, "10.240.1.3": {"p2porch"}}


def test_policy_input_for_a_node_with_a_lease() -> None:
    spec = policy_input(state(), "n1")
    assert spec is not None
    assert (spec.cluster_cidr, spec.local_subnet, spec.internal_networks) == (
        "10.240.0.0/16",
        "10.240.1.0/24",
        {"back"},
    )
    assert spec.addresses is not None and set(spec.addresses) == {"10.240.1.2", "10.240.1.3"}
    assert policy_input(state(), "n2") is None


def test_dns_scopes_carry_members_aliases_and_clients() -> None:
    data = dns_scopes(state())
    assert data.services_by_network["back"] == {"web"} and data.services_by_network["p2porch"] == {
        "old",
        "shop-db",
    }
    assert [(a.network, a.alias, a.service) for a in data.aliases] == [("back", "www", "web")]
    assert data.clients["10.240.1.2"] == {"back", "front"}


def test_stack_short_names_are_owned_by_their_service() -> None:
    assert dns_scopes(state()).owners == {"db.shop": "shop-db", "shop_db": "shop-db"}


def test_dns_scopes_carry_each_services_links_and_the_addresses_of_its_tasks() -> None:
    base = state()
    linked = svc("s4", "exporter", links=["web:tinode.host", "old:legacy"])
    tasks = {
        **base.tasks,
        "t5": Task("t5", "s4", 1, "n1", state=TaskState.RUNNING, address="10.240.1.8"),
        "t6": Task("t6", "s4", 2, "n1", state=TaskState.FAILED, address="10.240.1.9"),
    }
    with_links = dataclasses.replace(base, services={**base.services, "s4": linked}, tasks=tasks)
    data = dns_scopes(with_links)
    assert data.links == {"exporter": (("tinode.host", "web"), ("legacy", "old"))}
    assert data.linkers == {"10.240.1.8": "exporter"}  # a finished task's address sees nothing
    assert dns_scopes(with_links, None, lambda sid: ["10.240.1.8"] if sid == "s4" else []).linkers == {
        "10.240.1.8": "exporter"
    }
    assert dns_scopes(state()).links == {} and dns_scopes(state()).linkers == {}
