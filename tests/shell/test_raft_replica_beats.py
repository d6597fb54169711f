"""An idle read-only replica hears from the leader once per ``replica_heartbeat_period_s``, longer than the
voters' connection timeout, yet its connection stays up at both ends and writes still reach it at once
(a voter and a replica store in-process on loopback, real pysyncobj; raft/heartbeats.py)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import trio

from p2porch.raft import commands as C
from p2porch.raft.store import StoreConfig, open_raft_store
from p2porch.testing.raftprocs import free_ports

VOTER_TIMEOUT_S = 1.0  # the voters' connection timeout: shorter than a replica's idle heartbeat below
REPLICA_BEAT_S = 2.0  # replica connections then time out after 2.5 beats (5 s) at both ends


def cfg(data_dir: Path, self_addr: str | None, voters: list[str]) -> StoreConfig:
    return StoreConfig(
        self_addr=self_addr,
        voters=tuple(voters),
        data_dir=data_dir,
        password="p2il-shell",
        heartbeat_period_s=0.05,
        idle_heartbeat_period_s=0.1,
        heartbeat_answer_period_s=0.2,
        election_timeout_min_s=0.3,
        election_timeout_max_s=0.6,
        connection_timeout_s=VOTER_TIMEOUT_S,
        leader_fallback_timeout_s=VOTER_TIMEOUT_S,
        replica_heartbeat_period_s=REPLICA_BEAT_S,
    )


async def _applied(store: Any, index: int, within_s: float) -> bool:
    with trio.move_on_after(within_s):
        while store._so.raftLastApplied < index:
            await trio.sleep(0.005)
        return True
    return False


async def test_an_idle_replica_keeps_its_connection_and_gets_writes_at_once(tmp_path: Path) -> None:
    (addr,) = (f"127.0.0.1:{p}" for p in free_ports(1))
    async with contextlib.AsyncExitStack() as stack:
        voter = await stack.enter_async_context(open_raft_store(cfg(tmp_path / "v", addr, [addr])))
        await voter.wait_leader(timeout_s=20)
        await voter.write(C.InitCluster(at=time.time(), cluster_id="c1").encode(), timeout_s=10)
        replica = await stack.enter_async_context(open_raft_store(cfg(tmp_path / "r", None, [addr])))
        assert await _applied(replica, voter._so.raftCommitIndex, within_s=10)
        transport = voter._so._SyncObj__transport
        (node,) = transport._readonlyNodes
        # both ends of the replica's connection wait 2.5 beats; the voters' own timeout is unchanged
        assert transport._connections[node]._TcpConnection__timeout == 2.5 * REPLICA_BEAT_S
        (own,) = replica._so._SyncObj__transport._connections.values()
        assert own._TcpConnection__timeout == 2.5 * REPLICA_BEAT_S
        assert voter._so._SyncObj__conf.connectionTimeout == VOTER_TIMEOUT_S

        beats: list[float] = []  # the leader's appends to the replica (heartbeats: nothing is written)
        send = transport.send

        def counted(to: Any, message: Any) -> bool:
            if to == node:
                beats.append(time.monotonic())
            return bool(send(to, message))

        transport.send = counted
        await trio.sleep(3 * REPLICA_BEAT_S)  # idle: each beat comes after more than the voters' timeout
        assert transport._readonlyNodesCounter == 1  # the replica never reconnected
        assert voter.status().replicas_connected == 1
        assert 2 <= len(beats) <= 4, beats  # one per replica beat (a heartbeat every round: 60)
        gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
        assert all(gap > VOTER_TIMEOUT_S for gap in gaps), gaps

        # a write reaches the idle replica in the round that sends it, not at its next beat
        await trio.sleep(REPLICA_BEAT_S / 4)
        await voter.write(C.Noop(at=time.time(), tag=1).encode(), timeout_s=10)
        assert await _applied(replica, voter._so.raftCommitIndex, within_s=REPLICA_BEAT_S / 2)
        # and one forwarded by the replica after it idled past the voters' timeout commits
        await trio.sleep(REPLICA_BEAT_S * 0.75)
        await replica.write(C.Noop(at=time.time(), tag=2).encode(), timeout_s=10)
        assert transport._readonlyNodesCounter == 1
