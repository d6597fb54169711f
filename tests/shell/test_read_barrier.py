"""The read barrier's trio side (control/read_barrier.py) with a stand-in store: concurrent reads share
rounds, a read waits for a round that started after it, a round that cannot commit refuses its reads
(StaleReadRefused, 503), ``stale=true`` and the sole leading voter skip it; a write through a node that
does not lead waits for a round, through the leader it does not. The real path (a Noop
committed through the leader of real daemons) is tests/integration/test_read_after_write.py."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
import trio

from p2porch.api.server import Endpoint
from p2porch.control.read_barrier import (
    READS_AS_POST,
    ReadBarrier,
    linearizable_reads,
    linearizable_writes,
)
from p2porch.errors import ConfigError, ProposalTimeout, RaftError, StaleReadRefused
from p2porch.raft import commands as C
from p2porch.raft.applied_mark import AppliedMark
from p2porch.raft.status import RaftStatus


def _status(is_leader: bool, voters: int) -> RaftStatus:
    return RaftStatus(
        self_addr="10.0.0.2:7947", role="leader" if is_leader else "follower", is_leader=is_leader,
        leader="10.0.0.1:7947", term=3, commit_index=9, last_applied=9,
        voters=tuple(f"10.0.0.{i}:7947" for i in range(1, voters + 1)), connected_voters=(),
        replicas_connected=0, has_quorum=True, ready=True, state_version=9, raft_thread_alive=True,
    )  # fmt: skip


class _Store:
    """Commits each barrier entry after ``commit_s`` (or never: ``fail``); counts them."""

    def __init__(self, *, is_leader: bool = False, voters: int = 3, commit_s: float = 0.05) -> None:
        self.state = _status(is_leader, voters)
        self.leads_now = is_leader  # the live role (``leader_commit_now``); ``state`` is the cached one
        self.commit = 9
        self.noop = 0  # the index of its election no-op, while it leads (``RaftBridge.leader_commit_now``)
        self.role = trio.Event()  # the role event (``RaftStore.role_event``)
        self.applied = AppliedMark()
        self.applied.delivered = 9  # the trio side serves the state of the commit index
        self.commit_s = commit_s
        self.fail = False
        self.writes: list[str] = []

    def status(self) -> RaftStatus:
        return replace(self.state, commit_index=self.commit)

    def role_event(self) -> trio.Event:
        return self.role

    def step_down(self) -> None:
        """Deposed: it no longer leads (a new leader won); the role event fires."""
        self.leads_now, self.state = False, _status(False, len(self.state.voters))
        fired, self.role = self.role, trio.Event()
        fired.set()

    def leader_commit_now(self) -> int | None:
        return max(self.commit, self.noop) if self.leads_now else None

    async def write(self, command: bytes, timeout_s: float = 5.0) -> Any:
        decoded = C.decode_command(command)
        assert isinstance(decoded, C.Noop)
        self.writes.append(str(decoded.tag))
        if self.fail:
            await trio.sleep(timeout_s)
            raise ProposalTimeout("no commit in time")
        await trio.sleep(self.commit_s)
        return decoded.tag


def _barrier(store: _Store, timeout_s: float = 5.0) -> ReadBarrier:
    return ReadBarrier(lambda: store, timeout_s)  # type: ignore[arg-type, return-value]


async def test_concurrent_reads_share_rounds_and_each_waits_for_one_started_after_it() -> None:
    store = _Store()
    barrier = _barrier(store)
    done: list[int] = []

    async def read(i: int) -> None:
        await barrier.wait()
        done.append(i)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read, 0)
        await trio.sleep(0.01)  # round 1 runs
        for i in range(1, 20):
            nursery.start_soon(read, i)  # arrive during round 1: they share round 2
    assert sorted(done) == list(range(20))
    assert store.writes == ["read barrier", "read barrier"]
    assert barrier.rounds.ok_through == 2


async def test_a_round_that_cannot_commit_refuses_its_reads_naming_why() -> None:
    store = _Store()
    store.fail = True
    barrier = _barrier(store, timeout_s=0.3)
    with pytest.raises(StaleReadRefused) as refused:
        await barrier.wait()
    assert refused.value.http_status == 503 and refused.value.field == "consistency"
    assert "not committed and applied here in time" in refused.value.message
    assert "10.0.0.1:7947" in refused.value.message and "stale=true" in refused.value.message
    store.fail = False
    await barrier.wait()  # the next read runs a new round, which commits


async def test_stale_reads_and_the_sole_leading_voter_answer_at_once() -> None:
    store = _Store()
    await _barrier(store).wait(stale_ok=True)
    sole = _Store(is_leader=True, voters=1)
    await _barrier(sole).wait()
    assert store.writes == [] and sole.writes == []
    leader_of_three = _Store(is_leader=True, voters=3)
    await _barrier(leader_of_three).wait()  # a leader confirms it still leads
    assert leader_of_three.writes == ["read barrier"]


async def test_only_get_routes_of_cluster_state_are_wrapped_and_stale_is_checked() -> None:
    store = _Store()
    seen: list[dict[str, Any]] = []

    async def handler(body: dict[str, Any], params: dict[str, str]) -> Any:
        seen.append(body)
        return "ok"

    endpoints = [
        Endpoint("GET", "/services", handler, "list"),
        Endpoint("GET", "/network", handler, "this node's overlay"),
        Endpoint("POST", "/services", handler, "create"),
        Endpoint("GET", "/events", handler, "stream", streaming=True),
    ]
    listing, network, create, events = linearizable_reads(_barrier(store), endpoints)
    assert (network.handler, create.handler, events.handler) == (handler, handler, handler)
    assert await listing.handler({"stale": "true", "all": "1"}, {}) == "ok"
    assert store.writes == [] and seen[-1] == {"all": "1"}  # the flag is the barrier's, not the handler's
    assert await listing.handler({"stale": "false"}, {}) == "ok"
    assert await listing.handler({}, {}) == "ok"
    assert store.writes == ["read barrier", "read barrier"]
    with pytest.raises(ConfigError) as bad:
        await listing.handler({"stale": "maybe"}, {})
    assert bad.value.field == "stale"


async def test_a_reader_whose_shared_round_failed_early_tries_the_next_round() -> None:
    # round 2 starts (to its starter's deadline, 0.3 s on) while the reader waits for it: the reader shares
    # it, and when it fails at 0.6 s the reader, with time left, runs round 3, which commits (healed)
    store = _Store()
    store.fail = True
    barrier = _barrier(store, timeout_s=3.0)
    done: list[str] = []

    async def starter() -> None:  # as a reader with an earlier deadline would
        await barrier._run_round(store, time.monotonic() + 0.3)  # round 1
        await barrier._run_round(store, time.monotonic() + 0.3)  # round 2, at once (no checkpoint)

    async def read() -> None:
        await trio.sleep(0.1)  # during round 1: needs round 2
        await barrier.wait()
        done.append("answered")

    async def heal() -> None:
        await trio.sleep(0.45)
        store.fail = False

    async with trio.open_nursery() as nursery:
        nursery.start_soon(starter)
        nursery.start_soon(read)
        nursery.start_soon(heal)
    assert done == ["answered"]  # on main: refused at 0.6 s, 2.5 s before its own deadline
    assert barrier.rounds.failed_round == 2 and barrier.rounds.ok_through == 3


async def test_a_reader_whose_store_restarted_reads_through_the_new_store() -> None:
    # the store restarts under a waiting reader: its round through the old store fails at once ("this
    # node's store restarted"); the reader takes the new store for the next round. On main it kept the
    # store it began with and retried it every 50 ms until its bound, then was refused
    new = _Store()
    current: list[_Store] = []

    class _Closed(_Store):
        async def write(self, command: bytes, timeout_s: float = 5.0) -> Any:
            self.writes.append("read barrier")
            current[0] = new  # it restarted: this one is closed
            raise RaftError("the store is closed")

    old = _Closed()
    current.append(old)
    barrier = ReadBarrier(lambda: current[0], timeout_s=1.0)  # type: ignore[arg-type, return-value]
    await barrier.wait()
    assert old.writes == ["read barrier"] and new.writes == ["read barrier"]
    # a node that left its cluster meanwhile (no store after the failed round): nothing to wait for
    old.writes.clear()

    def store_of() -> _Store | None:
        return None if old.writes else old

    left = ReadBarrier(store_of, timeout_s=1.0)  # type: ignore[arg-type]
    await left.wait()
    assert old.writes == ["read barrier"]


def test_the_bound_covers_the_stores_longest_election_never_below_the_floor() -> None:
    class _Config:
        election_timeout_max_s, heartbeat_period_s = 12.0, 1.0  # [raft] rtt_ms = 500

    store = _Store()
    barrier = _barrier(store)
    assert barrier.bound_s(store) == 5.0  # type: ignore[arg-type]  # no config: the floor
    store.config = _Config()  # type: ignore[attr-defined]
    assert barrier.bound_s(store) == 14.0  # type: ignore[arg-type]
    _Config.election_timeout_max_s, _Config.heartbeat_period_s = 1.2, 0.1  # the LAN defaults
    assert barrier.bound_s(store) == 5.0  # type: ignore[arg-type]


async def test_writes_through_a_follower_wait_for_a_round_and_through_the_leader_do_not() -> None:
    follower, leader = _Store(), _Store(is_leader=True)
    calls: list[str] = []

    async def handler(body: dict[str, Any], params: dict[str, str]) -> Any:
        calls.append(f"{body.get('n')} after {len(store.writes)} rounds")
        return "ok"

    endpoints = [
        Endpoint("POST", "/services/{service}/update", handler, "update"),
        Endpoint("DELETE", "/services/{service}", handler, "remove"),
        Endpoint("POST", "/cluster/init", handler, "membership: works with no leader"),
        Endpoint("POST", "/cluster/recover", handler, "membership: works with no quorum"),
        Endpoint("GET", "/services", handler, "a read: linearizable_reads' route"),
        Endpoint("POST", "/stream", handler, "a stream", streaming=True),
    ]
    for store in (follower, leader):
        update, remove, init, recover, listing, stream = linearizable_writes(_barrier(store), endpoints)
        assert {init.handler, recover.handler, listing.handler, stream.handler} == {handler}
        assert await update.handler({"n": 1}, {}) == "ok"
        assert await remove.handler({"n": 2}, {}) == "ok"
    assert follower.writes == ["read barrier", "read barrier"]  # each write saw a round start after it
    assert leader.writes == []  # the leader's own copy holds every acknowledged write
    assert calls == ["1 after 1 rounds", "2 after 2 rounds", "1 after 0 rounds", "2 after 0 rounds"]


async def test_a_write_whose_round_cannot_commit_is_refused_before_its_handler_runs() -> None:
    store = _Store()
    store.fail = True
    ran: list[str] = []

    async def handler(body: dict[str, Any], params: dict[str, str]) -> Any:
        ran.append("handler")
        return "ok"

    (update,) = linearizable_writes(
        _barrier(store, timeout_s=0.3), [Endpoint("POST", "/nodes/{node}/update", handler, "update")]
    )
    with pytest.raises(StaleReadRefused) as refused:
        await update.handler({}, {})
    assert refused.value.http_status == 503 and "the write was not proposed" in refused.value.message
    assert ran == []


async def test_a_write_through_a_leader_whose_apply_lags_its_commit_waits_for_that_state() -> None:
    # BoundedApply left entries 10..12 for the next tick (the commit index followers already know): the
    # write waits, without a round, until the trio side serves the state of 12. On main it ran at once,
    # against the state of 9 (404/409 for a record a follower had acknowledged)
    leader = _Store(is_leader=True)
    leader.commit = 12
    ran: list[int] = []

    async def handler(body: dict[str, Any], params: dict[str, str]) -> Any:
        ran.append(leader.applied.delivered)
        return "ok"

    (update,) = linearizable_writes(
        _barrier(leader), [Endpoint("POST", "/services/{s}/update", handler, "u")]
    )

    async def apply_next_ticks() -> None:
        for index in (10, 11, 12):
            await trio.sleep(0.02)
            assert ran == []
            leader.applied._note(index)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(apply_next_ticks)
        assert await update.handler({}, {}) == "ok"
    assert ran == [12] and leader.writes == []
    leader.commit = 13  # a commit the trio side never takes delivery of in time: refused, not run
    barrier = _barrier(leader, timeout_s=0.2)
    with pytest.raises(StaleReadRefused) as refused:
        await barrier.wait(write=True)
    assert "did not reach its commit index 13" in refused.value.message
    assert "the write was not proposed" in refused.value.message and ran == [12]


async def test_a_node_that_just_stopped_leading_plans_its_write_from_its_live_role() -> None:
    # the cached status (up to status_refresh_s old) still says leader; the live role says follower:
    # the write takes a round. On main it was planned LOCAL from the cached "leader"
    store = _Store(is_leader=True)
    store.leads_now = False
    await _barrier(store).wait(write=True)
    assert store.writes == ["read barrier"]
    store.state, store.leads_now = _status(False, 3), True  # the cache lags the other way: no round
    await _barrier(store).wait(write=True)
    assert store.writes == ["read barrier"]


async def test_a_stack_dry_run_plan_is_a_read_sent_as_post_and_honours_stale() -> None:
    # the plan writes nothing: a node without quorum answers it from its own copy when asked (stale),
    # and without stale it is a read's refusal (503, field consistency), not a write's
    store = _Store()
    seen: list[dict[str, Any]] = []

    async def handler(body: dict[str, Any], params: dict[str, str]) -> Any:
        seen.append(body)
        return "plan"

    (plan,) = linearizable_writes(
        _barrier(store),
        linearizable_reads(_barrier(store), [Endpoint("POST", "/stacks/{stack}/plan", handler, "dry run")]),
    )
    assert ("POST", "/stacks/{stack}/plan") in READS_AS_POST
    assert await plan.handler({"stale": "true", "services": []}, {}) == "plan"
    assert store.writes == [] and seen == [{"services": []}]
    assert await plan.handler({"services": []}, {}) == "plan"
    assert store.writes == ["read barrier"]  # one round: a read's, not a read's and a write's
    store.fail = True
    (refusing,) = linearizable_reads(
        _barrier(store, timeout_s=0.2), [Endpoint("POST", "/stacks/{stack}/plan", handler, "dry run")]
    )
    with pytest.raises(StaleReadRefused) as refused:
        await refusing.handler({}, {})
    assert "stale=true" in refused.value.message and "not proposed" not in refused.value.message


async def test_a_leader_deposed_before_its_election_entry_committed_plans_the_write_again() -> None:
    # elected a moment ago: its election no-op (10) is not committed (commit 9), so the write waits for it;
    # then a new leader with a shorter log wins. The role change plans the write again: a round through the
    # new leader. On main it held the write for the whole bound and refused it ("commit index 10")
    store = _Store(is_leader=True)
    store.noop = 10
    done: list[str] = []

    async def write() -> None:
        await _barrier(store, timeout_s=1.0).wait(write=True)
        done.append("the handler runs")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write)
        await trio.sleep(0.1)
        assert done == [] and store.writes == []  # waiting on the election no-op, no round yet
        store.step_down()
    assert done == ["the handler runs"] and store.writes == ["read barrier"]  # through the new leader


async def test_a_leader_whose_election_entry_never_commits_is_refused_naming_it() -> None:
    # still leading, cut off from its voters: its election no-op (10) never commits within the bound
    store = _Store(is_leader=True)
    store.noop = 10
    with pytest.raises(StaleReadRefused) as refused:
        await _barrier(store, timeout_s=0.2).wait(write=True)
    assert "election entry (index 10) was not committed" in refused.value.message
    assert "the write was not proposed" in refused.value.message and store.writes == []
