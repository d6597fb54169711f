"""Fixtures shared by the control tests: an in-memory cluster store and the service operations over it."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

from p2porch.control.node_ops import NodeOps
from p2porch.control.service_ops import ServiceOps
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import ClusterState
from p2porch.testing.memstore import MemoryManager, MemoryRaft


@pytest.fixture
def manager() -> MemoryManager:
    return MemoryManager()


@pytest.fixture
def ops(manager: MemoryManager) -> ServiceOps:
    return ServiceOps(manager, logs=None)  # type: ignore[arg-type]


@pytest.fixture
def node_ops() -> Callable[[ClusterState], tuple[NodeOps, MemoryRaft]]:
    """NodeOps over a one-voter memory Raft holding ``state``; its writes go through the real FSM."""

    def make(state: ClusterState) -> tuple[NodeOps, MemoryRaft]:
        raft = MemoryRaft(["10.0.0.1:7947"], leader="10.0.0.1:7947")
        raft.state = state
        store = raft.store("10.0.0.1:7947")

        async def write(command: bytes) -> object:
            raft.state, result, _ = apply(raft.state, command)
            return C.raise_for_result(result)

        cluster = SimpleNamespace(
            require_store=lambda: store,
            store=store,
            local=None,
            board=SimpleNamespace(
                gossip_states=lambda: {},
                engine_versions=lambda: {},
                engine_version="",
                key_epochs=lambda: {},
                architectures=lambda: {"id2": "aarch64"},  # by node id, as gossip names members
                architecture="x86_64",
            ),
            join_port=7948,
            config=SimpleNamespace(overlay=SimpleNamespace(vxlan_port=4789)),
            clock=SimpleNamespace(now=lambda: 2.0),
            write=write,
            snapshot=lambda: raft.state,
        )
        return NodeOps(cluster), raft  # type: ignore[arg-type]

    return make
