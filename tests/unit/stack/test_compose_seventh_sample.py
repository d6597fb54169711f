"""Constructs of the seventh real-world sample (docs/stack.md, "Seventh sample"), each reproduced by a
minimal hand-written file: a ``provider:`` service (Compose 2.36+, which has no image: refused before),
and names with dots that other services ask for as written (Hyperledger Fabric's ``orderer.example.com``
service, OpenReplay's ``postgresql.db.svc.cluster.local`` alias, oCIS's public domain as an alias of its
proxy): resolvers try such a name as absolute first and the cluster DNS forwarded it, where Docker's DNS
answers it from the network."""

from __future__ import annotations

import textwrap

import dns.flags
import dns.message
import dns.rcode
import pytest

from p2porch.dns.resolver import FORWARD, Resolver
from p2porch.dns.scope import NetworkAlias, ScopeData, scoped_zone
from p2porch.dns.zone import TaskEntry, ZoneData, compile_zone
from p2porch.dns.zone_cache import ZoneCompiler
from p2porch.model import ServiceSpec
from p2porch.stack import ComposeError, load_stack
from p2porch.stack.resolve import ComposeFile


def _load(text: str, environ: dict[str, str] | None = None):
    return load_stack("app", [ComposeFile("/srv/app/compose.yaml", textwrap.dedent(text), "/srv/app")], None,
                      environ=environ or {})  # fmt: skip


def _networks(definition, short: str) -> dict[str, list[str]]:
    spec = {s.short_name: s.spec for s in definition.services}[short]
    assert ServiceSpec.from_dict(spec).to_dict() == spec
    return {net["target"]: net["aliases"] for net in spec["networks"]}


def test_a_provider_service_is_not_deployed_and_its_dependents_load():
    """docker/compose's interpolation fixture: ``example`` has ``provider:`` and no image (a docker
    compose plugin runs it); ``test`` depends on it. It was refused ("services.example.image: is
    required"); the file loads now, without ``example``, and ``test`` does not wait for it."""
    definition = _load(
        """
        services:
          test:
            image: alpine
            command: env
            depends_on: [example]
          example:
            provider:
              type: example-provider
              options: {type: test, size: 0}
        """
    )
    assert [s.short_name for s in definition.services] == ["test"]
    assert definition.services[0].depends_on == ()
    assert (
        "services.example.provider (example-provider): example is not deployed: a provider service is run "
        "by a docker compose plugin, not as a container (services that depend on it start without it and "
        "get none of its variables)"
    ) in definition.warnings
    assert any(
        w.startswith("services.test.depends_on: 'example' is not deployed") for w in definition.warnings
    )


def test_a_file_of_provider_services_only_deploys_nothing_and_says_why():
    with pytest.raises(ComposeError) as info:
        _load("services:\n  models:\n    provider: {type: model}\n")
    assert "services: at least one service is required (provider services are not deployed)" in str(
        info.value
    )


def test_a_service_named_with_dots_answers_that_name_on_its_networks():
    """Fabric's test network: services ``orderer.example.com`` and ``peer0.org1.example.com`` (their
    ``container_name`` the same) on network ``test``, the peers configured with
    ``orderer.example.com:7050``. Each name is now a network alias of its service; a dotted
    ``container_name`` another service is configured with is one too (it was refused as "not a name the
    cluster DNS answers")."""
    definition = _load(
        """
        networks:
          test: {name: fabric_test}
        services:
          orderer.example.com:
            image: hyperledger/fabric-orderer:latest
            container_name: orderer.example.com
            networks: [test]
          peer0.org1.example.com:
            image: hyperledger/fabric-peer:latest
            environment: [CORE_PEER_GOSSIP_BOOTSTRAP=peer0.org1.example.com:7051]
            networks: [test]
          db:
            image: postgres
            container_name: db.internal
        """
    )
    assert _networks(definition, "orderer.example.com") == {"fabric_test": ["orderer.example.com"]}
    assert _networks(definition, "peer0.org1.example.com") == {"fabric_test": ["peer0.org1.example.com"]}
    assert _networks(definition, "db") == {"app_default": ["db.internal"]}
    assert not [w for w in definition.warnings if w.startswith("ignoring services.")]


TASKS = {"app-orderer": [TaskEntry(1, "10.240.1.2")], "app-peer": [TaskEntry(1, "10.240.1.3")]}
SCOPES = ScopeData(
    services_by_network={"app_test": frozenset({"app-orderer", "app-peer"})},
    aliases=(
        NetworkAlias("app_test", "orderer.example.com", "app-orderer"),
        NetworkAlias("app_test", "postgresql.db.svc.cluster.local", "app-peer"),
        NetworkAlias("app_test", "peer", "app-peer"),
        NetworkAlias("elsewhere", "hidden.example.org", "app-peer"),
    ),
    clients={"10.240.1.3": frozenset({"app_test"})},
)


def _ask(resolver: Resolver, name: str):
    reply = resolver.resolve(dns.message.make_query(name, "A").to_wire())
    return reply if reply is FORWARD else dns.message.from_wire(reply)


def test_a_dotted_alias_is_answered_as_asked_from_the_tasks_of_its_network():
    """A task on ``app_test`` asking ``orderer.example.com`` (absolute first: it has dots) got a
    forward to the upstreams (NXDOMAIN, or a public address) and only found the alias under the search
    domain when its resolver tried it (glibc after the failure, musl never)."""
    resolver = Resolver(scoped_zone(ZoneData(services=TASKS), frozenset({"app_test"}), SCOPES))
    for name, address in (
        ("orderer.example.com", "10.240.1.2"),
        ("postgresql.db.svc.cluster.local", "10.240.1.3"),
    ):
        reply = _ask(resolver, name)
        assert reply is not FORWARD and reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
        assert [str(r.name) for r in reply.answer] == [name + "."]  # named as asked
        assert [rd.address for rrset in reply.answer for rd in rrset] == [address]
    assert _ask(resolver, "orderer.example.com.p2p").answer  # under the domain, as before
    assert _ask(resolver, "example.com") is FORWARD  # not an alias: forwarded
    assert _ask(resolver, "hidden.example.org") is FORWARD  # an alias of a network the task is not on
    peer = _ask(resolver, "peer")  # one label of the zone: peer.p2p, as Docker answers a bare name
    assert peer.rcode() == dns.rcode.NOERROR and [str(r.name) for r in peer.answer] == ["peer."]
    assert _ask(resolver, "nosuchpeer").rcode() == dns.rcode.NXDOMAIN  # never forwarded


def test_the_whole_zone_forwards_dotted_names_and_both_compilers_agree():
    """Only a task's scope answers its networks' aliases; a node or ``dig`` on the host gets the whole
    zone, where no alias exists. The incremental compiler gives the full compile's value."""
    assert _ask(Resolver(ZoneData(services=TASKS)), "orderer.example.com") is FORWARD
    zone = scoped_zone(ZoneData(services=TASKS), frozenset({"app_test"}), SCOPES)
    assert zone.bare == {"orderer.example.com", "postgresql.db.svc.cluster.local"}
    compiler = ZoneCompiler()
    assert compiler.compile(zone) == compile_zone(zone)
    assert compiler.compile(zone).bare == compile_zone(zone).bare != frozenset()
    assert ZoneData.from_dict(zone.to_dict()).bare == zone.bare
