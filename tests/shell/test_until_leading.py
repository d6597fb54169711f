"""A leader-only loop parks on a follower until the Raft role changes (no periodic wakeups), and goes on
at once on the leader; committed changes keep being drained meanwhile."""

from __future__ import annotations

import trio
import trio.testing

from p2porch.leader.leading import FOLLOWER_COALESCE_S, FOLLOWER_FALLBACK_S, until_leading
from p2porch.model import Node
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryRaft


class CountSteps(trio.abc.Instrument):
    """The steps of the tasks named ``...park``: how often the parked loop ran."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("park"):
            self.steps.append(task.name)


def test_a_follower_parks_until_it_leads_and_a_leader_goes_on_at_once() -> None:
    raft = MemoryRaft(["a:1", "b:1"], leader="b:1")
    follower, leader = raft.store("a:1"), raft.store("b:1")
    counter = CountSteps()
    steps = counter.steps

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

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[counter])


def test_a_burst_of_commits_wakes_a_parked_follower_once_per_window_and_a_role_change_at_once() -> None:
    raft = MemoryRaft(["a:1", "b:1"], leader="b:1")
    follower, leader = raft.store("a:1"), raft.store("b:1")
    counter = CountSteps()
    steps = counter.steps

    async def main() -> None:
        await leader.write(C.InitCluster(at=1.0, cluster_id="c" * 16).encode())
        returned: list[float] = []
        async with follower.subscribe() as changes, trio.open_nursery() as nursery:

            async def park() -> None:
                await until_leading(follower, changes)
                returned.append(trio.current_time())

            nursery.start_soon(park)
            await trio.testing.wait_all_tasks_blocked()
            steps.clear()
            for i in range(100):  # 100 commits over 1 s (a formation's node records, a round's reports)
                node = Node(f"id{i}", f"n{i}", f"10.0.{i // 200}.{i % 200 + 1}", 7947, 7946)
                await leader.write(C.AddNode(at=2.0, node=node).encode())
                await trio.sleep(0.01)
            await trio.testing.wait_all_tasks_blocked()
            # woken about once per window (a wake is a few task steps: its nursery's, the wait's); one
            # wake per commit took >= 100 steps
            assert len(steps) <= 3 * (1.0 / FOLLOWER_COALESCE_S + 2)
            await trio.sleep(FOLLOWER_COALESCE_S)
            assert changes.statistics().current_buffer_used == 0  # drained by the end of the window
            await leader.write(C.AddNode(at=3.0, node=Node("idx", "nx", "10.9.0.1", 7947, 7946)).encode())
            await trio.sleep(0.01)  # within the window that commit opened
            became = trio.current_time()
            raft.set_leader("a:1")
            with trio.fail_after(1):
                while not returned:
                    await trio.sleep(0.001)
        assert returned[0] - became < 0.01  # the role change is seen at once, not after the window

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[counter])
