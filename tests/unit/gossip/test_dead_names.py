"""``Swim.dead_names`` (what ``LocalBoard.unreachable_nodes`` reads on every overlay and traffic pass) is
``members()`` filtered to the dead, without building the member list while none is dead; ``gone_names``
(the ingress/VIP view's) to the dead and left."""

from __future__ import annotations

import random

from p2porch.context import LocalBoard
from p2porch.gossip.config import GossipConfig
from p2porch.gossip.membership import Member
from p2porch.gossip.messages import ALIVE, DEAD, LEFT, SUSPECT
from p2porch.gossip.swim import Swim


def dead_in_members(core: Swim) -> set[str]:
    return {name for name, view in core.members().items() if view.state == "dead"}


def test_dead_names_follow_every_state_change_and_the_reaper() -> None:
    rng = random.Random(7)
    core = Swim(GossipConfig(), "n0", "10.0.0.1:7946", {}, rng, 0.0)
    members = [Member(f"n{i}", f"10.0.0.{i + 1}:7946", 0, ALIVE, {}, 0.0) for i in range(1, 30)]
    for member in members:
        core.table.add(member)
    board = LocalBoard()
    board.gossip = core  # type: ignore[assignment]  # the handle's dead_names is the core's
    assert core.dead_names() == set() == board.unreachable_nodes()
    now, seen_dead, seen_left = 0.0, 0, 0
    for _ in range(300):
        now += 1.0
        member = rng.choice(members)
        if member.name in core.table.by_name:
            core.table.set_state(member, rng.choice([ALIVE, SUSPECT, DEAD, LEFT]), now)
        if rng.random() < 0.05:
            core.table.reap(now, 20.0)
        assert core.dead_names() == dead_in_members(core) == board.unreachable_nodes()
        gone = {name for name, view in core.members().items() if view.state in ("dead", "left")}
        assert core.gone_names() == gone == board.gone_nodes()  # the ingress/VIP view's (member/held.py)
        seen_left += bool(gone - core.dead_names())
        seen_dead += bool(core.dead_names())
    assert seen_dead > 50 and seen_left > 50  # the walk did reach dead and left members
