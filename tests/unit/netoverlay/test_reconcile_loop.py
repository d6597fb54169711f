"""The overlay reconcile loop (netoverlay/reconciler.py) under trio's MockClock, with a model kernel:
a burst of change notifications costs one pass, a change that moves no peer costs no kernel read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.errors import OverlayError
from p2porch.netoverlay.diff import CreateLink, KernelState, LinkState, Operation
from p2porch.netoverlay.plan import LocalNode, OverlayPeer, OverlaySettings
from p2porch.netoverlay.reconciler import CHANGE_MAX_DELAY_S, CHANGE_QUIET_S, OverlayReconciler

from .fakekernel import apply

LOCAL = LocalNode("n1", "10.80.0.1", "10.241.1.0/24", "eth0")


class ModelDriver:
    """The kernel as ``fakekernel`` models it; counts reads and applies."""

    def __init__(self) -> None:
        self.state = KernelState()
        self.reads = 0
        self.link_reads = 0
        self.applies = 0

    def underlay(self, address: str, dev: str | None = None) -> tuple[str, int]:
        return dev or "eth0", 1500

    def read(self, device: str) -> KernelState:
        self.reads += 1
        return self.state

    def read_link(self, device: str) -> LinkState | None:
        self.link_reads += 1
        return self.state.link

    def apply(self, ops: Sequence[Operation]) -> bool:
        self.applies += 1
        self.state = apply(self.state, list(ops))
        return any(isinstance(op, CreateLink) for op in ops)  # the model kernel refuses an existing one

    def close(self) -> None:
        pass


def peer(i: int) -> OverlayPeer:
    return OverlayPeer(f"n{i}", f"10.80.0.{i}", f"10.241.{i}.0/24")


async def inline(fn: Any, *args: Any) -> Any:
    return fn(*args)  # the model kernel does not block: no worker thread, so MockClock stays exact


async def started(
    nursery: trio.Nursery, driver: ModelDriver, peers: list[OverlayPeer], **run: Any
) -> tuple[OverlayReconciler, trio.MemorySendChannel[Any]]:
    """A reconciler over ``driver`` running in ``nursery`` (its first pass done) and its change channel."""
    reconciler = OverlayReconciler(
        LOCAL, driver, settings=OverlaySettings(cluster_cidr="10.241.0.0/16"), blocking=inline
    )  # type: ignore[arg-type]
    send, receive = trio.open_memory_channel[Any](100)
    await nursery.start(
        lambda task_status: reconciler.run(lambda: list(peers), receive, task_status=task_status, **run)
    )
    return reconciler, send


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_a_burst_of_changes_is_one_pass_and_changes_that_move_no_peer_read_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    driver = ModelDriver()
    reconciler = OverlayReconciler(
        LOCAL, driver, settings=OverlaySettings(cluster_cidr="10.241.0.0/16"), blocking=inline
    )  # type: ignore[arg-type]
    peers = [peer(2)]
    send, receive = trio.open_memory_channel[Any](100)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: reconciler.run(lambda: list(peers), receive, task_status=task_status)
        )
        # the first pass: read, apply, read the created device's link back (its entries are the ones
        # it just added: issue 19), and what it holds is what the kernel holds
        assert (reconciler.counters.passes, driver.reads, driver.link_reads) == (1, 1, 1)
        assert reconciler._observed == driver.state
        first_at = trio.current_time()
        for i in range(3, 23):  # 20 nodes join, one commit every 10 ms: faster than the quiet time
            peers.append(peer(i))
            await send.send(("change", i))
            await trio.sleep(0.01)
        await trio.sleep(CHANGE_MAX_DELAY_S)
        # at most one pass per CHANGE_MAX_DELAY_S of the burst (0.2 s), then one after it: not 20
        assert 1 + 1 <= reconciler.counters.passes <= 1 + 2
        assert set(driver.state.routes) == {f"10.241.{i}.0/24" for i in range(2, 23)}
        assert trio.current_time() - first_at < 0.2 + CHANGE_MAX_DELAY_S + 0.01  # none waited longer
        passes, reads = reconciler.counters.passes, driver.reads
        for n in range(50):  # commits that move no peer (task states, capacity updates)
            await send.send(("task", n))
            await trio.sleep(0.02)
        await trio.sleep(CHANGE_MAX_DELAY_S)
        assert (reconciler.counters.passes, driver.reads) == (passes, reads)
        assert reconciler.counters.unchanged >= 1
        peers.pop(0)  # a node dies: its commit reaches the kernel within CHANGE_QUIET_S
        await send.send(("down", 2))
        await trio.sleep(CHANGE_QUIET_S + 0.001)
        assert "10.241.2.0/24" not in driver.state.routes
        nursery.cancel_scope.cancel()


async def test_joins_apply_peer_entries_without_reading_the_kernel_and_the_resync_reads_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    driver = ModelDriver()
    peers = [peer(2)]
    async with trio.open_nursery() as nursery:
        reconciler, send = await started(nursery, driver, peers, resync_interval_s=30.0)
        assert driver.reads == 1
        for i in range(3, 8):  # one join at a time: a pass each
            peers.append(peer(i))
            await send.send(("change", i))
            await trio.sleep(CHANGE_MAX_DELAY_S)
        peers.remove(peer(4))  # and a node dies
        await send.send(("down", 4))
        await trio.sleep(CHANGE_MAX_DELAY_S)
        assert driver.reads == 1 and reconciler.counters.incremental == 6
        wanted = {f"10.241.{i}.0/24" for i in (2, 3, 5, 6, 7)}
        assert set(driver.state.routes) == wanted
        # what the reconciler believes is on the device is what is on it
        assert reconciler._observed == driver.state
        assert reconciler.status()["peers"] and all(p["programmed"] for p in reconciler.status()["peers"])
        driver.state = KernelState(
            driver.state.link, driver.state.addresses, {}, driver.state.neighbours, driver.state.fdb
        )  # routes deleted by hand: the resync reads the kernel and puts them back
        await trio.sleep(30.0)
        assert driver.reads > 1 and set(driver.state.routes) == wanted
        nursery.cancel_scope.cancel()


async def test_a_pass_that_fails_midway_is_retried_as_a_full_pass(
    autojump_clock: trio.testing.MockClock,
) -> None:
    driver = FailingOnce()
    reconciler = OverlayReconciler(
        LOCAL, driver, settings=OverlaySettings(cluster_cidr="10.241.0.0/16"), blocking=inline
    )  # type: ignore[arg-type]
    peers = [peer(2)]
    send, receive = trio.open_memory_channel[Any](100)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: reconciler.run(lambda: list(peers), receive, task_status=task_status)
        )
        reads = driver.reads
        driver.fail_next = True
        peers.append(peer(3))
        await send.send(("change", 3))
        await trio.sleep(CHANGE_MAX_DELAY_S)
        assert reconciler.counters.failures == 1
        await trio.sleep(1.0)  # the retry (retry_interval_s) reads the kernel
        assert driver.reads > reads and "10.241.3.0/24" in driver.state.routes
        assert reconciler.counters.last_error == ""
        nursery.cancel_scope.cancel()


class FailingOnce(ModelDriver):
    """A model kernel whose next apply applies the first operation and then fails."""

    fail_next = False

    def apply(self, ops: Sequence[Operation]) -> bool:
        if self.fail_next:
            self.fail_next = False
            self.state = apply(self.state, list(ops)[:1])
            raise OverlayError("netlink said no")
        return super().apply(ops)


class RecordingFirewall:
    """The firewall's allow-list calls, recorded: which were trusted (``known``) and which read the kernel."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], tuple[str, ...] | None]] = []  # (wanted, known)
        self.members: list[str] = []  # trusted differences (``vxlan_members``), described
        self.fail_next = False

    def vxlan_members(self, diff: Any) -> None:
        self.members.append(diff.describe())
        if self.fail_next:
            self.fail_next = False
            raise OverlayError("ipset p2porch-vxlan: No such file or directory")

    def vxlan_filter(self, wanted: Any, *, known: Any = None, listing: Any = None) -> tuple[Any, bool]:
        from p2porch.netoverlay.plan import diff_members

        self.calls.append((wanted.sources, None if known is None else known.sources))
        if self.fail_next:
            self.fail_next = False
            raise OverlayError("ipset p2porch-vxlan: No such file or directory")
        return diff_members(wanted.sources, known.sources if known else ()), known is None

    def close(self) -> None:
        pass


