"""From committed state to isolation input and DNS scopes: task addresses get their service's networks,
finished tasks and unaddressed ones are left out, the default network stands in for none."""

from __future__ import annotations

import dataclasses

from dnslib import QTYPE, RCODE, DNSRecord

from p2porch.dns.resolver import FORWARD, Resolver
from p2porch.dns.scope import ClientScopes
from p2porch.member.netviews import dns_scopes, policy_input, service_aliases, service_networks, task_networks
from p2porch.member.views import dns_zone
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
    assert [(a.network, a.alias, a.service) for a in data.aliases] == [
        ("back", "www", "web"),
        ("p2porch", "db", "shop-db"),  # a stack member's short name, on each of its networks
    ]
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


def stack_member(service_id: str, stack: str, short: str, **spec: object) -> Service:
    labels = {"p2porch.stack": stack, "p2porch.stack.service": short}
    return svc(service_id, f"{stack}-{short.lower()}", labels=labels, **spec)


def test_a_stack_members_short_name_is_an_alias_on_each_of_its_networks() -> None:
    api = stack_member("s", "names", "Api", networks=["name=back,alias=backend-api", "front"])
    assert service_aliases(api.spec) == [("back", "api"), ("back", "backend-api"), ("front", "api")]
    assert service_aliases(stack_member("s", "shop", "db").spec) == [("p2porch", "db")]  # the default network
    assert service_aliases(svc("s", "web", networks=["name=back,alias=www"]).spec) == [("back", "www")]


def answers(resolver: Resolver, name: str) -> object:
    """The sorted A addresses of ``name`` from ``resolver``, or its rcode name, or "forwarded"."""
    reply = resolver.resolve(DNSRecord.question(name).pack())
    if reply is FORWARD:
        return "forwarded"
    assert isinstance(reply, bytes)
    parsed = DNSRecord.parse(reply)
    if parsed.header.rcode:
        return RCODE[parsed.header.rcode]
    return sorted(str(rr.rdata) for rr in parsed.rr if rr.rtype == QTYPE.A)


def test_tasks_of_a_stack_members_short_name_answer_on_its_networks_only() -> None:
    """``tasks.api`` (asked as it is: busybox and musl never try the search domains for a dotted name)
    answers the tasks of ``names-api`` to a task on one of its networks, whether of the stack or not, as
    Swarm's alias does; a task on no shared network gets it forwarded, as an unknown name."""
    services = {
        "s1": stack_member("s1", "names", "api", networks=["back"]),
        "s2": stack_member("s2", "names", "client", networks=["back"]),
        "s3": svc("s3", "outsider", networks=["back"]),
        "s4": svc("s4", "elsewhere", networks=["front"]),
        "s5": stack_member("s5", "other", "api", networks=["front"]),  # the same short name elsewhere
    }
    addresses = {"s1": "10.240.1.2", "s2": "10.240.1.3", "s3": "10.240.1.4", "s4": "10.240.1.5"}
    addresses["s5"] = "10.240.1.6"
    tasks = {
        f"t{sid}": Task(f"t{sid}", sid, 1, "n1", state=TaskState.RUNNING, address=address)
        for sid, address in addresses.items()
    }
    tasks["tx"] = Task("tx", "s1", 2, "n1", state=TaskState.RUNNING, address="10.240.1.9")
    cluster = dataclasses.replace(state(), services=services, tasks=tasks)
    zone = dns_zone(cluster)
    scopes = ClientScopes(Resolver(zone), Resolver)
    scopes.update(zone, dns_scopes(cluster))
    client, outsider, elsewhere = (scopes.for_host(addresses[s]) for s in ("s2", "s3", "s4"))
    api = ["10.240.1.2", "10.240.1.9"]
    for name in ("tasks.api", "tasks.api.p2p", "api.p2p", "tasks.names_api", "tasks.api.names.p2p"):
        assert answers(client, name) == api, name
    assert answers(outsider, "tasks.api") == api  # the alias is the network's, not the stack's
    assert answers(elsewhere, "tasks.api") == ["10.240.1.6"]  # the other stack's api, on front
    assert answers(scopes.for_host("10.240.1.200"), "tasks.api") == "forwarded"  # not a task: whole zone
    lone = dataclasses.replace(cluster, services={k: v for k, v in services.items() if k != "s5"})
    scopes.update(dns_zone(lone), dns_scopes(lone))
    assert answers(scopes.for_host(addresses["s4"]), "tasks.api") == "forwarded"  # on no shared network
    assert answers(scopes.for_host(addresses["s4"]), "api.p2p") == "NXDOMAIN"


def test_a_service_named_like_a_short_name_wins_over_the_alias() -> None:
    services = {
        "s1": stack_member("s1", "names", "api", networks=["back"]),
        "s2": svc("s2", "api", networks=["back"]),
    }
    tasks = {
        "t1": Task("t1", "s1", 1, "n1", state=TaskState.RUNNING, address="10.240.1.2"),
        "t2": Task("t2", "s2", 1, "n1", state=TaskState.RUNNING, address="10.240.1.3"),
    }
    cluster = dataclasses.replace(state(), services=services, tasks=tasks)
    zone = dns_zone(cluster)
    scopes = ClientScopes(Resolver(zone), Resolver)
    scopes.update(zone, dns_scopes(cluster))
    assert answers(scopes.for_host("10.240.1.2"), "tasks.api") == ["10.240.1.3"]
    assert answers(scopes.for_host("10.240.1.2"), "tasks.names-api") == ["10.240.1.2"]


def test_where_two_stacks_short_names_share_a_network_each_stack_gets_its_own() -> None:
    """Two stacks' ``web`` on one external network (a proxy's) and each on its own default network: a
    task of either stack on both resolves ``tasks.web`` to its own stack's (the alias on its own stack's
    network goes first); a task on the shared network alone gets both, as Docker's DNS answers an alias
    several services hold (docs/dns.md, "A network alias several services hold")."""
    networks = {
        f"x{stack}": NetworkRecord(f"x{stack}", f"{stack}_default", labels={"p2porch.stack": stack})
        for stack in ("alpha", "zeta")
    }
    networks["xp"] = NetworkRecord("xp", "proxy")
    services = {
        "s1": stack_member("s1", "alpha", "web", networks=["alpha_default", "proxy"]),
        "s2": stack_member("s2", "zeta", "web", networks=["zeta_default", "proxy"]),
        "s3": stack_member("s3", "zeta", "client", networks=["zeta_default", "proxy"]),
        "s4": svc("s4", "traefik", networks=["proxy"]),
    }
    addresses = {"s1": "10.240.1.2", "s2": "10.240.1.3", "s3": "10.240.1.4", "s4": "10.240.1.5"}
    tasks = {
        f"t{sid}": Task(f"t{sid}", sid, 1, "n1", state=TaskState.RUNNING, address=address)
        for sid, address in addresses.items()
    }
    cluster = dataclasses.replace(state(), networks=networks, services=services, tasks=tasks)
    zone = dns_zone(cluster)
    scopes = ClientScopes(Resolver(zone), Resolver)
    scopes.update(zone, dns_scopes(cluster))
    assert answers(scopes.for_host(addresses["s3"]), "tasks.web") == ["10.240.1.3"]  # zeta's own
    assert answers(scopes.for_host(addresses["s1"]), "tasks.web") == ["10.240.1.2"]  # alpha's own
    assert answers(scopes.for_host(addresses["s4"]), "tasks.web") == ["10.240.1.2", "10.240.1.3"]  # both
