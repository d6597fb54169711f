"""Applies a network isolation plan to the kernel (blocking shell; call from a worker thread).

Owns the ``P2P-NETPOL``/``P2P-NETREJ``/``P2P-NET-*`` chains and the one jump to them at the top of the
forward chain. ``apply`` compares what one ``iptables -S`` of the filter table shows with the plan and
rewrites the chains in one ``iptables-restore --noflush`` transaction only when they differ, deletes
per-network chains no longer planned, and keeps the jump the first rule of the chain (a restarted
daemon's first pass repairs whatever a crash left). ``remove`` deletes the jump and every chain. It
never touches other rules.
"""

from __future__ import annotations

import shlex
import subprocess
from typing import Protocol

from .iptables_listing import Listing
from .netpolicy import (
    JUMP_COMMENT,
    NETWORK_CHAIN_PREFIX,
    POLICY_CHAIN,
    REJECT_CHAIN,
    SOURCES_CHAIN,
    PolicyPlan,
    jump_rule,
    stale_chains,
)


class IptablesRunner(Protocol):
    """What this module needs of :class:`p2porch.netoverlay.firewall.Firewall`."""

    def ipt(self, table: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]: ...

    def restore(self, text: str) -> None: ...

    def forward_chain(self, listing: Listing | None = None) -> str: ...

    def listing(self, table: str) -> Listing: ...


class PolicyFirewall:
    """The isolation chains of one network namespace."""

    def __init__(self, firewall: IptablesRunner) -> None:
        self.fw = firewall

    def _ipt(self, *args: str, check: bool = True) -> str:
        return self.fw.ipt("filter", *args, check=check).stdout

    def _chains(self) -> list[str]:
        return [
            line.split()[1]
            for line in self._ipt("-S").splitlines()
            if line.startswith("-N ") and line.split()[1].startswith(("P2P-NET",))
        ]

    def _rules_of(self, chain: str) -> list[str] | None:
        proc = self.fw.ipt("filter", "-S", chain, check=False)
        if proc.returncode != 0:
            return None
        return [line for line in proc.stdout.splitlines() if line.startswith("-A ")]

    def apply(self, plan: PolicyPlan) -> list[str]:
        """Make the kernel match ``plan``; returns what changed (empty: it already did). Reads the filter
        table once (``iptables -S``: every chain compared, the stale ones and the jump found in it);
        a pass that finds the kernel right runs one process (issue 19: one per chain before)."""
        changes: list[str] = []
        listing = self.fw.listing("filter")
        if any(listing.rules_of(c) != plan.chain_lines(c) for c in plan.chains):
            self.fw.restore(plan.text)  # replaces the planned chains only: the rest of the listing holds
            changes.append(f"rewrote {len(plan.chains)} chains ({plan.rule_count} rules)")
        listed = [c for c in listing.chains if c.startswith("P2P-NET")]
        for chain in stale_chains(listed, plan):
            self._ipt("-F", chain, check=False)
            self._ipt("-X", chain, check=False)
            changes.append(f"deleted chain {chain}")
        changes += self._ensure_jump_first(listing)
        return changes

    def _ensure_jump_first(self, listing: Listing) -> list[str]:
        forward = self.fw.forward_chain(listing)
        wanted = jump_rule(forward)
        lines = listing.rules_of(forward) or []
        if lines and shlex.split(lines[0])[1:] == wanted:
            return []
        changes = []
        for chain in ("DOCKER-USER", "FORWARD"):  # a jump left elsewhere (dockerd came up since)
            for line in listing.rules_of(chain) or []:
                if f"--comment {JUMP_COMMENT}" in line:
                    self._ipt("-D", *shlex.split(line)[1:], check=False)
        self._ipt("-I", forward, "1", *wanted[1:])
        changes.append(f"jump to {POLICY_CHAIN} first in {forward}")
        return changes

    def remove(self) -> int:
        """Delete the jump and every isolation chain; returns how many chains were deleted."""
        for chain in ("DOCKER-USER", "FORWARD"):
            for line in self._rules_of(chain) or []:
                if f"--comment {JUMP_COMMENT}" in line:
                    self._ipt("-D", *shlex.split(line)[1:], check=False)
        chains = [
            c
            for c in self._chains()
            if c in (POLICY_CHAIN, SOURCES_CHAIN, REJECT_CHAIN) or c.startswith(NETWORK_CHAIN_PREFIX)
        ]
        for chain in chains:  # flush all first: the policy chain references the others
            self._ipt("-F", chain, check=False)
        for chain in chains:
            self._ipt("-X", chain, check=False)
        return len(chains)
