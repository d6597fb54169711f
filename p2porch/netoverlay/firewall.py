"""p2porch's iptables rules and the forwarding sysctl (blocking shell).

Owns running ``iptables`` and ``sysctl`` in the current network namespace or, with ``netns``, in a
named one through ``nsenter --net``. Each rule carries a comment derived from its content
(``p2porch-<digest>``): ``ensure`` inserts missing rules after a ``-C`` check and deletes commented
rules that are no longer wanted (e.g. for an old lease); ``remove`` deletes every p2porch rule. It never
touches a rule without a p2porch comment and must only be called from a worker thread in trio code.
Whole chains p2porch owns (``OWNED_CHAINS``, e.g. the VXLAN allow-list, and every ``P2P-`` chain of the
service traffic rules) are replaced atomically with ``iptables-restore --noflush`` (``restore``) and
flushed and deleted by ``remove``; ``ensure`` creates an owned chain a rule jumps to when it is missing.
The allow-list's members live in an ipset changed over netlink (``allow_set.AllowSet``), which
``remove`` destroys after the chain.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Sequence

from ..errors import OverlayError
from .allow_set import AllowSet
from .iptables_listing import OWNED_PREFIX, Listing, owned_rules, plan_ensure
from .plan import VXLAN_ALLOW_SET, VXLAN_FILTER_CHAIN, FirewallRule, SetDiff, VxlanFilter, diff_members
from .policy_firewall import PolicyFirewall

TABLE_CHAINS = {
    "nat": ("PREROUTING", "OUTPUT", "POSTROUTING"),
    "filter": ("DOCKER-USER", "FORWARD", "INPUT"),
}
OWNED_CHAINS = {"filter": (VXLAN_FILTER_CHAIN,)}


class Firewall:
    """iptables + ip_forward for the overlay in one network namespace (blocking)."""

    def __init__(self, netns: str | None = None, *, iptables: str | None = None) -> None:
        self.netns = netns
        self.iptables = iptables or _program("iptables")
        self.iptables_restore = self.iptables + "-restore"
        self._allow_set: AllowSet | None = None

    def _run(
        self, argv: Sequence[str], *, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        full = list(argv)
        if self.netns:
            full = [_program("nsenter"), f"--net=/var/run/netns/{self.netns}", *full]
        proc = subprocess.run(full, capture_output=True, text=True, check=False, timeout=60, input=stdin)
        if check and proc.returncode != 0:
            raise OverlayError(f"{shlex.join(argv)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def _ipt(self, table: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run([self.iptables, "-w", "-t", table, *args], check=check)

    ipt = _ipt  # public for the network isolation chains (policy_firewall.py)

    def ipset(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ipset`` (the network isolation's address sets, policy_firewall.py)."""
        return self._run([_program("ipset"), *args], check=check, stdin=stdin)

    def enable_forwarding(self) -> None:
        """net.ipv4.ip_forward=1 (left on by remove: dockerd needs it as well)."""
        if self.netns:
            self._run([_program("sysctl"), "-qw", "net.ipv4.ip_forward=1"])
        else:
            with open("/proc/sys/net/ipv4/ip_forward", "w") as handle:
                handle.write("1\n")

    def forward_chain(self, listing: Listing | None = None) -> str:
        """DOCKER-USER when dockerd created it (survives network changes), else FORWARD; ``listing``: the
        filter table's, when the caller has read it (no process)."""
        if listing is not None:
            return "DOCKER-USER" if "DOCKER-USER" in listing.chains else "FORWARD"
        exists = self._ipt("filter", "-S", "DOCKER-USER", check=False).returncode == 0
        return "DOCKER-USER" if exists else "FORWARD"

    def listing(self, table: str) -> Listing:
        """Every chain and rule of ``table`` (one ``iptables -S``)."""
        return Listing.parse(self._ipt(table, "-S").stdout)

    def restore(self, text: str) -> None:
        """Apply ``iptables-restore --noflush`` input in one transaction (chains it declares are replaced)."""
        self._run([self.iptables_restore, "-w", "--noflush"], stdin=text)

    @property
    def allow_set(self) -> AllowSet:
        """The VXLAN allow-list's ipset (its netlink socket and thread opened on first use)."""
        if self._allow_set is None:
            self._allow_set = AllowSet(VXLAN_ALLOW_SET, self.netns)
        return self._allow_set

    def vxlan_filter(
        self, wanted: VxlanFilter, *, known: VxlanFilter | None = None, listing: Listing | None = None
    ) -> tuple[SetDiff, bool]:
        """Make the VXLAN allow-list ``wanted``: the set's members and the static chain that matches on it;
        returns the set's change and whether the chain was (re)written.

        ``known``: the list written last and trusted (between resyncs): only the difference goes to the
        set, over netlink; nothing is read and no process runs. Without it the set is created when
        missing, read and made exact, then the chain is compared (``listing``: the filter table's, when
        the caller read it) and rewritten in one ``iptables-restore`` when it differs."""
        if known is not None and known.set_name == wanted.set_name:
            diff = diff_members(wanted.sources, known.sources)
            self.allow_set.apply(diff)
            return diff, False
        diff = self.allow_set.sync(wanted.sources)  # filled before a new chain matches on it
        if listing is None:
            proc = self._ipt("filter", "-S", wanted.chain, check=False)
            current = proc.stdout.splitlines()[1:] if proc.returncode == 0 else None
        else:
            current = listing.rules_of(wanted.chain) if wanted.chain in listing.chains else None
        if current == wanted.chain_rules():
            return diff, False
        self.restore(wanted.restore_text())
        return diff, True

    def vxlan_members(self, diff: SetDiff) -> None:
        """Apply a difference to the allow-list set, trusted (the chain and the rest of the set as written
        last): one netlink request, nothing read."""
        self.allow_set.apply(diff)

    def close(self) -> None:
        """Close the allow-list set's socket and thread (kernel state stays)."""
        if self._allow_set is not None:
            self._allow_set.close()

    def ensure(self, rules: Sequence[FirewallRule], listings: dict[str, Listing] | None = None) -> list[str]:
        """Insert missing rules at the top of their chain and drop stale p2porch rules; returns changes.

        One listing per table (``listings``: already read by the caller) and one restore when anything
        is missing or stale (``iptables_listing.plan_ensure``), instead of a process per rule."""
        listings = dict(listings or {})
        for table in {*TABLE_CHAINS, *(r.table for r in rules)} - listings.keys():
            listings[table] = self.listing(table)
        plan = plan_ensure(rules, listings, TABLE_CHAINS)
        if plan.text:
            self.restore(plan.text)
        return plan.changes

    def owned(self) -> list[tuple[str, str, str, str]]:
        """(table, chain, comment, ``-S`` line) of every rule with a p2porch comment."""
        return [
            rule
            for table, chains in TABLE_CHAINS.items()
            for rule in owned_rules(table, self.listing(table), chains)
        ]

    def chain_names(self, table: str) -> list[str]:
        """Every user-defined chain of ``table`` (``-N`` lines of ``iptables -S``)."""
        proc = self._ipt(table, "-S", check=False)
        return [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("-N ")]

    def remove(self) -> int:
        """Delete every p2porch rule, chain and set (traffic, the VXLAN allow-list, network isolation);
        returns the rule count."""
        owned = self.owned()
        for table, _, _, line in owned:
            self._delete_line(table, line)
        for table in TABLE_CHAINS:
            chains = [c for c in self.chain_names(table) if c.startswith(OWNED_PREFIX)]
            for chain in chains:  # flush all first: owned chains jump to each other
                self._ipt(table, "-F", chain, check=False)
            for chain in chains:
                self._ipt(table, "-X", chain, check=False)
        try:  # once no rule matches on it
            self.allow_set.destroy()
        except OverlayError:  # no ipset in this kernel: no set of ours can exist
            pass
        finally:
            self.close()
        return len(owned) + PolicyFirewall(self).remove()

    def _delete_line(self, table: str, line: str) -> None:
        words = shlex.split(line)
        self._ipt(table, "-D", *words[1:], check=False)


def _program(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if found is None:
        raise OverlayError(f"{name} is not installed (apt-get install -y iptables ipset util-linux procps)")
    return found
