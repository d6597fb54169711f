"""The node's Docker bridge network, made when first needed (trio shell over ``DockerNetwork``).

Owns two facts about the one network of ``DockerNetwork``: whether it is wanted (a container of the node
needed it, it existed when the daemon started, or the daemon was configured to make it at start) and
whether the last check found it as planned. A fresh node's network is not made at its join: dockerd's
bridge rules and store cost ~40-50 ms of CPU per joiner (issue 19), and only containers use it
(docs/overlay.md, "The Docker network, made on first need"); a one-shot warm-up makes it some seconds
later, once the formation's burst is over (``warm_wait``, ``warm``). One engine call at a time: concurrent
starts and the warm-up wait for the first one's. It never makes a network nobody asked for (the warm-up
is asked by the daemon's config), never one after the node left, and never touches another.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ..errors import OverlayError
from .dockernet import DockerNetwork
from .plan import BridgeNetworkSpec


def warm_wait(after_s: float, elapsed_s: float, *, up: bool) -> float | None:
    """Seconds the warm-up still waits, ``elapsed_s`` after the node's overlay started, before it makes the
    network; None for no warm-up (``after_s`` negative: only on first need; the network already up)."""
    if after_s < 0 or up:
        return None
    return max(0.0, after_s - elapsed_s)


class LazyBridge:
    """Whether the node's Docker network is wanted and was last found as planned; makes it so."""

    def __init__(
        self, network: DockerNetwork, *, blocking: Callable[..., Awaitable[Any]], wanted: bool = False
    ) -> None:
        self.network = network
        self._blocking = blocking  # runs DockerNetwork's blocking calls (a worker thread)
        self._wanted: bool | None = True if wanted else None  # None: not known (the first check looks)
        self._ok = False  # the last check found it as planned
        self._suspected = 0  # ``suspect()`` calls: one during a check's engine call keeps ``_ok`` False
        self._closed = False  # removed (the node left): never made again, by a start or the warm-up
        self._lock = trio.Lock()

    @property
    def up(self) -> bool:
        """The last check made or found the network as planned (no engine call)."""
        return self._ok

    @property
    def wanted(self) -> bool:
        return bool(self._wanted)

    async def ensure(self, spec: BridgeNetworkSpec) -> str:
        """Make the network ``spec`` unless the last check found it so (then at once, no engine call);
        returns what changed ("" for nothing). ``OverlayError`` once removed: a start during ``leave``
        must not make it again after the teardown."""
        self._check_open()
        self._wanted = True
        if self._ok:
            return ""
        async with self._lock:
            self._check_open()  # removed while this one waited
            if self._ok:  # a concurrent caller made it meanwhile
                return ""
            return await self._ensure(spec)

    async def warm(self, spec: BridgeNetworkSpec) -> str:
        """The warm-up: make the network ``spec`` unless a task's start made it meanwhile (or waits on the
        engine call making it) or the node left; wanted afterwards, so that a failed call (the engine
        down) is made by the next full pass (the engine back, the resync) and not retried here."""
        async with self._lock:
            if self._ok or self._closed:
                return ""
            self._wanted = True
            return await self._ensure(spec)

    async def check(self, spec: BridgeNetworkSpec) -> str:
        """A full pass's host check: the network made as ``spec`` when wanted. While that is not known
        yet (the daemon's first check) it is wanted if it exists: a restarted daemon's containers are
        attached to it, and a lease that moved meanwhile recreates it."""
        async with self._lock:
            if self._wanted is None:
                self._wanted = await self._blocking(self.network.inspect, spec.name) is not None
            if not self._wanted:
                return ""
            return await self._ensure(spec)

    def _check_open(self) -> None:
        if self._closed:
            raise OverlayError("the node left: its Docker network is not made again")

    async def _ensure(self, spec: BridgeNetworkSpec) -> str:
        self._ok = False  # unknown until the engine answered: a failure checks it again next time
        suspected = self._suspected
        result = await self._blocking(self.network.ensure, spec)
        self._ok = self._suspected == suspected  # a start failed meanwhile: the next ensure asks again
        if result == "unchanged":
            return ""
        return f"docker network {spec.name} {result} ({spec.subnet}, mtu {spec.mtu})"

    def suspect(self) -> None:
        """A container start on the network failed (it may have been removed by hand): the next
        ``ensure`` asks the engine again (also when a check's engine call is under way)."""
        self._suspected += 1
        self._ok = False

    async def remove(self, name: str) -> bool:
        """Remove the network (the node leaves); True if it existed. Never made again afterwards:
        ``ensure`` raises, ``check`` does nothing."""
        self._closed = True
        async with self._lock:
            self._wanted, self._ok = False, False
            return bool(await self._blocking(self.network.remove, name))
