"""One table's ``iptables -S`` listing and the restore text of ``Firewall.ensure`` (pure), and the
isolation chains applied from one listing (``PolicyFirewall`` against a recording runner)."""

from __future__ import annotations

import subprocess

from p2porch.netoverlay.iptables_listing import Listing, owned_rules, plan_ensure
from p2porch.netoverlay.netpolicy import PolicyInput, PolicyPlan, jump_rule, plan_policy
from p2porch.netoverlay.plan import FirewallRule
from p2porch.netoverlay.policy_firewall import PolicyFirewall

TABLE_CHAINS = {"nat": ("PREROUTING", "POSTROUTING"), "filter": ("DOCKER-USER", "INPUT")}

MASQ = FirewallRule(
    "nat", "POSTROUTING", ("-s", "10.240.1.0/24", "!", "-d", "10.240.0.0/16", "-j", "MASQUERADE")
)
SERVICES = FirewallRule("nat", "PREROUTING", ("-j", "P2P-SERVICES"))
ACCEPT_IN = FirewallRule("filter", "DOCKER-USER", ("-i", "p2p-vx0", "-o", "p2p-br0", "-j", "ACCEPT"))
ACCEPT_OUT = FirewallRule("filter", "DOCKER-USER", ("-i", "p2p-br0", "-o", "p2p-vx0", "-j", "ACCEPT"))
VXLAN = FirewallRule("filter", "INPUT", ("-p", "udp", "--dport", "4789", "-j", "P2P-VXLAN"))


def kernel_line(rule: FirewallRule) -> str:
    """The rule as ``iptables -S`` prints it (a match module named, as the kernel does for -p udp)."""
    args = rule.argv()
    if "--dport" in args:
        at = args.index("--dport")
        args = [*args[:at], "-m", "udp", *args[at:]]
    return " ".join(["-A", rule.chain, *args])


FILTER = "\n".join(
    [
        "-P INPUT ACCEPT",
        "-P FORWARD DROP",
        "-N DOCKER-USER",
        "-N P2P-VXLAN",
        "-A FORWARD -j DOCKER-USER",
        kernel_line(ACCEPT_IN),
        "-A DOCKER-USER -j RETURN",
        kernel_line(VXLAN),
        "-A P2P-VXLAN -s 10.9.0.2/32 -j ACCEPT",
        "-A P2P-VXLAN -j DROP",
    ]
)
NAT = "\n".join(["-P PREROUTING ACCEPT", "-P POSTROUTING ACCEPT", "-N DOCKER", "-A POSTROUTING -j DOCKER"])


def test_a_listing_holds_chains_and_their_rules_in_order() -> None:
    listing = Listing.parse(FILTER)
    assert listing.chains == {"DOCKER-USER", "P2P-VXLAN"}
    assert listing.rules_of("P2P-VXLAN") == ["-A P2P-VXLAN -s 10.9.0.2/32 -j ACCEPT", "-A P2P-VXLAN -j DROP"]
    assert listing.rules_of("DOCKER-USER") == [kernel_line(ACCEPT_IN), "-A DOCKER-USER -j RETURN"]
    assert listing.rules_of("INPUT") == [kernel_line(VXLAN)]  # a built-in chain, known by its policy
    assert listing.rules_of("P2P-NETPOL") is None  # no such chain
    assert Listing.parse("-P OUTPUT ACCEPT").rules_of("OUTPUT") == []
    created = listing.with_chain("P2P-SERVICES")
    assert "P2P-SERVICES" in created.chains and created.rules_of("P2P-SERVICES") == []
    assert created.rules_of("P2P-VXLAN") == listing.rules_of("P2P-VXLAN")


def test_owned_rules_are_the_p2porch_commented_ones() -> None:
    listing = Listing.parse(FILTER)
    owned = owned_rules("filter", listing, ["DOCKER-USER", "INPUT", "FORWARD"])
    assert [(c, comment) for _, c, comment, _ in owned] == [
        ("DOCKER-USER", ACCEPT_IN.comment),
        ("INPUT", VXLAN.comment),
    ]


