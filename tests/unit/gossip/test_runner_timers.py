"""The gossip runner's timer task wakes only when a SWIM timer is due (MockClock, a stand-in peer).

An answered probe's timeout is dropped by the core at the ack; the runner's sleep must follow the core's
next deadline, later as well as earlier, or it wakes at the dropped timeout with nothing to do (one
wakeup per probe round on every node, issue 19).
"""

from __future__ import annotations

import random
from typing import Any

import trio
import trio.testing

from p2porch.gossip.config import GossipConfig
from p2porch.gossip.keyring import Keyring
from p2porch.gossip.messages import Ack, Alive, Ping
from p2porch.gossip.runner import _Runner
from p2porch.gossip.swim import Swim

SECRET = b"cluster-secret-0123456789"
PEERS = ("b", "c", "d")


class TimerSteps(trio.abc.Instrument):
    """Counts the steps of the runner's timer task: each step after the first is one wakeup."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name.endswith("_Runner.timers"):
            self.steps += 1


def run_idle(seconds: float, answer_after_s: float | None) -> tuple[_Runner, int, list[Any]]:
    """A runner with three peers for ``seconds`` of mock time; each ping is answered ``answer_after_s``
    later (None: never). Returns the runner, the timer task's steps and the pings it sent."""
    config = GossipConfig.fast_lan(node_name="a", advertise_host="10.0.0.1")
    instrument = TimerSteps()
    pings: list[tuple[float, str, Ping]] = []
    runners: list[_Runner] = []

    async def main() -> None:
        runner = _Runner(config, Keyring.from_secret(SECRET), lambda event: None)
        core = Swim(config, "a", "10.0.0.1:7946", {}, random.Random(7), trio.current_time())
        for i, name in enumerate(PEERS, start=2):
            addr = f"10.0.0.{i}:7946"
            core.handle_packet(trio.current_time(), addr, [Alive(1, name, addr, {})])
        while core.queue.get(10_000, 100)[0]:  # the joins' news spread: an idle node's queue is empty
            pass
        runner.core = core
        runners.append(runner)
        sent = trio.Event()
        outbox: list[tuple[str, Ping]] = []

        def send_nowait(addr: str, msgs: list[Any]) -> bool:
            for msg in msgs:
                if isinstance(msg, Ping):
                    pings.append((trio.current_time(), addr, msg))
                    outbox.append((addr, msg))
                    sent.set()
            return True

        runner.transport.send_packet_nowait = send_nowait  # type: ignore[method-assign]

        async def no_pushpull(addr: str, join: bool) -> bool:  # no TCP in this test: the state sync is
            return True  # a timer like the others (every push_pull_interval_s)

        async def no_tcp_ping(addr: str, seq: int, target: str) -> None:  # nor a failed probe's TCP ping
            return None

        runner._pushpull = no_pushpull  # type: ignore[method-assign]
        runner._tcp_ping = no_tcp_ping  # type: ignore[method-assign]

        async def peers() -> None:  # every ping answered after answer_after_s
            nonlocal sent
            while True:
                await sent.wait()
                sent = trio.Event()
                batch = outbox[:]
                outbox.clear()
                if answer_after_s is None:
                    continue
                await trio.sleep(answer_after_s)
                for addr, ping in batch:
                    await runner.on_packet(addr, [Ack(ping.seq)])

        async with trio.open_nursery() as nursery:
            runner.nursery = nursery
            nursery.start_soon(runner.timers)
            nursery.start_soon(peers)
            await trio.sleep(seconds)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[instrument])
    return runners[0], instrument.steps, pings


def test_an_idle_node_wakes_once_per_answered_probe_round() -> None:
    seconds = 20.0
    runner, steps, pings = run_idle(seconds, answer_after_s=0.002)
    assert len(pings) >= seconds / 0.5 - 1  # the probes went out every 0.5 s (fast_lan), all answered
    assert all(runner.core.members()[name].state == "alive" for name in PEERS)  # type: ignore[union-attr]
    # one wakeup per probe round (and the odd push/pull or gossip timer); before, a second one at each
    # answered probe's timeout, which the core had dropped at the ack
    assert steps <= 1.2 * len(pings)
    assert runner.metrics["timer_wakeups_empty"] == 0


def test_an_unanswered_probe_still_times_out_on_time() -> None:
    runner, _, pings = run_idle(3.0, answer_after_s=None)
    core = runner.core
    assert core is not None
    # nobody answers: the probe timeouts fire and Lifeguard's suspicion starts (failure detection intact)
    assert core.counters["suspicions"] >= 1
    assert any(member.state == "suspect" for member in core.members().values())
    assert runner.metrics["timer_wakeups_empty"] == 0
    assert len(pings) >= 2
