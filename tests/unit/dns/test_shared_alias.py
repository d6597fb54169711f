"""A network alias several services hold on one network answers every holder, as Docker's DNS does
(Eclipse Ditto's ``ditto-cluster``): each holder's VIP (a dnsrr holder: its near tasks), and
``tasks.<alias>`` all their tasks; on the querier's first network holding it only; a service's own name
and a link keep their precedence; one holder left answers as a single-owner alias again."""

from __future__ import annotations

import dataclasses

from dnslib import QTYPE, DNSRecord

from p2porch.dns.resolver import Resolver
from p2porch.dns.scope import ClientScopes, NetworkAlias, ScopeData, scoped_zone
from p2porch.dns.zone import TaskEntry, ZoneData, compile_zone
from p2porch.dns.zone_cache import ZoneCompiler

POLICIES = [TaskEntry(1, "10.1.0.2"), TaskEntry(2, "10.1.0.3")]
THINGS = [TaskEntry(1, "10.1.0.4")]
GATEWAY = [TaskEntry(1, "10.1.0.5", site="eu"), TaskEntry(2, "10.1.0.6", site="us")]
ZONE = ZoneData(
    domain="p2p",
    services={
        "policies": POLICIES,
        "things": THINGS,
        "gateway": GATEWAY,
        "nginx": [TaskEntry(1, "10.1.0.9")],
    },
    vips={"policies": "10.239.0.2", "things": "10.239.0.4"},  # gateway: dnsrr
    local_site="eu",
)
CLUSTER = "ditto-cluster"


def _data(
    *holders: str, network: str = "ditto", clients: dict[str, frozenset[str]] | None = None
) -> ScopeData:
    return ScopeData(
        services_by_network={"ditto": frozenset(ZONE.services), "other": frozenset({"nginx", "things"})},
        aliases=tuple(sorted(NetworkAlias(network, CLUSTER, h) for h in holders)),
        clients=clients or {"10.1.0.9": frozenset({"ditto"})},
    )


def answer(zone: ZoneData, name: str) -> tuple[int, list[str]]:
    asked = name if name.endswith(".internal") else f"{name}.p2p"
    reply = Resolver(zone).resolve(DNSRecord.question(asked).pack())
    assert isinstance(reply, bytes)
    parsed = DNSRecord.parse(reply)
    return parsed.header.rcode, sorted(str(rr.rdata) for rr in parsed.rr if rr.rtype == QTYPE.A)


def test_two_vip_holders_answer_both_vips_and_all_their_tasks() -> None:
    view = scoped_zone(ZONE, frozenset({"ditto"}), _data("policies", "things"))
    assert dict(view.shared) == {CLUSTER: ("policies", "things")} and CLUSTER not in view.services
    assert answer(view, CLUSTER) == (0, ["10.239.0.2", "10.239.0.4"])
    assert answer(view, f"tasks.{CLUSTER}") == (0, ["10.1.0.2", "10.1.0.3", "10.1.0.4"])
    assert answer(view, "policies") == (0, ["10.239.0.2"])  # each service's own name unchanged


def test_three_holders_mixing_vip_and_dnsrr_answer_the_vips_and_the_dnsrr_holders_near_tasks() -> None:
    view = scoped_zone(ZONE, frozenset({"ditto"}), _data("policies", "things", "gateway"))
    assert answer(view, CLUSTER) == (0, ["10.1.0.5", "10.239.0.2", "10.239.0.4"])  # gateway: its eu task
    tasks = ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"]
    assert answer(view, f"tasks.{CLUSTER}") == (0, tasks)
    only_dnsrr = dataclasses.replace(ZONE, vips={})
    view = scoped_zone(only_dnsrr, frozenset({"ditto"}), _data("things", "gateway"))
    assert answer(view, CLUSTER) == (0, ["10.1.0.4", "10.1.0.5"])


def test_one_holder_left_answers_as_a_single_owner_alias_again() -> None:
    view = scoped_zone(ZONE, frozenset({"ditto"}), _data("things"))
    assert not view.shared and view.services[CLUSTER] is THINGS and view.vips[CLUSTER] == "10.239.0.4"
    assert answer(view, CLUSTER) == (0, ["10.239.0.4"])
    assert answer(view, f"tasks.{CLUSTER}") == (0, ["10.1.0.4"])