async def test_a_join_writes_the_allow_lists_difference_and_a_failed_write_is_read_again() -> None:
    firewall = RecordingFirewall()
    reconciler = OverlayReconciler(
        LOCAL,
        ModelDriver(),
        settings=OverlaySettings(cluster_cidr="10.241.0.0/16"),
        firewall=firewall,
        blocking=inline,
    )  # type: ignore[arg-type]
    await reconciler.reconcile([peer(2)])
    assert firewall.calls == [(("10.80.0.2",), None)]  # the first pass reads the set and the chain
    await reconciler.reconcile_if_moved([peer(2), peer(3)])  # a join: the difference, nothing read
    assert firewall.members == ["+10.80.0.3"] and len(firewall.calls) == 1
    await reconciler.reconcile_if_moved([peer(2), peer(3)])  # nothing moved: no call at all
    assert firewall.members == ["+10.80.0.3"] and len(firewall.calls) == 1
    firewall.fail_next = True
    with pytest.raises(OverlayError):
        await reconciler.reconcile_if_moved([peer(3)])  # a leave whose write fails ...
    await reconciler.reconcile([peer(3)])  # ... is retried as a full pass that reads the kernel again
    assert firewall.calls[-1] == (("10.80.0.3",), None)
    assert reconciler.status()["vxlan_allowed_sources"] == ["10.80.0.3"]


