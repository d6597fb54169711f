"""What to do next in a voter add/remove, from this node's view of the configuration (pure core).

pysyncobj answers a refused membership change with REQUEST_DENIED for several different reasons: the
voter is already (or no longer) in the configuration, another change is still uncommitted, the new
leader has not committed its no-op yet, or the voter to remove is the leader itself (a leader never
removes itself). The first means done, the next two mean retry, the last can never succeed: retrying
it only burns the whole timeout and ends in a misleading "no answer in time". ``next_step`` tells
these apart before each attempt and after each refusal. It never talks to Raft itself.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

__all__ = ["Step", "next_step"]

Step = Literal["done", "try", "leader"]


def next_step(kind: Literal["add", "remove"], addr: str, voters: Collection[str], leader: str | None) -> Step:
    """``done``: the configuration already is as asked; ``leader``: ``addr`` leads the group, so it
    cannot be removed until leadership has moved; ``try``: propose (again)."""
    present = addr in voters
    if (kind == "add") == present:
        return "done"
    if kind == "remove" and leader == addr:
        return "leader"
    return "try"
