"""The one-shot warm-up of the node's Docker network (member/overlay.py ``warm_bridge`` over a running
reconciler, MockClock): made ``overlay.bridge_warm_after_s`` after the overlay started and not before, not
at all when a task's start made it first, when it is off (-1) or after the node left; an engine that does
not answer leaves it to the next full pass (the engine back), with no retry loop of its own."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.errors import OverlayError
from p2porch.member.overlay import warm_bridge
from p2porch.netoverlay.iptables_listing import Listing

from .test_reconcile_loop import CountingNetwork, ModelDriver, RecordingFirewall, running_with


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_the_network_is_made_after_the_delay_and_not_before(
    autojump_clock: trio.testing.MockClock,
) -> None:
    driver, network = ModelDriver(), CountingNetwork(exists=False)
    async with trio.open_nursery() as nursery:
        started = trio.current_time()
        reconciler = await running_with(nursery, driver, network)
        await trio.sleep(3)  # the lease came 3 s after the overlay's start
        nursery.start_soon(warm_bridge, reconciler, 8.0, started)
        await trio.sleep(4.9)
        assert network.ensures == 0 and not reconciler.status()["network"]["up"]
        await trio.sleep(0.2)
        # made once, then the full pass asked for checks the rules against dockerd's chains
        assert network.made == 1 and reconciler.status()["network"]["up"] and driver.reads == 2
        await trio.sleep(100)
        assert network.made == 1 and network.ensures == 5  # each 30 s resync checks it; no warm-up again
        nursery.cancel_scope.cancel()


async def test_a_task_that_made_it_first_or_a_warm_up_turned_off_asks_the_engine_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    for after_s, task_first in ((8.0, True), (-1.0, False)):
        driver, network = ModelDriver(), CountingNetwork(exists=False)
        async with trio.open_nursery() as nursery:
            reconciler = await running_with(nursery, driver, network)
            nursery.start_soon(warm_bridge, reconciler, after_s, trio.current_time())
            if task_first:
                await trio.sleep(2)
                await reconciler.ensure_bridge()  # a task placed before the warm-up
                await trio.sleep(0.001)
                assert network.ensures == 2  # its engine call, and the full pass that followed
            await trio.sleep(20)
            assert network.ensures == (2 if task_first else 0) and network.made == (1 if task_first else 0)
            nursery.cancel_scope.cancel()


async def test_an_engine_down_at_the_warm_up_is_made_when_it_answers_again_and_none_after_leaving(
    autojump_clock: trio.testing.MockClock,
) -> None:
    driver, network = ModelDriver(), DownNetwork()
    async with trio.open_nursery() as nursery:
        reconciler = await running_with(nursery, driver, network)
        nursery.start_soon(warm_bridge, reconciler, 8.0, trio.current_time())
        await trio.sleep(9)
        assert network.ensures == 1 and not reconciler.status()["network"]["up"]  # tried once, failed
        await trio.sleep(10)
        assert network.ensures == 1  # no retry loop of its own
        network.down = False
        reconciler.resync()  # the agent saw the engine answer again
        await trio.sleep(0.001)
        assert network.made == 1 and reconciler.status()["network"]["up"]
        nursery.cancel_scope.cancel()
    driver, network = LeavingDriver(), LeavingNetwork(exists=False)
    async with trio.open_nursery() as nursery:
        reconciler = await running_with(nursery, driver, network)
        nursery.start_soon(warm_bridge, reconciler, 8.0, trio.current_time())
        await trio.sleep(2)
        await reconciler.teardown()  # the node left before the warm-up
        await trio.sleep(60)
        assert network.ensures == 0 and not network.exists
        nursery.cancel_scope.cancel()


class DownNetwork(CountingNetwork):
    """A Docker network whose engine stops answering after the overlay's first pass, until ``down`` is
    cleared."""

    def __init__(self) -> None:
        super().__init__(exists=False)
        self.down = True

    def ensure(self, spec: Any) -> str:
        if self.down:
            self.ensures += 1
            raise OverlayError("docker network p2porch: cannot reach the Docker engine")
        return super().ensure(spec)


class LeavingDriver(ModelDriver):
    """The model kernel, whose device the node's leave deletes."""

    def delete_link(self, device: str) -> bool:
        return True