def test_the_alias_on_another_network_than_the_queriers_is_not_answered() -> None:
    view = scoped_zone(ZONE, frozenset({"other"}), _data("policies", "things"))
    assert answer(view, CLUSTER)[0] == 3  # NXDOMAIN
    # on both networks, the holders on the first network holding it answer, not those of another
    data = dataclasses.replace(
        _data("policies", "things"),
        aliases=(NetworkAlias("ditto", CLUSTER, "policies"), NetworkAlias("other", CLUSTER, "things")),
    )
    view = scoped_zone(ZONE, frozenset({"ditto", "other"}), data)
    assert not view.shared and answer(view, CLUSTER) == (0, ["10.239.0.2"])


def test_a_service_name_beats_a_shared_alias_and_a_link_beats_it_too() -> None:
    data = dataclasses.replace(
        _data(),
        aliases=(NetworkAlias("ditto", "things", "policies"), NetworkAlias("ditto", "things", "gateway")),
    )
    view = scoped_zone(ZONE, frozenset({"ditto"}), data)
    assert not view.shared and answer(view, "things") == (0, ["10.239.0.4"])
    data = dataclasses.replace(_data("policies", "things"), links={"nginx": ((CLUSTER, "gateway"),)})
    view = scoped_zone(ZONE, frozenset({"ditto"}), data, "nginx")
    assert not view.shared and answer(view, CLUSTER) == (0, ["10.1.0.5"])
    assert answer(view, f"tasks.{CLUSTER}") == (0, ["10.1.0.5", "10.1.0.6"])


def test_a_dotted_shared_alias_is_answered_as_asked() -> None:
    data = dataclasses.replace(
        _data(),
        aliases=(
            NetworkAlias("ditto", "db.internal", "policies"),
            NetworkAlias("ditto", "db.internal", "things"),
        ),
    )
    view = scoped_zone(ZONE, frozenset({"ditto"}), data)
    assert answer(view, "db.internal") == (0, ["10.239.0.2", "10.239.0.4"])


def test_holders_coming_and_going_through_client_scopes_answer_as_a_fresh_compile() -> None:
    """The scope's resolver kept across updates (its compiler patching) as a holder is created, updated
    and removed: every step's names equal ``compile_zone`` of that step's view."""
    scopes = ClientScopes(Resolver(ZONE), Resolver)
    steps = [
        (ZONE, ("policies",)),
        (ZONE, ("policies", "things")),
        (
            dataclasses.replace(ZONE, services={**ZONE.services, "things": [TaskEntry(1, "10.1.0.7")]}),
            ("policies", "things"),
        ),
        (dataclasses.replace(ZONE, vips={"policies": "10.239.0.2"}), ("policies", "things", "gateway")),
        (ZONE, ("things", "gateway")),
        (ZONE, ("gateway",)),
        (ZONE, ()),
    ]
    for zone, holders in steps:
        data = _data(*holders)
        scopes.update(zone, data)
        resolver = scopes.for_host("10.1.0.9")
        assert resolver.zone.names == compile_zone(scoped_zone(zone, frozenset({"ditto"}), data)).names


def test_a_zone_compiler_reuses_an_unchanged_shared_alias() -> None:
    compiler = ZoneCompiler()
    view = scoped_zone(ZONE, frozenset({"ditto"}), _data("policies", "things"))
    assert compiler.compile(view).names == compile_zone(view).names
    again = dataclasses.replace(view, version=view.version + 1)
    assert compiler.compile(again).names == compile_zone(again).names
    assert compiler.compiled_services == 0


def test_a_service_named_like_a_shared_aliass_fragment_compiles_the_zone_whole() -> None:
    view = scoped_zone(ZONE, frozenset({"ditto"}), _data("policies", "things"))
    odd = dataclasses.replace(view, services={**view.services, f"\x00{CLUSTER}": THINGS})
    compiler = ZoneCompiler()
    assert compiler.compile(odd).names == compile_zone(odd).names and compiler.full_compiles == 1
    assert compiler.compile(view).names == compile_zone(view).names
