"""KeptPolicy (netoverlay/policy_sets.py): after any sequence of address changes its plan equals
``plan_policy`` over the same mapping, and its set edits, written with ``edits_text`` onto the sets of
the previous plan, give exactly the full plan's sets (random sequences, seeded); the firewall writes a
kept plan's edits without reading the kernel's sets (a model of ipset behind a recording runner)."""

from __future__ import annotations

import random
import subprocess

import pytest

from p2porch.netoverlay.ipset_plan import edits_text
from p2porch.netoverlay.iptables_listing import Listing
from p2porch.netoverlay.netpolicy import TASKS_SET, PolicyInput, PolicyPlan, plan_policy
from p2porch.netoverlay.policy_firewall import PolicyFirewall
from p2porch.netoverlay.policy_sets import KeptPolicy

CLUSTER = "10.240.0.0/16"
LEASE = "10.240.1.0/24"
NETS = ["p2porch", "a", "b", "c", "shop_default"]


class IpsetModel:
    """The kernel's ipsets as ``ipset restore -exist`` / ``save`` / ``destroy`` change and show them."""

    def __init__(self) -> None:
        self.sets: dict[str, set[str]] = {}

    def restore(self, text: str) -> None:
        for line in text.splitlines():
            verb, name, *rest = line.split()
            if verb == "create":
                self.sets.setdefault(name, set())
            elif verb == "flush":
                self.sets[name].clear()
            elif verb == "add":
                self.sets[name].add(rest[0])  # a missing set would raise, as ipset fails
            elif verb == "del":
                self.sets[name].discard(rest[0])
            else:
                raise AssertionError(line)

    def save(self) -> str:
        lines = []
        for name, members in self.sets.items():
            lines += [f"create {name} hash:ip family inet", *(f"add {name} {a}" for a in members)]
        return "\n".join(lines)

    def frozen(self) -> dict[str, frozenset[str]]:
        return {name: frozenset(members) for name, members in self.sets.items()}