@dataclass(frozen=True)
class Change:
    """A committed change as the store's subscription gives it (``raft.fsm.Change``: kind and key)."""

    kind: str
    key: str


async def test_commits_that_name_peers_plan_only_those_and_a_conflict_or_reset_plans_all(
    autojump_clock: trio.testing.MockClock,
) -> None:
    driver = ModelDriver()
    reconciler = OverlayReconciler(
        LOCAL,
        driver,
        settings=OverlaySettings(cluster_cidr="10.241.0.0/16"),
        blocking=inline,
    )  # type: ignore[arg-type]
    peers = {"n2": peer(2)}
    whole: list[int] = []  # len(peers) at every whole-list read
    named: list[set[str]] = []

    def get_peers() -> list[OverlayPeer]:
        whole.append(len(peers))
        return list(peers.values())

    def changed_peers(node_ids: Any) -> dict[str, OverlayPeer | None]:
        named.append(set(node_ids))
        return {n: peers.get(n) for n in node_ids}

    send, receive = trio.open_memory_channel[Any](100)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: reconciler.run(
                get_peers, receive, changed_peers=changed_peers, task_status=task_status
            )
        )
        assert whole == [1]
        for i in range(3, 13):  # ten joins, one at a time: each looks up and plans that node alone
            peers[f"n{i}"] = peer(i)
            await send.send(Change("node", f"n{i}"))
            await trio.sleep(CHANGE_MAX_DELAY_S)
        assert whole == [1] and named == [{f"n{i}"} for i in range(3, 13)]
        assert reconciler.counters.patched == 10 and driver.reads == 1
        assert set(driver.state.routes) == {f"10.241.{i}.0/24" for i in range(2, 13)}
        await send.send(Change("task", "t1"))  # moves no peer: nothing looked up but gossip's dead set
        await trio.sleep(CHANGE_MAX_DELAY_S)
        assert named[-1] == set() and reconciler.counters.patched == 10
        peers["n13"] = OverlayPeer("n13", "10.80.0.13", "10.241.12.0/23")  # overlaps n12: order decides
        await send.send(Change("lease", "n13"))
        await trio.sleep(CHANGE_MAX_DELAY_S)
        assert whole == [1, 12] and reconciler.status()["skipped"][0]["node_id"] == "n13"
        del peers["n5"]
        await send.send(Change("reset", "c1"))  # a snapshot installed: any peer may have moved
        await trio.sleep(CHANGE_MAX_DELAY_S)
        assert whole == [1, 12, 11] and "10.241.5.0/24" not in driver.state.routes
        assert reconciler._observed == driver.state and driver.reads == 1  # nothing read since the first
        assert [p["node_id"] for p in reconciler.status()["peers"]] == sorted(set(peers) - {"n13"})
        nursery.cancel_scope.cancel()


