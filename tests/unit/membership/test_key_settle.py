"""wait_settled: a key rotation returns once a write commits in the new epoch, not before."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import trio

from p2porch.errors import ConflictError, ProposalTimeout
from p2porch.membership.key_rotation import wait_settled
from p2porch.raft import commands as C


@dataclass
class _Local:
    key_epoch: int


@dataclass
class _SwitchingManager:
    """Runs in epoch 1 until ``switch_at``; its writes fail until ``quorum_at`` (members restarting)."""

    switch_at: float
    quorum_at: float
    local: _Local | None = field(default_factory=lambda: _Local(1))
    writes: list[tuple[float, bytes]] = field(default_factory=list)

    def _tick(self) -> None:
        if trio.current_time() >= self.switch_at:
            self.local = _Local(2)

    async def write(self, command: bytes) -> Any:
        self._tick()
        self.writes.append((trio.current_time(), command))
        if self.local is None or trio.current_time() < self.quorum_at:
            raise ProposalTimeout("no commit within 5 s")
        return None

    def snapshot(self) -> Any:
        raise AssertionError("not used")

    def require_store(self) -> Any:
        raise ConflictError("restarting", field="cluster")


async def test_returns_after_a_barrier_commits_in_the_new_epoch(autojump_clock: trio.abc.Clock) -> None:
    manager = _SwitchingManager(switch_at=2.0, quorum_at=6.0)

    async def tick() -> None:
        while True:
            manager._tick()
            await trio.sleep(0.05)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(tick)
        start = trio.current_time()
        assert await wait_settled(manager, epoch=2, timeout_s=20.0)  # type: ignore[arg-type]
        nursery.cancel_scope.cancel()
    assert manager.writes and all(at >= 2.0 for at, _ in manager.writes)  # nothing before the switch
    assert trio.current_time() - start >= 6.0
    assert isinstance(C.decode_command(manager.writes[-1][1]), C.Noop)  # a barrier changes nothing


async def test_gives_up_after_the_timeout(autojump_clock: trio.abc.Clock) -> None:
    manager = _SwitchingManager(switch_at=1.0, quorum_at=1e9)
    start = trio.current_time()
    assert not await wait_settled(manager, epoch=2, timeout_s=10.0)  # type: ignore[arg-type]
    assert 10.0 <= trio.current_time() - start < 11.0
