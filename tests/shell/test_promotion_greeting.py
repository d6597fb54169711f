"""A replica promoted to voter starts its member run with no greeting to wait for (shell tier: the real
``ClusterManager._switch_role`` and ``MemberRuntime`` over a stand-in Raft store).

Only a join greets the member that admitted the node (``ClusterManager._greet`` sets the board's
``greeting``, which gossip's first seeding waits for). Before, a promotion started the run as a joiner,
so its board had a greeting that nothing set: the restarted gossip waited the whole ``GREETING_WAIT_S``
(1 s) before seeding, seeing no dead member meanwhile (docs/gossip.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from p2porch.config import load_config
from p2porch.membership import runtime as runtime_module
from p2porch.membership import voter_role
from p2porch.membership.localstate import LocalClusterState
from p2porch.membership.manager import ClusterManager
from p2porch.membership.token import new_token
from p2porch.raft.state import ClusterState

REPLICA = LocalClusterState(
    cluster_id="0123456789abcdef", token=str(new_token("0123456789abcdef")), node_id="id4", node_name="n4",
    role="replica", raft_addr="10.0.0.4:7947", voters=("10.0.0.1:7947",),
)  # fmt: skip


class _Store:
    commit_observer: Any = None
    command_readers: Any = None

    def snapshot(self) -> ClusterState:
        return ClusterState()


async def test_a_promoted_replica_waits_for_no_greeting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    configs: list[Any] = []

    @asynccontextmanager
    async def open_store(config: Any) -> AsyncIterator[_Store]:
        configs.append(config)
        await trio.sleep(0)
        yield _Store()

    async def idle(*args: Any, **kwargs: Any) -> None:
        await trio.sleep_forever()

    monkeypatch.setattr(runtime_module, "open_raft_store", open_store)
    monkeypatch.setattr(runtime_module, "trim_heap_after", idle)
    monkeypatch.setattr(voter_role, "watch_role", idle)
    config = load_config(env={}, overrides={"node.data_dir": str(tmp_path), "join.port": 0})
    manager = ClusterManager(config, "n4")
    voter = replace(REPLICA, role="voter")
    async with trio.open_nursery() as nursery:
        manager.runtime.attach(nursery)
        manager.local = REPLICA
        await manager.runtime.start(REPLICA)
        assert manager.runtime.board.greeting is None
        await manager._switch_role(REPLICA, voter)
        assert manager.local is voter
        assert configs[-1].join_hold_elections_s > 0  # still held as a joining voter ...
        assert manager.runtime.board.greeting is None  # ... but nothing greets: gossip seeds at once
        await manager.runtime.stop()
        await manager.runtime.start(voter, joining=True, greeting=True)  # what a join starts
        assert manager.runtime.board.greeting is not None
        nursery.cancel_scope.cancel()
