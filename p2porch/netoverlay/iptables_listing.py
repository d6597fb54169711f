"""One table's ``iptables -S`` listing, and the ``iptables-restore --noflush`` text that inserts the
missing p2porch rules and deletes the stale ones (pure).

Owns reading a listing (user-defined chains, each chain's ``-A`` lines in order) and planning
``Firewall.ensure`` from it: a wanted rule is present when its chain holds a rule with its owner
comment (the comment is a digest of the rule's table, chain and spec, ``plan.FirewallRule``); a rule
with a p2porch comment that is not wanted is deleted. One listing per table replaces one ``iptables
-C`` per rule and one ``-S`` per chain; one restore replaces one ``-I``/``-D`` process per rule (issue
19: a member's first pass and every resync spawned ~20-30 iptables processes). It never runs
iptables and never touches a rule without a p2porch comment.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .plan import FIREWALL_COMMENT_PREFIX, FirewallRule

OWNED_PREFIX = "P2P-"  # every chain whose name starts with it belongs to p2porch (removed on leave)


@dataclass(frozen=True)
class Listing:
    """``iptables -t TABLE -S``: the user-defined chains (``-N``) and every chain's rules (``-A`` lines,
    in order; a built-in chain is known by its ``-P`` line)."""

    chains: frozenset[str] = frozenset()
    rules: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Listing:
        chains: set[str] = set()
        rules: dict[str, list[str]] = {}
        for line in text.splitlines():
            words = line.split(maxsplit=2)
            if len(words) < 2:
                continue
            if words[0] == "-N":
                chains.add(words[1])
                rules.setdefault(words[1], [])
            elif words[0] == "-P":
                rules.setdefault(words[1], [])
            elif words[0] == "-A":
                rules.setdefault(words[1], []).append(line)
        return cls(frozenset(chains), rules)

    def with_chain(self, chain: str) -> Listing:
        """This listing with ``chain`` created since (its rules unknown: none listed)."""
        return Listing(self.chains | {chain}, {chain: [], **self.rules})

    def rules_of(self, chain: str) -> list[str] | None:
        """The ``-A`` lines of ``chain`` as ``iptables -S CHAIN`` prints them; None: no such chain."""
        return self.rules.get(chain)


def owned_rules(table: str, listing: Listing, chains: Iterable[str]) -> list[tuple[str, str, str, str]]:
    """(table, chain, comment, ``-S`` line) of every rule with a p2porch comment in ``chains``."""
    out = []
    for chain in chains:
        for line in listing.rules_of(chain) or []:
            words = shlex.split(line)
            if words[:1] != ["-A"] or "--comment" not in words:
                continue
            comment = words[words.index("--comment") + 1]
            if comment.startswith(FIREWALL_COMMENT_PREFIX):
                out.append((table, chain, comment, line))
    return out


@dataclass(frozen=True)
class EnsurePlan:
    """What ``Firewall.ensure`` writes: one restore text (empty: nothing to do) and the changes, in the
    words ``iptables`` would have been called with."""

    text: str
    changes: list[str]


def plan_ensure(
    rules: Sequence[FirewallRule], listings: Mapping[str, Listing], table_chains: Mapping[str, Sequence[str]]
) -> EnsurePlan:
    """Insert each missing rule at the top of its chain, in the order given (a later rule ends above an
    earlier one, as one ``iptables -I CHAIN 1`` each did), create a missing ``P2P-`` chain a rule jumps
    to (``-N``, empty: its owner fills it), and delete p2porch-commented rules of ``table_chains`` that
    are not wanted. ``listings``: one per table of ``rules`` and ``table_chains``."""
    lines: dict[str, list[str]] = {}
    changes: list[str] = []
    created: set[tuple[str, str]] = set()
    for rule in rules:
        listing = listings[rule.table]
        args = rule.argv()
        target = args[args.index("-j") + 1] if "-j" in args else ""
        if (
            target.startswith(OWNED_PREFIX)
            and target not in listing.chains
            and (rule.table, target) not in created
        ):
            # "-N", not a ":" declaration: that would flush a chain created since the listing (the
            # traffic rules' owner fills it); "-N" of a chain that exists fails the whole transaction
            lines.setdefault(rule.table, []).append(f"-N {target}")
            created.add((rule.table, target))
        present = any(
            comment == rule.comment for _, _, comment, _ in owned_rules(rule.table, listing, [rule.chain])
        )
        if not present:
            lines.setdefault(rule.table, []).append(" ".join(["-I", rule.chain, "1", *map(_word, args)]))
            changes.append(f"-t {rule.table} -I {rule.chain} {shlex.join(args)}")
    wanted = {(r.table, r.chain, r.comment) for r in rules}
    for table, chains in table_chains.items():
        for _, chain, comment, line in owned_rules(table, listings[table], chains):
            if (table, chain, comment) not in wanted:
                lines.setdefault(table, []).append(line.replace("-A", "-D", 1))
                changes.append(f"-t {table} {line.replace('-A', '-D', 1)}")
    text = "".join(
        f"*{table}\n" + "".join(f"{ln}\n" for ln in body) + "COMMIT\n" for table, body in lines.items()
    )
    return EnsurePlan(text, changes)


def _word(word: str) -> str:
    """One argument in iptables-restore's syntax (double quotes around whitespace)."""
    return f'"{word}"' if any(c.isspace() for c in word) or not word else word