class EngineDown(ModelDriver):
    """A model kernel whose reads fail while ``down`` (the Docker engine gone), as a full pass's do;
    past ``limit`` failed reads it raises something the loop does not catch (a busy retry loop ends)."""

    down = False
    failed_reads = 0
    limit = 1_000

    def read(self, device: str) -> KernelState:
        if self.down:
            self.failed_reads += 1
            if self.failed_reads > self.limit:
                raise RuntimeError("the reconcile loop retried without waiting")
            raise OverlayError("docker network p2porch: cannot reach the Docker engine")
        return super().read(device)


async def test_a_failing_full_pass_is_retried_once_per_interval_not_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    driver = EngineDown()
    peers = [peer(2)]
    async with trio.open_nursery() as nursery:
        reconciler, send = await started(nursery, driver, peers, resync_interval_s=30.0, retry_interval_s=1.0)
        driver.down = True
        await trio.sleep(30.5)  # the resync fails
        assert reconciler.counters.failures == 1
        for i in range(20):  # commits keep coming while the engine is down: they wait for the retry
            await send.send(("task", i))
            await trio.sleep(0.5)
        assert 10 <= reconciler.counters.failures <= 12  # one a second, not one per wake
        driver.down = False
        peers.append(peer(3))
        await trio.sleep(1.0)  # the next retry is a full pass that succeeds
        assert reconciler.counters.last_error == "" and "10.241.3.0/24" in driver.state.routes
        failures = reconciler.counters.failures
        await trio.sleep(60.0)
        assert reconciler.counters.failures == failures
        nursery.cancel_scope.cancel()


class AppearsBeforeCreate(ModelDriver):
    """A model kernel whose device appears between the pass's read and its create (another process, a
    daemon restarting beside the one stopping): the create answers EEXIST (benign), the rest applies."""

    def __init__(self, existing: KernelState) -> None:
        super().__init__()
        self.existing = existing

    def read(self, device: str) -> KernelState:
        self.reads += 1
        if self.reads == 1:
            return KernelState()  # read before it appeared
        return self.state

    def apply(self, ops: Sequence[Operation]) -> bool:
        self.applies += 1
        self.state = self.existing
        self.state = apply(self.state, [op for op in ops if not isinstance(op, CreateLink)])
        return False  # EEXIST: not created by these operations


async def test_a_device_that_appeared_before_the_create_is_read_whole_not_modelled() -> None:
    model = ModelDriver()
    first = OverlayReconciler(
        LOCAL, model, settings=OverlaySettings(cluster_cidr="10.241.0.0/16"), blocking=inline
    )  # type: ignore[arg-type]
    await first.reconcile([peer(2)])
    stray = dict(model.state.routes, **{"10.99.0.0/24": None})  # what the device held besides ours
    existing = KernelState(
        model.state.link, model.state.addresses, stray, model.state.neighbours, model.state.fdb
    )
    driver = AppearsBeforeCreate(existing)
    reconciler = OverlayReconciler(
        LOCAL, driver, settings=OverlaySettings(cluster_cidr="10.241.0.0/16"), blocking=inline
    )  # type: ignore[arg-type]
    ops = await reconciler.reconcile([peer(2)])
    assert isinstance(ops[0], CreateLink) and driver.reads == 2  # read whole after the create
    assert "10.99.0.0/24" in reconciler._observed.routes and reconciler._observed == driver.state


