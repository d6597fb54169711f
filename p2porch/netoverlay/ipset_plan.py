"""The ipsets of network isolation: what ``ipset save`` shows and the ``ipset restore`` text that turns
one content into another (pure).

Only sets whose names start with ``p2p-`` are read or written: any other set belongs to someone else.
A set is ``hash:ip`` of IPv4 addresses, sized for a large cluster (``maxelem`` 1,048,576: the kernel's
default of 65,536 is below 100,000 tasks). Changing a set is one line per address that came or went,
so a task starting anywhere in the cluster costs every node one line, not a rewrite of its rules.
Between resyncs a kept plan's :class:`~p2porch.netoverlay.netpolicy.SetEdits` are written as they are
(:func:`edits_text`): no member list is read or compared.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import ipv4
from .netpolicy import SET_PREFIX, SetEdits

SET_TYPE = "hash:ip"
SET_OPTIONS = "family inet hashsize 1024 maxelem 1048576"

Sets = Mapping[str, frozenset[str]]


def parse_save(text: str) -> dict[str, frozenset[str]]:
    """The ``p2p-`` sets and their members from ``ipset save`` output (other sets are skipped)."""
    members: dict[str, set[str]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or not words[1].startswith(SET_PREFIX):
            continue
        if words[0] == "create":
            members.setdefault(words[1], set())
        elif words[0] == "add" and len(words) >= 3:
            members.setdefault(words[1], set()).add(words[2])
    return {name: frozenset(found) for name, found in members.items()}


def restore_text(current: Sets, wanted: Sets) -> str:
    """``ipset restore -exist`` lines that make every set of ``wanted`` hold exactly its members, given the
    kernel's ``current`` sets: a missing set is created and filled, an existing one gets the addresses it
    lacks and loses those it should not hold. Sets not in ``wanted`` are left alone (they are destroyed
    apart, once no rule matches on them). Empty when nothing differs."""
    lines: list[str] = []
    for name in sorted(wanted):
        want = wanted[name]
        have = current.get(name)
        if have is None:
            lines.append(f"create {name} {SET_TYPE} {SET_OPTIONS}")
            have = frozenset()
        elif have == want:
            continue
        lines += (f"add {name} {a}" for a in sorted(want - have, key=ipv4.number))
        lines += (f"del {name} {a}" for a in sorted(have - want, key=ipv4.number))
    return "\n".join(lines) + "\n" if lines else ""


def edits_text(edits: SetEdits) -> str:
    """``ipset restore -exist`` lines that apply ``edits`` to sets holding their predecessor's content: a
    fresh set is created when missing and flushed before its members are added (it may hold an earlier
    content that was never destroyed). Empty when nothing changes."""
    lines: list[str] = []
    for name in sorted(edits.fresh):
        lines += (f"create {name} {SET_TYPE} {SET_OPTIONS}", f"flush {name}")
    for name in sorted(edits.added.keys() | edits.removed.keys()):
        lines += (f"add {name} {a}" for a in sorted(edits.added.get(name, ()), key=ipv4.number))
        lines += (f"del {name} {a}" for a in sorted(edits.removed.get(name, ()), key=ipv4.number))
    return "\n".join(lines) + "\n" if lines else ""
