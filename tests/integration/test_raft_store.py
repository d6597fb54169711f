"""The trio-facing store API against real pysyncobj on loopback (in-process, real files)."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path

import msgpack
import pytest
import trio

from p2porch.errors import ConfigError, ConflictError, NotLeaderError
from p2porch.model import ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.store import RaftStore, StoreConfig, open_raft_store
from p2porch.testing.raftprocs import free_ports

pytestmark = pytest.mark.integration


def create(service_id: str, name: str, **spec: object) -> bytes:
    service_spec = ServiceSpec.from_dict({"name": name, "image": "busybox", **spec})
    return C.CreateService(at=time.time(), service_id=service_id, spec=service_spec).encode()


def cfg(data_dir: Path, self_addr: str | None, voters: list[str], **kw: object) -> StoreConfig:
    return StoreConfig(self_addr=self_addr, voters=tuple(voters), data_dir=data_dir, password="pw", **kw)  # type: ignore[arg-type]


async def test_single_voter_write_subscribe_restart(tmp_path: Path) -> None:
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    conf = cfg(tmp_path / "d", addr, [addr])
    async with open_raft_store(conf) as store:
        assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o700
        await store.wait_leader()
        assert await store.write(C.InitCluster(at=time.time(), cluster_id="c1").encode()) == "c1"
        async with store.subscribe() as changes:
            base = store.snapshot()
            result = await store.propose(create("s1", "web", image="x"))
            assert result["ok"] and result["version"] == base.version + 1
            change = await changes.receive()
            assert (change.kind, change.op, change.key, change.version) == (
                "service",
                "put",
                "s1",
                base.version + 1,
            )
            assert store.snapshot().service_by_name("web") is not None
        refused = await store.propose(create("s2", "web"))
        assert refused["error"] == "ConflictError"
        with pytest.raises(ConflictError):
            await store.write(create("s2", "web"))
        # concurrent proposals are grouped into few Raft entries and all get their own result
        results: list[dict] = []

        async def one(i: int) -> None:
            results.append(await store.propose(create(f"c{i}", f"c{i}")))

        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(one, i)
        assert len(results) == 50 and all(r["ok"] for r in results)
        status = store.status()
        assert status.is_leader and status.role == "leader" and status.voters == (addr,)
        version = store.snapshot().version
    async with open_raft_store(conf) as store:
        with trio.fail_after(10):
            while store.snapshot().version < version:
                await trio.sleep(0.01)
        assert store.snapshot().version == version and "c49" in store.snapshot().services


async def test_compaction_dump_restores_state(tmp_path: Path) -> None:
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    conf = cfg(tmp_path / "d", addr, [addr], log_compaction_min_entries=4)
    async with open_raft_store(conf) as store:
        await store.wait_leader()
        await store.write(C.InitCluster(at=time.time(), cluster_id="c1").encode())
        for i in range(30):
            await store.write(create(f"s{i}", f"s{i}", replicas=i))
        with trio.fail_after(10):
            while not (tmp_path / "d" / "raft.dump").exists():
                await trio.sleep(0.02)
        version = store.snapshot().version
    written = (tmp_path / "d" / "raft.dump").read_bytes()  # written by a dump child: packb's bytes
    body = msgpack.unpackb(written, raw=False, strict_map_key=False)
    assert written == msgpack.packb(body, use_bin_type=True) and body["format"] == 1
    assert list(body) == ["format", "last", "prev", "cluster", "state"]
    async with open_raft_store(conf) as store, store.subscribe() as changes:
        with trio.fail_after(10):
            while store.snapshot().version < version:
                await trio.sleep(0.01)
        state = store.snapshot()
        assert len(state.services) == 30 and state.services["s7"].spec.replicas == 7
        kinds = set()
        while True:
            try:
                kinds.add(changes.receive_nowait().kind)
            except trio.WouldBlock:
                break
        await store.write(C.Noop(at=time.time()).encode())


async def test_add_voter_and_replica_follow(tmp_path: Path) -> None:
    a, b = (f"127.0.0.1:{p}" for p in free_ports(2))
    async with open_raft_store(cfg(tmp_path / "a", a, [a])) as sa:
        await sa.wait_leader()
        await sa.write(C.InitCluster(at=time.time(), cluster_id="c1").encode())
        # the joiner runs (as a voter knowing both addresses) before the leader adds it
        async with open_raft_store(cfg(tmp_path / "b", b, [a, b])) as sb:
            await sa.add_voter(b, timeout_s=15)
            async with open_raft_store(cfg(tmp_path / "r", None, [a, b])) as replica:
                await _replica_checks(sa, sb, replica, a, b)


async def _replica_checks(sa: RaftStore, sb: RaftStore, replica: RaftStore, a: str, b: str) -> None:
    # a write proposed on the replica is forwarded to the leader and applied everywhere
    value = await replica.write(create("s1", "web"), timeout_s=10)
    assert value == "s1"
    with trio.fail_after(10):
        while "s1" not in sb.snapshot().services:
            await trio.sleep(0.01)
    with trio.fail_after(5):  # status() is a view the Raft thread refreshes (about once a second)
        while not sa.status().voters == sb.status().voters == tuple(sorted([a, b])):
            await trio.sleep(0.05)
    assert replica.status().role == "replica" and await replica.wait_leader() in (a, b)


async def test_remove_voter_refuses_the_leader_at_once_and_is_idempotent(tmp_path: Path) -> None:
    """Regression (issue 14 CI): removing the leader from another node was retried as "denied" for the
    whole timeout and ended in "no answer from the Raft leader in time"; it can never succeed (a
    Raft leader does not remove itself), so it is refused at once naming the leader."""
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    async with contextlib.AsyncExitStack() as stack:
        stores = {
            a: await stack.enter_async_context(open_raft_store(cfg(tmp_path / a[-5:], a, addrs)))
            for a in addrs
        }
        leader = await stores[addrs[0]].wait_leader(timeout_s=20)
        await stores[leader].write(C.InitCluster(at=time.time(), cluster_id="c1").encode(), timeout_s=10)
        follower, other = (a for a in addrs if a != leader)
        with trio.fail_after(5), pytest.raises(NotLeaderError) as refused:
            await stores[follower].remove_voter(leader, timeout_s=10)
        assert refused.value.leader == leader and leader in stores[follower].status().voters
        await stores[follower].remove_voter(other, timeout_s=15)
        with trio.fail_after(5):  # status() is a view refreshed by the Raft thread
            while other in stores[follower].status().voters or other in stores[leader].status().voters:
                await trio.sleep(0.05)
        with trio.fail_after(5):
            await stores[follower].remove_voter(other, timeout_s=15)  # already out: done, not denied
        assert await stores[follower].write(create("s1", "web"), timeout_s=10) == "s1"


async def test_raft_thread_outlives_the_worker_thread_that_built_it(tmp_path: Path) -> None:
    """Regression: pysyncobj ends its Raft thread when its constructing thread ends; trio reaps idle
    worker threads after 10 s, which silently stopped every store 10 s after start."""
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    async with open_raft_store(cfg(tmp_path / "d", addr, [addr])) as store:
        await store.wait_leader()
        await trio.sleep(11.5)
        assert store.status().raft_thread_alive
        assert await store.write(C.InitCluster(at=time.time(), cluster_id="c1").encode(), timeout_s=5) == "c1"


def test_config_requires_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        StoreConfig(self_addr="127.0.0.1:1", voters=(), data_dir=tmp_path, password="").validate()
    with pytest.raises(ConfigError):
        StoreConfig(self_addr="nope", voters=(), data_dir=tmp_path, password="x").validate()
