"""Applies a network isolation plan to the kernel (blocking shell; call from a worker thread).

Owns the ``P2P-NETPOL``/``P2P-NETREJ`` chains, the one jump to them at the top of the forward chain and
the ``p2p-`` ipsets the rules match on. ``apply`` first makes the planned sets hold exactly their members
(one ``ipset restore`` of the differences; the kernel's sets are read on the first pass and when asked to
verify, otherwise the last written content is trusted; a kept plan whose edits start from the content last
written has just those edits written, O(changed addresses)), then compares what one ``iptables -S`` of the
filter table shows with the plan and rewrites the chains in one ``iptables-restore --noflush`` transaction
only when they differ, deletes ``P2P-NET*`` chains no longer planned (an earlier layout's), keeps the jump
the first rule of the chain (inserted by that same restore when no jump of ours is anywhere), and
destroys the sets no rule matches on any more (a restarted daemon's first pass repairs whatever a crash
left). ``remove`` deletes the jump, every chain and every set. It never touches other rules or sets.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterable
from typing import Protocol

from ..errors import OverlayError
from .ipset_plan import edits_text, parse_save, restore_text
from .iptables_listing import Listing
from .netpolicy import (
    CHAIN_PREFIX,
    JUMP_COMMENT,
    POLICY_CHAIN,
    SET_PREFIX,
    PolicyPlan,
    jump_rule,
    stale_chains,
)


class IptablesRunner(Protocol):
    """What this module needs of :class:`p2porch.netoverlay.firewall.Firewall`."""

    def ipt(self, table: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]: ...

    def ipset(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]: ...

    def restore(self, text: str) -> None: ...

    def forward_chain(self, listing: Listing | None = None) -> str: ...

    def listing(self, table: str) -> Listing: ...


class PolicyFirewall:
    """The isolation chains and sets of one network namespace; remembers the sets it last wrote."""

    def __init__(self, firewall: IptablesRunner) -> None:
        self.fw = firewall
        self._sets: dict[str, frozenset[str]] | None = None  # the kernel's p2p- sets, as last read or written
        self._names: set[str] | None = None  # the kernel's p2p- set names (None: not known)
        self._token: object | None = None  # the ``sets_token`` of the kept plan whose sets were written last

    def _ipt(self, *args: str, check: bool = True) -> str:
        return self.fw.ipt("filter", *args, check=check).stdout

    def _chains(self) -> list[str]:
        return [
            line.split()[1]
            for line in self._ipt("-S").splitlines()
            if line.startswith("-N ") and line.split()[1].startswith(CHAIN_PREFIX)
        ]

    def _rules_of(self, chain: str) -> list[str] | None:
        proc = self.fw.ipt("filter", "-S", chain, check=False)
        if proc.returncode != 0:
            return None
        return [line for line in proc.stdout.splitlines() if line.startswith("-A ")]

    def _kernel_sets(self) -> dict[str, frozenset[str]]:
        return parse_save(self.fw.ipset("save").stdout)

    def apply(self, plan: PolicyPlan, *, verify: bool = False) -> list[str]:
        """Make the kernel match ``plan``; returns what changed (empty: it already did). ``verify``: read
        the kernel's sets instead of trusting what this object wrote last (the periodic resync). Reads the
        filter table once (``iptables -S``: every chain compared, the stale ones and the jump found in
        it); a pass that finds the kernel right runs one process (two when verifying)."""
        changes = self._write_sets(plan, verify)
        listing = self.fw.listing("filter")
        jump_written = False
        if any(listing.rules_of(c) != plan.chain_lines(c) for c in plan.chains):
            # replaces the planned chains only: the rest of the listing holds; a missing jump with no
            # other jump of ours anywhere goes in the same restore (issue 19: a node's first pass ran
            # one more process for it)
            jump = self._jump_line(listing)
            jump_written = jump is not None
            self.fw.restore(with_line(plan.text, jump) if jump is not None else plan.text)
            changes.append(f"rewrote {len(plan.chains)} chains ({plan.rule_count} rules)")
        listed = [c for c in listing.chains if c.startswith(CHAIN_PREFIX)]
        for chain in stale_chains(listed, plan):
            self._ipt("-F", chain, check=False)
            self._ipt("-X", chain, check=False)
            changes.append(f"deleted chain {chain}")
        if jump_written:
            changes.append(f"jump to {POLICY_CHAIN} first in {self.fw.forward_chain(listing)}")
        else:
            changes += self._ensure_jump_first(listing)
        planned = set(plan.sets)
        changes += self._destroy_sets(name for name in self._known_names() if name not in planned)
        return changes

    def _known_names(self) -> set[str]:
        if self._names is None:
            self._sets = self._kernel_sets()
            self._names = set(self._sets)
        return self._names

    def _write_sets(self, plan: PolicyPlan, verify: bool) -> list[str]:
        edits = plan.edits
        if verify:
            self._sets = self._names = self._token = None
        if self._token is not None and plan.sets_token is self._token:
            return []  # this very kept plan's sets were written last (trusted between resyncs)
        if edits is not None and self._token is not None and edits.since is self._token:
            text = edits_text(edits)  # the kept plan's changes since the content written last
            self._write(text, plan)
            self._sets = None  # the member lists are not kept on this path
            self._known_names().update(edits.fresh)
            return [f"wrote {text.count(chr(10))} set entries"] if text else []
        # the content last written or read; else (not known, or superseded by edits) the kernel's
        current = self._sets if self._sets is not None else self._kernel_sets()
        wanted = dict(plan.sets)
        text = restore_text(current, wanted)
        self._write(text, plan)
        self._names = set(current) | set(wanted)
        self._sets = {**current, **wanted} if plan.sets_token is None else None  # a kept plan moves on
        return [f"wrote {text.count(chr(10))} set entries"] if text else []

    def _write(self, text: str, plan: PolicyPlan) -> None:
        if text:
            try:
                self.fw.ipset("restore", "-exist", stdin=text)
            except Exception:
                self._sets = self._names = self._token = None  # unknown now: read the kernel next pass
                raise
        self._token = plan.sets_token

    def _destroy_sets(self, names: Iterable[str]) -> list[str]:
        changes = []
        for name in sorted(names):
            if self.fw.ipset("destroy", name, check=False).returncode == 0:
                changes.append(f"destroyed set {name}")
            if self._sets is not None:
                self._sets.pop(name, None)
            if self._names is not None:
                self._names.discard(name)
        return changes

    def _jump_line(self, listing: Listing) -> str | None:
        """The restore line that puts the jump first (None: it is first already, or a jump of ours is
        elsewhere and must be deleted before, by ``_ensure_jump_first``)."""
        forward = self.fw.forward_chain(listing)
        lines = listing.rules_of(forward) or []
        if lines and shlex.split(lines[0])[1:] == jump_rule(forward):
            return None
        for chain in ("DOCKER-USER", "FORWARD"):
            if any(f"--comment {JUMP_COMMENT}" in line for line in listing.rules_of(chain) or []):
                return None
        return shlex.join(["-I", forward, "1", *jump_rule(forward)[1:]])

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
        """Delete the jump, every isolation chain and set; returns how many chains and sets were deleted."""
        for chain in ("DOCKER-USER", "FORWARD"):
            for line in self._rules_of(chain) or []:
                if f"--comment {JUMP_COMMENT}" in line:
                    self._ipt("-D", *shlex.split(line)[1:], check=False)
        chains = self._chains()
        for chain in chains:  # flush all first: the policy chain references the others
            self._ipt("-F", chain, check=False)
        for chain in chains:
            self._ipt("-X", chain, check=False)
        self._sets = self._names = self._token = None
        try:
            listed = self.fw.ipset("list", "-n", check=False).stdout.split()
        except OverlayError:  # ipset not installed: no set of ours can exist
            return len(chains)
        return len(chains) + len(self._destroy_sets(n for n in listed if n.startswith(SET_PREFIX)))


def with_line(text: str, line: str) -> str:
    """``text`` (one table's restore text) with ``line`` before its ``COMMIT``."""
    head, commit, tail = text.rpartition("COMMIT\n")
    if not commit:
        raise ValueError("a restore text without COMMIT")
    return f"{head}{line}\n{commit}{tail}"
