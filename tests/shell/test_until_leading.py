"""A leader-only loop parks on a follower until the Raft role changes (no periodic wakeups), and goes on
at once on the leader; committed changes keep being drained meanwhile."""

from __future__ import annotations

import trio
import trio.testing

from p2porch.leader.leading import FOLLOWER_FALLBACK_S, until_leading
from p2porch.testing.memstore import MemoryRaft


def test_a_follower_parks_until_it_leads_and_a_leader_goes_on_at_once() -> None:
    raft = MemoryRaft(["a:1", "b:1"], leader="b:1")
    follower, leader = raft.store("a:1"), raft.store("b:1")
    steps: list[str] = []

    class CountSteps(trio.abc.Instrument):
        def before_task_step(self, task: trio.lowlevel.Task) -> None:
            if task.name.endswith("park"):
                steps.append(task.name)

    async def main() -> None:
        async with leader.subscribe() as changes:
            assert await until_leading(leader, changes) is False  # leads: no wait at all
        returned: list[bool] = []
        async with follower.subscribe() as changes, trio.open_nursery() as nursery:

            async def park() -> None:
                returned.append(await until_leading(follower, changes))

            nursery.start_soon(park)
            await trio.sleep(600)  # ten idle minutes of mock time
            await trio.testing.wait_all_tasks_blocked()
            parked_steps = len(steps)
            # parked: woken only by the long fallback (the loops polled every 0.5-2 s: 300-1,200 times)
            assert returned == [] and parked_steps <= 600 / FOLLOWER_FALLBACK_S + 2
            raft.set_leader("a:1")
            with trio.fail_after(1):
                while not returned:
                    await trio.sleep(0.01)
        assert returned == [True]

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[CountSteps()])