def test_missing_rules_are_inserted_in_one_restore_in_the_order_given() -> None:
    listings = {"filter": Listing.parse(FILTER), "nat": Listing.parse(NAT)}
    plan = plan_ensure([MASQ, SERVICES, ACCEPT_IN, ACCEPT_OUT, VXLAN], listings, TABLE_CHAINS)
    # present ones (ACCEPT_IN, VXLAN: the kernel's wording differs from ours, the comment matches) stay
    assert plan.text == (
        "*nat\n"
        f"-I POSTROUTING 1 {' '.join(MASQ.argv())}\n"
        "-N P2P-SERVICES\n"  # a chain a rule jumps to is created (its owner fills it)
        f"-I PREROUTING 1 {' '.join(SERVICES.argv())}\n"
        "COMMIT\n"
        "*filter\n"
        f"-I DOCKER-USER 1 {' '.join(ACCEPT_OUT.argv())}\n"
        "COMMIT\n"
    )
    assert plan.changes == [
        "-t nat -I POSTROUTING -s 10.240.1.0/24 '!' -d 10.240.0.0/16 -m comment --comment "
        f"{MASQ.comment} -j MASQUERADE",
        f"-t nat -I PREROUTING -m comment --comment {SERVICES.comment} -j P2P-SERVICES",
        f"-t filter -I DOCKER-USER -i p2p-br0 -o p2p-vx0 -m comment --comment {ACCEPT_OUT.comment} -j ACCEPT",
    ]


def test_nothing_is_written_when_every_rule_is_there() -> None:
    listings = {"filter": Listing.parse(FILTER), "nat": Listing.parse(NAT)}
    plan = plan_ensure([ACCEPT_IN, VXLAN], listings, TABLE_CHAINS)
    assert plan.text == "" and plan.changes == []


def test_stale_p2porch_rules_are_deleted_and_others_are_left_alone() -> None:
    old = FirewallRule("filter", "DOCKER-USER", ("-i", "p2p-vx0", "-o", "p2p-br9", "-j", "ACCEPT"))
    filter_text = FILTER + "\n" + kernel_line(old) + "\n-A INPUT -m comment --comment someone-else -j ACCEPT"
    listings = {"filter": Listing.parse(filter_text), "nat": Listing.parse(NAT)}
    plan = plan_ensure([ACCEPT_IN, VXLAN], listings, TABLE_CHAINS)
    delete = kernel_line(old).replace("-A", "-D", 1)
    assert plan.text == f"*filter\n{delete}\nCOMMIT\n"
    assert plan.changes == [f"-t filter {delete}"]


def test_a_word_with_spaces_is_quoted_for_restore() -> None:
    rule = FirewallRule("filter", "INPUT", ("-m", "string", "--string", "a b", "-j", "DROP"))
    plan = plan_ensure([rule], {"filter": Listing(), "nat": Listing()}, {})
    assert '--string "a b"' in plan.text


