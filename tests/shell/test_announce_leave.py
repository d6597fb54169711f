"""``announce_leave`` (what ``p2porch leave`` does before it forgets the cluster) never fails or holds up
the leave: no gossip running, a gossip whose leave raises, a gossip whose leave never returns."""

from __future__ import annotations

import trio
import trio.testing

from p2porch.member.gossip import LEAVE_ANNOUNCE_TIMEOUT_S, announce_leave


class Gossip:
    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.calls = 0

    async def leave(self) -> None:
        self.calls += 1
        if self.behaviour == "raise":
            raise OSError("socket closed")
        if self.behaviour == "hang":
            await trio.sleep_forever()


def test_announce_leave_tells_gossip_and_never_fails_the_leave() -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)

    async def main() -> None:
        await announce_leave(None)
        for behaviour in ("ok", "raise", "hang"):
            gossip = Gossip(behaviour)
            start = trio.current_time()
            await announce_leave(gossip)
            assert gossip.calls == 1
            assert trio.current_time() - start <= LEAVE_ANNOUNCE_TIMEOUT_S

    trio.run(main, clock=clock)


def test_announce_restart_publishes_the_hold_and_never_fails_the_stop() -> None:
    """``announce_restart`` (a daemon's graceful stop) sets the restart key of its gossip meta and, like
    the leave, never fails or holds up the stop."""
    from p2porch.member.gossip import announce_restart

    class Announcing(Gossip):
        async def announce(self, key: str, value: object) -> None:
            self.said = (key, value)
            await self.leave()

    async def main() -> None:
        await announce_restart(None, 5)
        for behaviour in ("ok", "raise", "hang"):
            gossip = Announcing(behaviour)
            start = trio.current_time()
            await announce_restart(gossip, 1_800_000_030)
            assert gossip.said == ("r", 1_800_000_030) and gossip.calls == 1
            assert trio.current_time() - start <= LEAVE_ANNOUNCE_TIMEOUT_S

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