class LeavingNetwork(CountingNetwork):
    """The Docker network, which the node's leave removes."""

    def remove(self, name: str) -> bool:
        removed, self.exists = self.exists, False
        return removed


async def test_an_engine_down_after_the_warm_up_fails_no_pass_and_skips_no_firewall_check(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The network warmed at 8 s, then 60 s of engine outage: each 30 s resync's network check fails, but
    the pass does not (no 1 s retry of full passes, no kernel read per retry), its allow-list and iptables
    checks still run, and the error is kept and logged once; the engine back makes the network again."""
    driver, network, firewall = ModelDriver(), DownNetwork(), HostFirewall()
    network.down = False
    async with trio.open_nursery() as nursery:
        reconciler = await running_with(nursery, driver, network, firewall=firewall)
        nursery.start_soon(warm_bridge, reconciler, 8.0, trio.current_time())
        await trio.sleep(9)
        assert network.made == 1 and reconciler.status()["network"]["up"]
        reads, ensures, checks = driver.reads, network.ensures, firewall.ensures
        network.down = True  # dockerd stops
        await trio.sleep(60)
        assert reconciler.counters.failures == 0
        assert driver.reads == reads + 2 and network.ensures == ensures + 2  # the two resyncs, no retry loop
        assert firewall.ensures == checks + 2  # the overlay's rules checked at each resync all the same
        assert "cannot reach the Docker engine" in reconciler.status()["last_error"]
        assert not reconciler.status()["network"]["up"]
        assert sum("Docker network is not made" in r.getMessage() for r in caplog.records) == 1
        network.down = False
        reconciler.resync()  # the agent saw the engine answer again
        await trio.sleep(0.001)
        assert reconciler.status()["network"]["up"] and reconciler.status()["last_error"] == ""
        nursery.cancel_scope.cancel()


class HostFirewall(RecordingFirewall):
    """The firewall's host checks, counted (``ensure``: the overlay's iptables rules checked)."""

    def __init__(self) -> None:
        super().__init__()
        self.ensures = 0

    def enable_forwarding(self) -> None:
        pass

    def listing(self, table: str) -> Any:
        return Listing.parse("")

    def forward_chain(self, listing: Any = None) -> str:
        return "DOCKER-USER"

    def ensure(self, rules: Any, listings: Any = None) -> list[str]:
        self.ensures += 1
        return []


async def test_a_network_made_by_any_pass_wakes_the_policy_and_traffic_loops_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``on_bridge_made`` (the daemon wakes the network policy and traffic loops: dockerd's FORWARD accepts
    for a new bridge go on top) is called when the warm-up made the network, and when a full pass's check
    did: after a warm-up that failed (the engine down) once the engine answers, and after the network was
    deleted by hand; a check that found it made calls nothing."""
    for engine_down in (False, True):
        driver, network, made = ModelDriver(), DownNetwork(), list[int]()
        network.down = engine_down
        async with trio.open_nursery() as nursery:
            reconciler = await running_with(nursery, driver, network, on_bridge_made=partial(made.append, 1))
            nursery.start_soon(warm_bridge, reconciler, 8.0, trio.current_time())
            await trio.sleep(9)
            assert len(made) == (0 if engine_down else 1)  # the warm-up made it (or failed to)
            network.down = False
            reconciler.resync()  # the agent saw the engine answer again
            await trio.sleep(0.001)
            assert len(made) == 1 and reconciler.status()["network"]["up"]
            await trio.sleep(30)  # the resync finds it made: nothing new
            assert len(made) == 1
            network.exists = False  # docker network rm p2porch
            await trio.sleep(30)  # the resync made it again
            assert len(made) == 2 and network.made == 2
            nursery.cancel_scope.cancel()
