"""The isolation rule builder: its text and sets, evaluated by a small model of iptables' chain traversal
(``-m set --match-set`` included), give exactly "accept when source and destination share a network"
for every pair, for random layouts; the rules name local tasks only, the cluster lives in the sets."""

from __future__ import annotations

import ipaddress
import random

import pytest

from p2porch.netoverlay.netpolicy import (
    POLICY_CHAIN,
    REJECT_CHAIN,
    TASKS_SET,
    PolicyInput,
    PolicyPlan,
    may_talk,
    network_set,
    plan_policy,
    stale_chains,
    valid_addresses,
)

CLUSTER = "10.240.0.0/16"
LEASE = "10.240.1.0/24"


def _match(cond: str, value: str, negate: bool, addr: str) -> bool:
    hit = ipaddress.IPv4Address(addr) in ipaddress.IPv4Network(value)
    return hit != negate


def evaluate(plan: PolicyPlan, src: str, dst: str, *, established: bool = False) -> str:
    """ACCEPT, REJECT or RETURN (fall through to the rest of FORWARD) for one new packet."""
    chains: dict[str, list[list[str]]] = {}
    for line in plan.text.splitlines():
        if line.startswith("-A "):
            words = line.split()
            chains.setdefault(words[1], []).append(words[2:])

    def run(chain: str) -> str:
        for words in chains.get(chain, []):
            i, ok, target = 0, True, ""
            negate = False
            while i < len(words):
                w = words[i]
                if w == "!":
                    negate = True
                    i += 1
                    continue
                if w in ("-s", "-d"):
                    ok = ok and _match(w, words[i + 1], negate, src if w == "-s" else dst)
                    i += 2
                elif w == "-m" and words[i + 1] == "conntrack":
                    ok = ok and established
                    i += 4
                elif w == "-m" and words[i + 1] == "set":
                    assert words[i + 2] == "--match-set" and words[i + 4] == "src", words
                    ok = ok and src in plan.sets[words[i + 3]]  # a set the rules name must be planned
                    i += 5
                elif w == "-p":
                    i += 2
                elif w == "-j":
                    target = words[i + 1]
                    i = len(words)
                else:
                    i += 1
                negate = False
            if not ok:
                continue
            if target in ("ACCEPT", "RETURN"):
                return target
            if target == "REJECT":
                return "REJECT"
            verdict = run(target)
            if verdict != "RETURN":
                return verdict
        return "RETURN"

    return run(POLICY_CHAIN)


def layout(seed: int) -> tuple[PolicyInput, dict[str, frozenset[str]]]:
    rng = random.Random(seed)
    nets = ["p2porch", "a", "b", "c", "shop_default"]
    members: dict[str, frozenset[str]] = {}
    for node in (1, 2, 3):
        for host in range(2, 2 + rng.randrange(1, 6)):
            members[f"10.240.{node}.{host}"] = frozenset(rng.sample(nets, rng.randrange(1, 3)))
    return PolicyInput(CLUSTER, LEASE, dict(members), frozenset({"c"})), members


@pytest.mark.parametrize("seed", range(25))
def test_rules_accept_exactly_the_pairs_that_share_a_network(seed: int) -> None:
    spec, members = layout(seed)
    plan = plan_policy(spec)
    local = [a for a in members if a.startswith("10.240.1.")]
    for src, src_nets in members.items():
        for dst in local:
            if src == dst:
                continue
            verdict = evaluate(plan, src, dst)
            expected = "ACCEPT" if may_talk(src_nets, members[dst]) else "REJECT"
            assert verdict == expected, (src, sorted(src_nets), dst, sorted(members[dst]))
            assert evaluate(plan, src, dst, established=True) == "RETURN"


def test_unknown_sources_outside_clients_and_remote_destinations_are_not_policed() -> None:
    spec, members = layout(3)
    plan = plan_policy(spec)
    dst = next(a for a in members if a.startswith("10.240.1."))
    assert evaluate(plan, "10.240.2.0", dst) == "RETURN"  # a peer's VTEP address (host traffic)
    assert evaluate(plan, "10.240.1.250", dst) == "RETURN"  # a task whose address is not committed yet
    assert evaluate(plan, "192.168.9.9", dst) == "RETURN"  # a client of a published port
    src = next(iter(members))
    assert evaluate(plan, src, "10.240.2.77") == "RETURN"  # policed on the node that holds it