class CountingNetwork:
    """The Docker network's check: counts the calls (a full pass's host checks); ``exists``: the
    network is there (a restarted daemon's), else it is made by the first ``ensure``."""

    def __init__(self, *, exists: bool = True) -> None:
        self.ensures = 0
        self.made = 0
        self.exists = exists

    def inspect(self, name: str) -> dict[str, Any] | None:
        return {"Name": name} if self.exists else None

    def ensure(self, spec: Any) -> str:
        self.ensures += 1
        made, self.exists = not self.exists, True
        self.made += made
        return "created" if made else "unchanged"


async def running_with(
    nursery: trio.Nursery, driver: ModelDriver, network: CountingNetwork, **options: Any
) -> OverlayReconciler:
    """A reconciler over ``driver`` and ``network`` with one live peer, running (its first pass done);
    ``options``: more of ``OverlayReconciler``'s (a firewall)."""
    reconciler = OverlayReconciler(
        LOCAL,
        driver,  # type: ignore[arg-type]
        settings=OverlaySettings(cluster_cidr="10.241.0.0/16"),
        network=network,  # type: ignore[arg-type]
        blocking=inline,
        **options,
    )
    await nursery.start(lambda task_status: reconciler.run(lambda: [peer(2)], task_status=task_status))
    return reconciler


async def test_a_resync_asked_for_is_a_full_pass_with_the_host_checks_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The node's Docker engine answers again (a dockerd restarted under the daemon rewrote its chains):
    the agent asks for a full pass then, not at the next 30 s resync."""
    driver, network = ModelDriver(), CountingNetwork()
    async with trio.open_nursery() as nursery:
        reconciler = await running_with(nursery, driver, network)
        assert network.ensures == 1
        await trio.sleep(10)
        assert (network.ensures, driver.reads) == (1, 1)
        reconciler.resync()
        await trio.sleep(0.001)
        assert (network.ensures, driver.reads) == (2, 2)  # the kernel read and the host checked
        await trio.sleep(25)  # the periodic resync counts from there: none 30 s after the first pass
        assert network.ensures == 2
        await trio.sleep(10)
        assert network.ensures == 3
        nursery.cancel_scope.cancel()


async def test_a_fresh_nodes_network_waits_for_its_first_container_then_the_rules_are_checked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A joiner's first pass makes the VXLAN device and its rules, not the Docker network (issue 19:
    dockerd's CPU for it, ~40-50 ms per joiner); the agent's first start on it makes it, once, and the
    full pass that follows checks the rules against dockerd's chains; from then on every resync checks it."""
    driver, network = ModelDriver(), CountingNetwork(exists=False)
    async with trio.open_nursery() as nursery:
        reconciler = await running_with(nursery, driver, network)
        assert (network.ensures, network.exists) == (0, False)
        await trio.sleep(31)  # a resync: nobody needs the network yet
        assert (network.ensures, driver.reads) == (0, 2) and not reconciler.status()["network"]["up"]
        async with trio.open_nursery() as starts:  # two starts at once: one network made
            starts.start_soon(reconciler.ensure_bridge)
            starts.start_soon(reconciler.ensure_bridge)
        await trio.sleep(0.001)
        assert network.made == 1 and reconciler.status()["network"]["up"]
        # the full pass asked for once it was made: the kernel read, the network and rules checked
        assert (driver.reads, network.ensures) == (3, 2)
        await reconciler.ensure_bridge()
        assert network.ensures == 2  # made: later starts ask the engine nothing
        await trio.sleep(30)
        assert network.ensures == 3  # wanted now: each resync checks it
        nursery.cancel_scope.cancel()
