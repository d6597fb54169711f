"""The member context the leader loops' shell tests run on (tests only): node ``n1`` leading over an
in-memory store, the nodes it names alive in gossip, no member answering the join port."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from ..clock import TrioClock
from ..context import LocalBoard, LocalNode, MemberContext
from .memstore import MemoryStore

ADDR = "10.0.0.1:7947"  # n1's Raft address


class AliveGossip:
    """Gossip as the loops read it: ``nodes`` alive, no restart announced (leader/restart_hold.py)."""

    def __init__(self, nodes: Sequence[str]) -> None:
        self.nodes = tuple(nodes)

    def members(self) -> dict[str, Any]:
        return {n: SimpleNamespace(state="alive", incarnation=1, meta={}) for n in self.nodes}


def leader_context(
    store: MemoryStore, clock: TrioClock, alive: Sequence[str] = ("n1", "n2")
) -> MemberContext:
    """n1's context over ``store`` (also its voter control), on ``clock``, ``alive`` in gossip."""
    board = LocalBoard()
    board.gossip = AliveGossip(alive)  # type: ignore[assignment]

    async def ask_member(host: str) -> dict[str, Any] | None:
        return None

    return MemberContext(
        store=store,
        voter_control=store,
        local=LocalNode("n1", "n1", "10.0.0.1", ADDR, "voter", 0, b"k" * 32),
        board=board,
        clock=clock,
        commit_timeout_s=5.0,
        ask_member=ask_member,
    )
