"""An in-memory store for shell tests: the store interface over the real FSM, no Raft, no I/O."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from p2porch.raft import commands as C
from p2porch.raft import fsm
from p2porch.raft.state import ClusterState
from p2porch.raft.store import RaftStatus


class MemoryStore:
    """The store interface over the real FSM in memory; this node (the first voter) leads unless
    ``leader`` says otherwise. Commits are instant."""

    def __init__(self, voters: tuple[str, ...]) -> None:
        self.state = ClusterState()
        self.voters = voters
        self.leader: str | None = voters[0]  # None: this node sees no leader
        self.voter_changes: list[tuple[str, str]] = []
        self._subscribers: list[trio.MemorySendChannel[Any]] = []

    def snapshot(self) -> ClusterState:
        return self.state

    def status(self) -> RaftStatus:
        return RaftStatus(
            self_addr=self.voters[0],
            role="leader" if self.leader == self.voters[0] else "follower",
            is_leader=self.leader == self.voters[0],
            leader=self.leader,
            term=1,
            commit_index=self.state.version,
            last_applied=self.state.version,
            voters=self.voters,
            connected_voters=self.voters,
            replicas_connected=0,
            has_quorum=True,
            ready=True,
            state_version=self.state.version,
            raft_thread_alive=True,
        )

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[trio.MemoryReceiveChannel[Any]]:
        send, receive = trio.open_memory_channel[Any](1000)
        self._subscribers.append(send)
        try:
            async with receive:
                yield receive
        finally:
            self._subscribers.remove(send)

    async def write(self, command: bytes, timeout_s: float = 5.0) -> Any:
        self.state, result, changes = fsm.apply(self.state, command)
        for send in self._subscribers:
            for change in changes:
                send.send_nowait(change)
        return C.raise_for_result(result)

    async def add_voter(self, addr: str, timeout_s: float = 10.0) -> None:
        self.voter_changes.append(("add", addr))
        self.voters = (*self.voters, addr)

    async def remove_voter(self, addr: str, timeout_s: float = 10.0) -> None:
        self.voter_changes.append(("remove", addr))
        self.voters = tuple(v for v in self.voters if v != addr)
