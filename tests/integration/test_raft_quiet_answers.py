"""Followers answer idle heartbeats less (raft/heartbeat_answers.py), yet the leader neither steps down nor
commits later: three in-process voters and a replica on loopback with real pysyncobj."""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path

import pytest
import trio

from p2porch.raft import commands as C
from p2porch.raft.store import StoreConfig, open_raft_store
from p2porch.testing.raftprocs import free_ports

pytestmark = pytest.mark.integration


def cfg(data_dir: Path, self_addr: str | None, voters: list[str], **kw: object) -> StoreConfig:
    kw.setdefault("idle_heartbeat_period_s", 0.1)  # answers to every idle heartbeat are what is counted
    return StoreConfig(self_addr=self_addr, voters=tuple(voters), data_dir=data_dir, password="pw", **kw)  # type: ignore[arg-type]


async def _commit_latencies(store: object, count: int, pause_s: float) -> list[float]:
    """Seconds per write, each after ``pause_s`` of idling (so every write follows quiet heartbeats)."""
    out = []
    for i in range(count):
        await trio.sleep(pause_s)
        started = time.monotonic()
        await store.write(C.Noop(at=time.time(), tag=i).encode(), timeout_s=10)  # type: ignore[attr-defined]
        out.append(time.monotonic() - started)
    return out


@pytest.mark.parametrize("answer_period_s", [0.5, 2.0])
async def test_idle_followers_answer_less_and_the_leader_keeps_leading(
    tmp_path: Path, answer_period_s: float
) -> None:
    # 2.0 s needs longer connection and fallback timeouts (config validation): a write that waited for a
    # periodic answer would show ~1 s commits, so the latency check below cannot pass by luck
    slow = {"connection_timeout_s": 10.0, "leader_fallback_timeout_s": 10.0} if answer_period_s > 1 else {}
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    async with contextlib.AsyncExitStack() as stack:
        stores = {
            a: await stack.enter_async_context(
                open_raft_store(
                    cfg(tmp_path / a[-5:], a, addrs, heartbeat_answer_period_s=answer_period_s, **slow)
                )
            )
            for a in addrs
        }
        replica = await stack.enter_async_context(
            open_raft_store(
                cfg(tmp_path / "r", None, addrs, heartbeat_answer_period_s=answer_period_s, **slow)
            )
        )
        leader = await stores[addrs[0]].wait_leader(timeout_s=20)
        await stores[leader].write(C.InitCluster(at=time.time(), cluster_id="c1").encode(), timeout_s=10)
        term = stores[leader].status().term
        followers = [stores[a] for a in addrs if a != leader]
        skipped = [f._so.answers_skipped for f in followers]
        await trio.sleep(4.0)  # past the leader's 3 s fallback timeout, all idle
        status = stores[leader].status()
        assert status.is_leader and status.term == term and status.has_quorum
        for before, follower in zip(skipped, followers, strict=True):
            # ~10 heartbeats a second, at most 1/period of them answered when nothing changes
            assert follower._so.answers_skipped - before >= 20
            assert follower.status().leader == leader and follower.status().term == term
        latencies = await _commit_latencies(stores[leader], 8, pause_s=0.3)
        latencies += await _commit_latencies(replica, 4, pause_s=0.3)  # forwarded to the leader
        assert statistics.median(latencies) < 0.15, latencies  # commits do not wait for a periodic answer
        status = stores[leader].status()
        assert status.is_leader and status.term == term
        commit = status.commit_index

        def caught_up() -> bool:  # peers: the Raft thread's view, refreshed at least once a second
            peers = stores[leader].status().peers
            return len(peers) == 3 and all(p["match_index"] >= commit for p in peers.values())

        with trio.fail_after(5):  # both voters and the replica acknowledged every write
            while not caught_up():
                await trio.sleep(0.05)
        assert stores[leader].leader_changes.count == 0


async def test_an_idle_leader_heartbeats_at_the_idle_period_and_keeps_leading(tmp_path: Path) -> None:
    """raft/heartbeat_rounds.py: idle, the leader's rounds come every 200 ms (not 100 ms) with the same
    election timeouts; no follower starts an election, and a write goes out at once, not at the next round."""
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    async with contextlib.AsyncExitStack() as stack:
        stores = {
            a: await stack.enter_async_context(
                open_raft_store(cfg(tmp_path / a[-5:], a, addrs, idle_heartbeat_period_s=0.2))
            )
            for a in addrs
        }
        leader = await stores[addrs[0]].wait_leader(timeout_s=20)
        await stores[leader].write(C.InitCluster(at=time.time(), cluster_id="c1").encode(), timeout_s=10)
        term = stores[leader].status().term
        await trio.sleep(1.5)  # past the pacer's 1 s linger after the last commit
        before = stores[leader]._so.rounds_sent
        await trio.sleep(3.0)
        rounds = stores[leader]._so.rounds_sent - before
        assert 10 <= rounds <= 18, rounds  # ~15 at 200 ms; 30 at the 100 ms heartbeat
        latencies = await _commit_latencies(stores[leader], 6, pause_s=1.2)  # each write after idling
        assert statistics.median(latencies) < 0.15, latencies
        for store in stores.values():
            assert store.status().term == term and store.status().leader == leader
        assert stores[leader].leader_changes.count == 0
