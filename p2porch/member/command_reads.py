"""Which command versions every member reads, from the committed nodes and this node's gossip (pure core,
thin accessor).

The write gate (``raft/command_gate.py``) needs each member's advertisement: every node recorded in the
state (but those that left) counts, down or never seen alike, with the ``cv`` its gossip meta last
carried here, or none (then it reads only the baseline versions); a member gossip sees alive that the
state does not record yet (a joiner) counts too. Nothing here writes or decides a write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..context import LocalBoard
from ..gossip.messages import command_versions
from ..model import NodeStatus
from ..raft import command_gate
from ..raft import commands as C
from ..raft.state import ClusterState


def advertisements(state: ClusterState, members: Mapping[str, Any]) -> dict[str, dict[str, int] | None]:
    """Node id -> the command versions it advertises (None: none known here). ``members``: gossip's
    ``MemberView`` map (state, meta)."""
    out: dict[str, dict[str, int] | None] = {
        node_id: None for node_id, node in state.nodes.items() if node.status != NodeStatus.LEFT
    }
    for name, member in members.items():
        if name in out or member.state == "alive":
            out[name] = command_versions(member.meta) or None
    return out


def board_readers(snapshot: Callable[[], ClusterState], board: LocalBoard) -> command_gate.Readers:
    """The store's ``command_readers``: the advertisements of the committed ``snapshot()`` and the
    board's gossip at each call (no gossip yet: none known)."""

    def read() -> dict[str, dict[str, int] | None]:
        gossip = board.gossip
        return advertisements(snapshot(), gossip.members() if gossip is not None else {})

    return read


def update_node_hold_behind(state: ClusterState, members: Mapping[str, Any]) -> list[str]:
    """The members that do not read ``update_node`` version 2 (sorted; none: the restart hold may be
    written)."""
    current = command_gate.gate(advertisements(state, members))
    if current.allows(C.UpdateNode.TAG, C.UpdateNode.VERSION):
        return []
    return current.behind(C.UpdateNode.TAG, C.UpdateNode.VERSION)
