"""The node's Docker network made on first need (netoverlay/bridge.py): never at a fresh node's start,
once for concurrent starts, checked at every full pass once wanted, adopted when a restarted daemon finds
it, checked again after a start on it failed; made by the one-shot warm-up unless a start did first."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from p2porch.errors import OverlayError
from p2porch.netoverlay.bridge import LazyBridge, warm_wait
from p2porch.netoverlay.plan import BridgeNetworkSpec

SPEC = BridgeNetworkSpec(
    name="p2porch", bridge="p2p-br0", subnet="10.241.1.0/24", gateway="10.241.1.1", mtu=1450
)


class Engine:
    """One Docker engine's networks, by name (``DockerNetwork``'s calls); counts the calls."""

    def __init__(self, *, exists: bool = False) -> None:
        self.networks: dict[str, BridgeNetworkSpec] = {SPEC.name: SPEC} if exists else {}
        self.calls: list[str] = []

    def inspect(self, name: str) -> dict[str, Any] | None:
        self.calls.append("inspect")
        return {"Name": name} if name in self.networks else None

    def ensure(self, spec: BridgeNetworkSpec) -> str:
        self.calls.append("ensure")
        before = self.networks.get(spec.name)
        self.networks[spec.name] = spec
        return "unchanged" if before == spec else ("recreated" if before else "created")

    def remove(self, name: str) -> bool:
        self.calls.append("remove")
        return self.networks.pop(name, None) is not None


async def inline(fn: Any, *args: Any) -> Any:
    return fn(*args)


async def in_turn(fn: Any, *args: Any) -> Any:
    await trio.sleep(0.01)  # as a worker thread would: others run meanwhile
    return fn(*args)


async def test_a_fresh_node_makes_no_network_until_a_container_needs_it() -> None:
    engine = Engine()
    bridge = LazyBridge(engine, blocking=inline)  # type: ignore[arg-type]
    assert await bridge.check(SPEC) == ""  # the daemon's first host check: looked, not made
    assert await bridge.check(SPEC) == ""  # nor at a later full pass: nobody wants it
    assert engine.networks == {} and engine.calls == ["inspect"] and not bridge.up
    assert await bridge.ensure(SPEC) == "docker network p2porch created (10.241.1.0/24, mtu 1450)"
    assert bridge.up and bridge.wanted and engine.calls == ["inspect", "ensure"]
    assert await bridge.ensure(SPEC) == ""  # the next starts: no engine call
    assert engine.calls == ["inspect", "ensure"]
    del engine.networks["p2porch"]  # removed by hand: the next full pass makes it again
    assert await bridge.check(SPEC) == "docker network p2porch created (10.241.1.0/24, mtu 1450)"


async def test_a_network_found_at_the_start_is_kept_and_one_asked_for_at_start_is_made() -> None:
    engine = Engine(exists=True)
    moved = BridgeNetworkSpec(SPEC.name, SPEC.bridge, "10.241.7.0/24", "10.241.7.1", SPEC.mtu)
    bridge = LazyBridge(engine, blocking=inline)  # type: ignore[arg-type]
    # a restarted daemon whose lease moved meanwhile: its network is wanted, and recreated for the lease
    assert await bridge.check(moved) == "docker network p2porch recreated (10.241.7.0/24, mtu 1450)"
    assert bridge.up and engine.networks["p2porch"] == moved
    eager_engine = Engine()
    eager = LazyBridge(eager_engine, blocking=inline, wanted=True)  # type: ignore[arg-type]
    assert await eager.check(SPEC) == "docker network p2porch created (10.241.1.0/24, mtu 1450)"
    assert eager_engine.calls == ["ensure"]  # overlay.bridge_at_start: made at the first check


async def test_concurrent_starts_make_it_once_and_a_failed_start_checks_it_again() -> None:
    engine = Engine()
    bridge = LazyBridge(engine, blocking=in_turn)  # type: ignore[arg-type]
    results: list[str] = []

    async def start() -> None:
        results.append(await bridge.ensure(SPEC))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(start)
    assert engine.calls == ["ensure"] and sorted(results) == [
        "",
        "",
        "",
        "",
        "docker network p2porch created (10.241.1.0/24, mtu 1450)",
    ]
    bridge.suspect()  # a start on it failed ("network p2porch not found")
    engine.networks.clear()
    assert await bridge.ensure(SPEC) != "" and engine.calls == ["ensure", "ensure"]


async def test_a_failed_check_is_not_taken_for_a_made_network() -> None:
    engine = Engine()

    def down(spec: BridgeNetworkSpec) -> str:
        raise OSError("cannot reach the Docker engine")

    engine.ensure = down  # type: ignore[method-assign]
    bridge = LazyBridge(engine, blocking=inline)  # type: ignore[arg-type]
    try:
        await bridge.ensure(SPEC)
    except OSError:
        pass
    assert not bridge.up and bridge.wanted  # the next start, or full pass, tries again


async def test_leaving_removes_it_and_wants_it_no_more() -> None:
    engine = Engine()
    bridge = LazyBridge(engine, blocking=inline)  # type: ignore[arg-type]
    await bridge.ensure(SPEC)
    assert await bridge.remove("p2porch") is True
    assert not bridge.up and not bridge.wanted
    assert await bridge.check(SPEC) == "" and engine.networks == {}


async def test_a_start_after_the_leave_does_not_make_it_again() -> None:
    engine = Engine()
    bridge = LazyBridge(engine, blocking=in_turn)  # type: ignore[arg-type]
    await bridge.ensure(SPEC)
    errors: list[str] = []

    async def start() -> None:  # a start under way while the leave tears the overlay down
        try:
            await bridge.ensure(SPEC)
        except OverlayError as exc:
            errors.append(exc.message)

    async with trio.open_nursery() as nursery:
        bridge.suspect()  # a full pass's check holds the lock; the start waits for it, then the leave
        nursery.start_soon(bridge.check, SPEC)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(start)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(bridge.remove, "p2porch")
    await start()  # and one after it
    assert errors == ["the node left: its Docker network is not made again"] * 2
    assert engine.networks == {} and engine.calls == ["ensure", "ensure", "remove"]
    assert await bridge.check(SPEC) == "" and engine.networks == {}


async def test_a_start_that_failed_during_a_check_keeps_it_suspect() -> None:
    engine = Engine()
    bridge = LazyBridge(engine, blocking=in_turn, wanted=True)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(bridge.check, SPEC)  # a full pass's engine call under way ...
        await trio.testing.wait_all_tasks_blocked()
        bridge.suspect()  # ... when a start on the network fails (deleted by hand meanwhile)
    assert not bridge.up  # not taken for made: the next start asks the engine again
    await bridge.ensure(SPEC)
    assert engine.calls == ["ensure", "ensure"] and bridge.up


def test_the_warm_up_waits_what_is_left_of_its_delay_and_not_at_all_when_never_or_made() -> None:
    assert warm_wait(8.0, 0.0, up=False) == 8.0
    assert warm_wait(8.0, 3.0, up=False) == 5.0  # the lease took 3 s: 5 s more
    assert warm_wait(8.0, 9.5, up=False) == 0.0  # late already: at once
    assert warm_wait(-1.0, 0.0, up=False) is None  # never: on first need only
    assert warm_wait(8.0, 0.0, up=True) is None  # a task made it first


async def test_the_warm_up_makes_it_once_unless_a_start_did_or_the_node_left() -> None:
    engine = Engine()
    bridge = LazyBridge(engine, blocking=inline)  # type: ignore[arg-type]
    assert await bridge.warm(SPEC) == "docker network p2porch created (10.241.1.0/24, mtu 1450)"
    assert bridge.up and bridge.wanted and engine.calls == ["ensure"]
    assert await bridge.warm(SPEC) == "" and await bridge.ensure(SPEC) == ""
    assert engine.calls == ["ensure"]
    assert await bridge.remove("p2porch") is True  # the node left
    assert await bridge.warm(SPEC) == "" and engine.networks == {} and engine.calls == ["ensure", "remove"]


async def test_a_warm_up_during_a_starts_engine_call_waits_for_it_and_asks_nothing() -> None:
    engine = Engine()
    bridge = LazyBridge(engine, blocking=in_turn)  # type: ignore[arg-type]
    results: list[str] = []

    async def call(fn: Any) -> None:
        results.append(await fn(SPEC))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, bridge.ensure)  # a task's start: its engine call in flight
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(call, bridge.warm)
    assert engine.calls == ["ensure"] and results == [
        "docker network p2porch created (10.241.1.0/24, mtu 1450)",
        "",
    ]


async def test_a_warm_up_the_engine_refused_leaves_it_wanted_for_the_next_full_pass() -> None:
    engine = Engine()
    real_ensure = engine.ensure

    def down(spec: BridgeNetworkSpec) -> str:
        raise OSError("cannot reach the Docker engine")

    engine.ensure = down  # type: ignore[method-assign]
    bridge = LazyBridge(engine, blocking=inline)  # type: ignore[arg-type]
    with pytest.raises(OSError):
        await bridge.warm(SPEC)
    assert not bridge.up and bridge.wanted
    engine.ensure = real_ensure  # type: ignore[method-assign]
    assert await bridge.check(SPEC) == "docker network p2porch created (10.241.1.0/24, mtu 1450)"