class RecordingRunner:
    """The ``IptablesRunner`` of a kernel that lists ``filter``; records every process it would run."""

    def __init__(self, filter_text: str, sets_text: str = "") -> None:
        self.filter_text = filter_text
        self.sets_text = sets_text  # what ``ipset save`` prints
        self.calls: list[tuple[str, ...]] = []

    def ipset(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append(("ipset", *args))
        return subprocess.CompletedProcess(["ipset"], 0, self.sets_text if args == ("save",) else "", "")

    def ipt(self, table: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        self.calls.append((table, *args))
        return subprocess.CompletedProcess(["iptables"], 0, "", "")

    def restore(self, text: str) -> None:
        self.calls.append(("restore",))

    def forward_chain(self, listing: Listing | None = None) -> str:
        assert listing is not None, "a process per call: the listing is passed"
        return "DOCKER-USER" if "DOCKER-USER" in listing.chains else "FORWARD"

    def listing(self, table: str) -> Listing:
        self.calls.append(("listing", table))
        return Listing.parse(self.filter_text)


def _plan_and_kernel() -> tuple[PolicyPlan, str, str]:
    """A plan, the filter table and the ``ipset save`` of a kernel that already matches it."""
    addresses = {"10.240.1.5": frozenset({"web"}), "10.240.2.7": frozenset({"web"})}
    plan = plan_policy(PolicyInput("10.240.0.0/16", "10.240.1.0/24", addresses))
    jump = " ".join(["-A", *jump_rule("DOCKER-USER")])
    chains = [f"-N {c}" for c in plan.chains]
    rules = [line for c in plan.chains for line in plan.chain_lines(c)]
    sets = [
        line
        for name, members in plan.sets.items()
        for line in [f"create {name} hash:ip family inet", *(f"add {name} {a}" for a in members)]
    ]
    return plan, "\n".join(["-P FORWARD DROP", "-N DOCKER-USER", *chains, jump, *rules]), "\n".join(sets)


def test_a_policy_pass_that_finds_the_kernel_right_runs_one_process() -> None:
    plan, kernel, sets = _plan_and_kernel()
    runner = RecordingRunner(kernel, sets)
    firewall = PolicyFirewall(runner)  # type: ignore[arg-type]
    assert firewall.apply(plan) == []
    assert runner.calls == [("ipset", "save"), ("listing", "filter")]  # the first pass reads the sets
    runner.calls.clear()
    assert firewall.apply(plan) == []
    assert runner.calls == [("listing", "filter")]  # later passes trust what they wrote
    runner.calls.clear()
    assert firewall.apply(plan, verify=True) == []
    assert runner.calls == [("ipset", "save"), ("listing", "filter")]  # the resync reads them again


def test_a_policy_pass_rewrites_differing_chains_and_deletes_stale_ones_from_the_same_listing() -> None:
    plan, kernel, sets = _plan_and_kernel()
    accept = next(line for line in kernel.splitlines() if line.endswith("src -j ACCEPT"))
    changed = (
        kernel.replace(accept, accept.replace(" -j ", " -p tcp -j "))
        + "\n-N P2P-NET-0123456789\n-N P2P-NETSRC"
    )
    stale_set = "create p2p-n-0123456789 hash:ip family inet\nadd p2p-n-0123456789 10.240.3.3"
    runner = RecordingRunner(changed, sets + "\ncreate someone-elses hash:ip\n" + stale_set)
    done = PolicyFirewall(runner).apply(plan)  # type: ignore[arg-type]
    assert done[0].startswith("rewrote ")
    assert done[1:] == [
        "deleted chain P2P-NET-0123456789",
        "deleted chain P2P-NETSRC",
        "destroyed set p2p-n-0123456789",
    ]
    assert runner.calls == [
        ("ipset", "save"),
        ("listing", "filter"),
        ("restore",),
        ("filter", "-F", "P2P-NET-0123456789"),
        ("filter", "-X", "P2P-NET-0123456789"),
        ("filter", "-F", "P2P-NETSRC"),
        ("filter", "-X", "P2P-NETSRC"),
        ("ipset", "destroy", "p2p-n-0123456789"),  # after the rules no longer match on it
    ]


def test_a_policy_pass_writes_only_the_set_entries_that_differ() -> None:
    plan, kernel, sets = _plan_and_kernel()
    gone = next(line for line in sets.splitlines() if line.startswith("add p2p-tasks "))
    runner = RecordingRunner(kernel, sets.replace(gone, "add p2p-tasks 10.240.9.9"))
    firewall = PolicyFirewall(runner)  # type: ignore[arg-type]
    assert firewall.apply(plan) == ["wrote 2 set entries"]
    assert runner.calls[:2] == [("ipset", "save"), ("ipset", "restore", "-exist")]


def test_a_policy_pass_puts_the_jump_first_when_it_is_not() -> None:
    plan, kernel, sets = _plan_and_kernel()
    jump = " ".join(["-A", *jump_rule("DOCKER-USER")])
    moved = kernel.replace(jump, "-A DOCKER-USER -j RETURN") + "\n" + jump
    runner = RecordingRunner(moved, sets)
    assert PolicyFirewall(runner).apply(plan) == ["jump to P2P-NETPOL first in DOCKER-USER"]  # type: ignore[arg-type]
    assert runner.calls[1] == ("listing", "filter")
    assert runner.calls[2] == ("filter", "-D", *jump_rule("DOCKER-USER"))
    assert runner.calls[3] == ("filter", "-I", "DOCKER-USER", "1", *jump_rule("DOCKER-USER")[1:])
