"""A request that arrives while this member's Raft store restarts (a role switch: autopilot promoting a
replica; a key switch: every member's after ``node rm``) waits for the store instead of being told "this
node is not part of a cluster (run p2porch init or p2porch join)", as ``service scale`` on n4 was in the
h48 walk while autopilot made n4 a voter after n3's daemon was killed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.api.server import Endpoint
from p2porch.clock import SYSTEM_CLOCK
from p2porch.config import load_config
from p2porch.control.store_wait import waiting_for_store
from p2porch.errors import ConflictError
from p2porch.membership import runtime as runtime_module
from p2porch.membership import voter_role
from p2porch.membership.localstate import LocalClusterState
from p2porch.membership.manager import ClusterManager
from p2porch.membership.runtime import MemberRuntime, no_store_reason
from p2porch.membership.token import new_token
from p2porch.raft.state import ClusterState

LOCAL = LocalClusterState(
    cluster_id="0123456789abcdef", token=str(new_token("0123456789abcdef")), node_id="id4", node_name="n4",
    role="replica", raft_addr="10.0.0.4:7947", voters=("10.0.0.1:7947",),
)  # fmt: skip


class _Store:
    commit_observer: Any = None
    command_readers: Any = None  # the runtime sets the write gate's readers (member/command_reads.py)

    def snapshot(self) -> ClusterState:
        return ClusterState()


class _JoinService:
    async def serve(self, addr: str, port: int, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()


class _Member:
    """What the wait reads of the cluster manager: its local state, its store and its runtime."""

    def __init__(self, runtime: MemberRuntime, local: LocalClusterState | None) -> None:
        self.runtime, self.local = runtime, local

    @property
    def store(self) -> Any:
        return self.runtime.store


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MemberRuntime:
    @asynccontextmanager
    async def open_store(config: Any) -> AsyncIterator[_Store]:
        await trio.sleep(0)
        yield _Store()

    async def idle(*args: Any, **kwargs: Any) -> None:
        await trio.sleep_forever()

    monkeypatch.setattr(runtime_module, "open_raft_store", open_store)
    monkeypatch.setattr(runtime_module, "trim_heap_after", idle)
    monkeypatch.setattr(voter_role, "watch_role", idle)
    return MemberRuntime(
        load_config(), tmp_path / "raft", _JoinService(), [], SYSTEM_CLOCK, save_voters=lambda local: None,  # type: ignore[arg-type]
        switch_role=lambda expected, local: None,
    )  # fmt: skip


def _node_ls(member: _Member) -> Any:
    async def handler(body: dict[str, Any], params: dict[str, str]) -> Any:
        if member.store is None:
            raise ConflictError(no_store_reason(member.local is not None), field="cluster")
        return ["n1", "n4"]

    return handler


async def test_a_request_during_a_store_restart_waits_for_it_and_is_answered(runtime: MemberRuntime) -> None:
    member = _Member(runtime, LOCAL)
    (endpoint,) = waiting_for_store(member, [Endpoint("GET", "/nodes", _node_ls(member), "")])  # type: ignore[arg-type]
    answers: list[Any] = []
    async with trio.open_nursery() as nursery:
        runtime.attach(nursery)
        await runtime.start(LOCAL)
        assert await endpoint.handler({}, {}) == ["n1", "n4"]
        await runtime.stop()  # the switch: the old store stops ...

        async def ask() -> None:
            answers.append(await endpoint.handler({}, {}))

        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        assert answers == []  # ... the request waits ...
        with trio.fail_after(5):
            await runtime.start(LOCAL)  # ... the new one runs
            while not answers:
                await trio.sleep(0.01)
        assert answers == [["n1", "n4"]]
        nursery.cancel_scope.cancel()


async def test_a_store_not_back_in_time_says_it_restarts_and_a_non_member_is_answered_at_once(
    runtime: MemberRuntime,
) -> None:
    async with trio.open_nursery() as nursery:
        runtime.attach(nursery)
        await runtime.start(LOCAL)
        await runtime.stop()
        member = _Member(runtime, LOCAL)
        (slow,) = waiting_for_store(member, [Endpoint("GET", "/nodes", _node_ls(member), "")], 0.05)  # type: ignore[arg-type]
        with trio.fail_after(5), pytest.raises(ConflictError, match="store is restarting"):
            await slow.handler({}, {})
        outsider = _Member(runtime, None)
        (endpoint,) = waiting_for_store(outsider, [Endpoint("GET", "/nodes", _node_ls(outsider), "")])  # type: ignore[arg-type]
        with trio.fail_after(1), pytest.raises(ConflictError, match="not part of a cluster"):
            await endpoint.handler({}, {})
        nursery.cancel_scope.cancel()


async def test_a_promoted_replica_waits_for_no_greeting(runtime: MemberRuntime, tmp_path: Path) -> None:
    """Only a join greets the member that admitted the node (``ClusterManager._greet`` sets the board's
    ``greeting``, which gossip's first seeding waits for). Before, a promotion (the real ``_switch_role``)
    started the run as a joiner, so its board had a greeting nothing set: the restarted gossip waited the
    whole ``GREETING_WAIT_S`` (1 s) before seeding, seeing no dead member meanwhile (docs/gossip.md)."""
    config = load_config(env={}, overrides={"node.data_dir": str(tmp_path), "join.port": 0})
    manager = ClusterManager(config, "n4")  # its runtime opens the fixture's stand-in store
    voter = replace(LOCAL, role="voter")
    async with trio.open_nursery() as nursery:
        manager.runtime.attach(nursery)
        manager.local = LOCAL
        await manager.runtime.start(LOCAL)
        assert manager.runtime.board.greeting is None
        await manager._switch_role(LOCAL, voter)
        assert manager.local is voter and manager.runtime.board.greeting is None  # gossip seeds at once
        await manager.runtime.stop()
        await manager.runtime.start(voter, joining=True, greeting=True)  # what a join starts
        assert manager.runtime.board.greeting is not None
        nursery.cancel_scope.cancel()