def test_a_local_task_the_rules_do_not_know_yet_is_reachable_from_known_tasks() -> None:
    """Another node's VIP/ingress rules may send connections to a task that has just started before this
    node's rewrite names it: those connections must not be refused (zero failed requests on updates)."""
    spec, members = layout(3)
    plan = plan_policy(spec)
    unknown_local = "10.240.1.249"
    assert unknown_local not in members
    for src in members:
        assert evaluate(plan, src, unknown_local) == "RETURN"


def test_tasks_on_internal_networks_only_get_no_egress() -> None:
    addresses = {"10.240.1.2": frozenset({"c"}), "10.240.1.3": frozenset({"c", "a"})}
    plan = plan_policy(PolicyInput(CLUSTER, LEASE, addresses, frozenset({"c"})))
    assert evaluate(plan, "10.240.1.2", "8.8.8.8") == "REJECT"
    assert evaluate(plan, "10.240.1.3", "8.8.8.8") == "RETURN"  # also on a network that is not internal
    assert evaluate(plan, "10.240.1.2", "10.240.1.3") == "ACCEPT"


def test_text_is_deterministic_and_declares_its_chains() -> None:
    spec, _ = layout(7)
    shuffled = PolicyInput(
        spec.cluster_cidr, spec.local_subnet, dict(reversed(spec.addresses.items())), spec.internal_networks
    )
    a, b = plan_policy(spec), plan_policy(shuffled)
    assert a.text == b.text
    assert a.text.startswith("*filter\n") and a.text.endswith("COMMIT\n")
    for chain in a.chains:
        assert f":{chain} - [0:0]" in a.text
    assert a.chains == (POLICY_CHAIN, REJECT_CHAIN)
    assert a.sets == b.sets
    assert all(len(name) <= 31 for name in a.sets)  # ipset's limit


def test_stale_chains_are_those_of_earlier_layouts() -> None:
    spec, _ = layout(1)
    plan = plan_policy(spec)
    old = ["P2P-NETSRC", "P2P-NET-0123456789"]
    assert stale_chains([*plan.chains, *old, "DOCKER-USER", "P2P-INGRESS"], plan) == sorted(old)


def test_a_task_elsewhere_changes_the_sets_only() -> None:
    """An address that comes or goes on another node is a set entry: the rule text stays the same."""
    spec, members = layout(5)
    grown = PolicyInput(
        spec.cluster_cidr,
        spec.local_subnet,
        {**spec.addresses, "10.240.3.200": frozenset({"a", "b"})},
        spec.internal_networks,
    )
    before, after = plan_policy(spec), plan_policy(grown)
    assert after.text == before.text
    assert after.sets[TASKS_SET] == before.sets[TASKS_SET] | {"10.240.3.200"}
    for net in ("a", "b"):
        if network_set(net) in before.sets:
            assert after.sets[network_set(net)] == before.sets[network_set(net)] | {"10.240.3.200"}
    local = [a for a in members if a.startswith("10.240.1.")]
    assert before.rule_count == 5 + len(local) + sum(len(members[a]) for a in local) + sum(
        1 for a in local if members[a] <= spec.internal_networks
    )


def test_a_node_without_local_tasks_plans_no_sets() -> None:
    spec, _ = layout(2)
    elsewhere = PolicyInput(spec.cluster_cidr, "10.240.9.0/24", spec.addresses, spec.internal_networks)
    plan = plan_policy(elsewhere)
    assert plan.sets == {}
    assert "--match-set" not in plan.text


def test_odd_addresses_are_ignored() -> None:
    addresses = {
        "not-an-ip": frozenset({"a"}),
        "8.8.8.8": frozenset({"a"}),  # outside the cluster
        "10.240.3.9": frozenset(),  # no network
        "10.240.1.2": frozenset({"a", "b"}),
    }
    assert valid_addresses(addresses, CLUSTER) == {"10.240.1.2": frozenset({"a", "b"})}
    spec, members = layout(4)
    plan = plan_policy(PolicyInput(CLUSTER, LEASE, {**members, **addresses}, spec.internal_networks))
    assert plan.sets[TASKS_SET] == frozenset(members) | {"10.240.1.2"}