def _address(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.03:
        return rng.choice(["not-an-ip", "8.8.8.8", "10.241.0.9"])  # ignored: odd or outside the cluster
    node = 1 if roll < 0.35 else rng.randint(2, 4)  # about a third local
    return f"10.240.{node}.{rng.randint(2, 30)}"


def _networks(rng: random.Random) -> frozenset[str]:
    return frozenset(rng.sample(NETS, rng.choice([0, 1, 1, 1, 2, 3])))  # empty: ignored


def _full(addresses: dict[str, frozenset[str]], internal: frozenset[str]) -> PolicyPlan:
    return plan_policy(PolicyInput(CLUSTER, LEASE, dict(addresses), internal))


@pytest.mark.parametrize("seed", range(30))
def test_kept_plans_and_their_edits_equal_the_full_plan(seed: int) -> None:
    rng = random.Random(seed)
    internal = frozenset({"c"}) if seed % 2 else frozenset()
    addresses = {_address(rng): _networks(rng) for _ in range(rng.randint(0, 25))}
    kept = KeptPolicy(CLUSTER, LEASE, internal, addresses)
    plan = kept.plan()
    assert plan == _full(addresses, internal) and plan.edits is None
    kernel = IpsetModel()
    kernel.restore(
        "".join(f"create {n} hash:ip\n" + "".join(f"add {n} {a}\n" for a in m) for n, m in plan.sets.items())
    )
    unchanged = edited = 0
    for _ in range(120):
        changed: dict[str, frozenset[str] | None] = {}
        for _ in range(rng.choice([0, 1, 1, 2, 5])):  # a burst: some addresses come, go or move
            address = rng.choice(list(addresses)) if addresses and rng.random() < 0.6 else _address(rng)
            changed[address] = None if rng.random() < 0.3 else _networks(rng)
        for address, nets in changed.items():
            if nets is None:
                addresses.pop(address, None)
            else:
                addresses[address] = nets
        for address, nets in changed.items():
            kept.set_address(address, nets, addresses)
        previous, plan = plan, kept.plan()
        full = _full(addresses, internal)
        assert plan == full
        if plan is previous:
            unchanged += 1
            continue
        edited += 1
        assert plan.edits is not None and plan.edits.since is previous.sets_token
        with pytest.raises(RuntimeError):
            dict(previous.sets)  # superseded: its members are gone
        kernel.restore(edits_text(plan.edits))
        for name in [n for n in kernel.sets if n not in plan.sets]:
            del kernel.sets[name]  # the firewall destroys a set no rule matches on
        assert kernel.frozen() == dict(full.sets)
    assert unchanged > 5 and edited > 50  # both paths were exercised


def test_a_task_elsewhere_is_one_edit_and_keeps_the_rule_text() -> None:
    addresses = {"10.240.1.2": frozenset({"a"}), "10.240.2.2": frozenset({"a", "b"})}
    kept = KeptPolicy(CLUSTER, LEASE, frozenset(), addresses)
    first = kept.plan()
    addresses["10.240.3.3"] = frozenset({"a"})
    kept.set_address("10.240.3.3", addresses["10.240.3.3"], addresses)
    second = kept.plan()
    assert second.text == first.text
    assert second.edits is not None and second.edits.fresh == frozenset()
    assert edits_text(second.edits).splitlines() == sorted(
        [f"add {TASKS_SET} 10.240.3.3", f"add {next(n for n in second.sets if n != TASKS_SET)} 10.240.3.3"]
    )
    assert kept.plan() is second  # nothing changed since


class ModelRunner:
    """The ``IptablesRunner`` of a kernel whose ipsets are an :class:`IpsetModel`; records processes."""

    def __init__(self) -> None:
        self.ipsets = IpsetModel()
        self.calls: list[str] = []

    def ipset(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        self.calls.append(f"ipset {args[0]}")
        out = ""
        if args[0] == "save":
            out = self.ipsets.save()
        elif args[0] == "restore":
            assert stdin is not None
            self.ipsets.restore(stdin)
        elif args[0] == "destroy":
            del self.ipsets.sets[args[1]]
        return subprocess.CompletedProcess(["ipset"], 0, out, "")

    def ipt(self, table: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(["iptables"], 0, "", "")

    def restore(self, text: str) -> None:
        self.calls.append("iptables-restore")

    def forward_chain(self, listing: Listing | None = None) -> str:
        return "FORWARD"

    def listing(self, table: str) -> Listing:
        return Listing()


@pytest.mark.parametrize("seed", range(6))
def test_the_firewall_writes_kept_edits_without_reading_the_sets(seed: int) -> None:
    rng = random.Random(seed)
    addresses = {f"10.240.{rng.randint(1, 3)}.{i}": _networks(rng) | {"a"} for i in range(2, 40)}
    addresses["10.240.1.250"] = frozenset({"b"})
    runner = ModelRunner()
    runner.ipsets.sets["p2p-n-0123456789"] = {"10.240.9.9"}  # an earlier layout's: destroyed
    runner.ipsets.sets["someone-elses"] = {"1.2.3.4"}  # left alone
    firewall = PolicyFirewall(runner)  # type: ignore[arg-type]
    kept = KeptPolicy(CLUSTER, LEASE, frozenset(), addresses)
    firewall.apply(kept.plan())
    assert runner.calls[0] == "ipset save"  # the first pass reads the kernel
    for step in range(40):
        address = rng.choice(sorted(addresses))
        addresses[address] = _networks(rng) if step % 7 else frozenset()
        kept.set_address(address, addresses[address], addresses)
        runner.calls.clear()
        firewall.apply(kept.plan(), verify=step % 10 == 9)
        if step % 10 != 9:
            assert "ipset save" not in runner.calls  # the edits only
        full = _full({a: n for a, n in addresses.items() if n}, frozenset())
        assert {n: m for n, m in runner.ipsets.frozen().items() if n.startswith("p2p-")} == dict(full.sets)
    assert runner.ipsets.sets["someone-elses"] == {"1.2.3.4"}
    runner.ipsets.sets[TASKS_SET].clear()  # emptied by hand: the resync refills it
    plan = kept.plan()
    written = [f"wrote {len(plan.sets[TASKS_SET])} set entries"]
    assert [c for c in firewall.apply(plan) if "set" in c] == []  # trusted between resyncs
    assert [c for c in firewall.apply(plan, verify=True) if "set" in c] == written


class FailingRestoreRunner(ModelRunner):
    """A :class:`ModelRunner` whose next ``ipset restore`` fails (as a process exiting non-zero raises)."""

    fail_next = False

    def ipset(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if args[0] == "restore" and self.fail_next:
            self.fail_next = False
            self.calls.append("ipset restore (failed)")
            raise subprocess.CalledProcessError(1, ["ipset", "restore"])
        return super().ipset(*args, stdin=stdin, check=check)


def test_the_firewall_reads_the_kernels_sets_exactly_when_it_does_not_know_them() -> None:
    addresses = {"10.240.1.2": frozenset({"a"}), "10.240.2.2": frozenset({"a", "b"})}
    runner = FailingRestoreRunner()
    firewall = PolicyFirewall(runner)  # type: ignore[arg-type]

    def sets_pass(plan: PolicyPlan, verify: bool = False) -> list[str]:
        runner.calls.clear()
        firewall.apply(plan, verify=verify)
        assert runner.ipsets.frozen() == dict(plan.sets)  # the kernel is right
        return [c for c in runner.calls if c.startswith("ipset") and c != "ipset destroy"]

    full = _full(addresses, frozenset())  # a plan of no kept policy: its content is kept after the write
    assert sets_pass(full) == ["ipset save", "ipset restore"]  # the first pass reads the kernel
    assert sets_pass(full) == []  # known and right: nothing read, nothing written
    assert sets_pass(full, verify=True) == ["ipset save"]  # the resync reads it again
    kept = KeptPolicy(CLUSTER, LEASE, frozenset(), addresses)
    assert sets_pass(kept.plan()) == []  # the content written last, kept: right already
    addresses["10.240.3.3"] = frozenset({"a"})
    kept.set_address("10.240.3.3", addresses["10.240.3.3"], addresses)
    assert sets_pass(kept.plan()) == ["ipset restore"]  # the kept plan's edits only
    full = _full(addresses, frozenset())
    assert sets_pass(full) == ["ipset save"]  # no content kept after edits: read (then right already)
    del addresses["10.240.3.3"]
    runner.fail_next = True
    with pytest.raises(subprocess.CalledProcessError):
        firewall.apply(_full(addresses, frozenset()))
    # unknown after a failure: read, then written
    assert sets_pass(_full(addresses, frozenset())) == ["ipset save", "ipset restore"]


class FilterRunner(ModelRunner):
    """``ModelRunner`` with a filter table as ``iptables -S`` prints it; records restores and iptables
    processes."""

    def __init__(self, filter_text: str) -> None:
        super().__init__()
        self.filter_text = filter_text
        self.restores: list[str] = []

    def ipt(self, table: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        self.calls.append("iptables " + " ".join(args))
        return subprocess.CompletedProcess(["iptables"], 0, "", "")

    def restore(self, text: str) -> None:
        super().restore(text)
        self.restores.append(text)

    def forward_chain(self, listing: Listing | None = None) -> str:
        return "DOCKER-USER"

    def listing(self, table: str) -> Listing:
        return Listing.parse(self.filter_text)


JUMP = "-I DOCKER-USER 1 -m comment --comment p2pnet-policy -j P2P-NETPOL"


def test_a_first_pass_puts_the_jump_in_the_chains_restore() -> None:
    # issue 19: a joiner's first pass ran an `iptables -I` of its own for the jump
    runner = FilterRunner("-P FORWARD DROP\n-N DOCKER-USER\n-A DOCKER-USER -i p2p-vx0 -j ACCEPT\n")
    changes = PolicyFirewall(runner).apply(_full({"10.240.1.2": frozenset({"a"})}, frozenset()))  # type: ignore[arg-type]
    assert [c for c in runner.calls if c.startswith("iptables")] == ["iptables-restore"]
    text = runner.restores[0]
    assert text.index(":P2P-NETPOL - [0:0]") < text.index(JUMP) < text.rindex("COMMIT")
    assert "jump to P2P-NETPOL first in DOCKER-USER" in changes


def test_a_jump_of_ours_elsewhere_is_moved_by_its_own_processes() -> None:
    # a jump below another rule: deleted, then inserted first (a jump in the restore would be deleted
    # by the `-D`, which removes the first rule that matches)
    runner = FilterRunner(
        "-P FORWARD DROP\n-N DOCKER-USER\n-A DOCKER-USER -i p2p-vx0 -j ACCEPT\n"
        "-A DOCKER-USER -m comment --comment p2pnet-policy -j P2P-NETPOL\n"
    )
    PolicyFirewall(runner).apply(_full({"10.240.1.2": frozenset({"a"})}, frozenset()))  # type: ignore[arg-type]
    assert JUMP not in runner.restores[0]
    assert [c for c in runner.calls if c.startswith("iptables ")] == [
        "iptables -D DOCKER-USER -m comment --comment p2pnet-policy -j P2P-NETPOL",
        "iptables " + JUMP.replace("-I ", "-I ", 1),
    ]
