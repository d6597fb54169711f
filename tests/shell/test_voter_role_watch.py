"""The voter-role watcher under trio's MockClock (shell tier: in-memory store, the join port faked).

``watch_role`` gets a :class:`~p2porch.membership.voter_role.RoleWatch` (store, board, clock and two
callbacks) instead of the manager; these tests drive it over the real FSM and check what it asks its
owner to do: remember new voters, restart in the recorded role, and, after seeing no leader for a while,
ask its peers how the cluster records it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.clock import TrioClock
from p2porch.context import LocalBoard
from p2porch.errors import AuthError
from p2porch.membership import key_rotation, removal, voter_role
from p2porch.membership.localstate import LocalClusterState
from p2porch.membership.token import new_token
from p2porch.model import Node
from p2porch.raft import commands as C
from p2porch.testing.memstore import MemoryRaft, MemoryStore

VOTERS = ("10.0.0.1:7947", "10.0.0.2:7947", "10.0.0.3:7947")


def record(n: int, role: str = "voter") -> Node:
    return Node(
        node_id=f"n{n}", name=f"n{n}", addr=f"10.0.0.{n}", raft_port=7947, gossip_port=7946, role=role
    )


class Owner:
    """What the watcher may ask of its owner, recorded with the mock time it asked."""

    def __init__(self) -> None:
        self.saved: list[LocalClusterState] = []
        self.switched: list[tuple[LocalClusterState, LocalClusterState, float]] = []
        self.switch_asked = trio.Event()
        self.removed: list[tuple[LocalClusterState, str]] = []
        self.removed_asked = trio.Event()

    def save_voters(self, local: LocalClusterState) -> None:
        self.saved.append(local)

    def switch_role(self, expected: LocalClusterState, new: LocalClusterState) -> None:
        self.switched.append((expected, new, trio.current_time()))
        self.switch_asked.set()

    def remove(self, expected: LocalClusterState, why: str) -> None:
        self.removed.append((expected, why))
        self.removed_asked.set()


async def setup(
    nodes: list[Node],
) -> tuple[MemoryStore, LocalClusterState, Owner, voter_role.RoleWatch]:
    clock = TrioClock()
    store = MemoryRaft(VOTERS, leader=VOTERS[0]).store(VOTERS[0])
    await store.write(C.InitCluster(at=clock.now(), cluster_id="c0ffee").encode())
    for node in nodes:
        await store.write(C.AddNode(at=clock.now(), node=node).encode())
    # This node is n2, started as a voter with the three voters in its cluster.json.
    local = LocalClusterState(
        cluster_id="c0ffee",
        token=str(new_token("c0ffee" * 2 + "abcd")),
        node_id="n2",
        node_name="n2",
        role="voter",
        raft_addr="10.0.0.2:7947",
        voters=VOTERS,
    )
    owner = Owner()
    watch = voter_role.RoleWatch(
        store=store,
        board=LocalBoard(),
        join_port=7948,
        clock=clock,
        save_voters=owner.save_voters,
        switch_role=owner.switch_role,
        removed=owner.remove,
    )
    return store, local, owner, watch


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_a_node_recorded_as_replica_restarts_as_one(autojump_clock: Any) -> None:
    store, local, owner, watch = await setup([record(1), record(2), record(3), record(4, "replica")])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(voter_role.watch_role, watch, local)
        # The leader's autopilot demotes n2 and promotes n4.
        await store.write(C.UpdateNode(at=0.0, node_id="n2", role="replica").encode())
        await store.write(C.UpdateNode(at=0.0, node_id="n4", role="voter").encode())
        await owner.switch_asked.wait()
    [(expected, new, _)] = owner.switched
    assert expected is local
    assert (new.role, new.voters) == ("replica", ("10.0.0.1:7947", "10.0.0.3:7947", "10.0.0.4:7947"))


async def test_new_recorded_voters_are_saved_without_a_restart(autojump_clock: Any) -> None:
    store, local, owner, watch = await setup([record(1), record(2), record(3), record(4, "replica")])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(voter_role.watch_role, watch, local)
        await store.write(C.UpdateNode(at=0.0, node_id="n4", role="voter").encode())
        while not owner.saved:
            await trio.sleep(voter_role.ROLE_CHECK_S)
        nursery.cancel_scope.cancel()
    assert owner.saved[-1] == replace(local, voters=(*VOTERS, "10.0.0.4:7947"))
    assert owner.switched == []


async def test_a_leaderless_voter_asks_its_peers_after_a_while_and_follows_their_record(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, local, owner, watch = await setup([record(1), record(2), record(3)])
    asked: list[tuple[str, float]] = []

    async def join_port_answer(host: str, port: int, token: Any, request: Any, **kwargs: Any) -> Any:
        asked.append((host, trio.current_time()))
        # The peers see a leader and record this node as a replica of a newer generation.
        return {"leader": "10.0.0.1:7947", "role": "replica", "voters": ["10.0.0.1:7947"], "generation": 1}

    monkeypatch.setattr(voter_role, "request_join", join_port_answer)
    store.raft.set_leader(None)  # this node has lost its leader
    lost_at = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(voter_role.watch_role, watch, local)
        await owner.switch_asked.wait()
    [(_, new, switched_at)] = owner.switched
    assert (new.role, new.voters, new.generation) == ("replica", ("10.0.0.1:7947",), 1)
    assert asked and {host for host, _ in asked} <= {"10.0.0.1", "10.0.0.3"}  # its peers, never itself
    # It waited LEADERLESS_ASK_S without a leader (measured on the clock it was given) before asking.
    assert min(at for _, at in asked) - lost_at >= voter_role.LEADERLESS_ASK_S
    assert switched_at - lost_at <= voter_role.LEADERLESS_ASK_S + 2 * voter_role.ROLE_CHECK_S


def peers_answer(monkeypatch: pytest.MonkeyPatch, answer: Any) -> None:
    """Every join-port question (role, key, removal) is answered by ``answer``."""
    for module in (voter_role, removal, key_rotation):
        monkeypatch.setattr(module, "request_join", answer)


async def test_a_leaderless_node_its_peers_no_longer_record_leaves(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`node rm` took it out while it ran: it cannot follow, and its peers' newer state holds no record of
    it (they answer the key question, the one they serve to an older key epoch): it asks its owner to
    leave, and does not ask again meanwhile for a role."""
    store, local, owner, watch = await setup([record(1), record(2), record(3)])
    since = store.snapshot().nodes["n2"].version
    keys_asked: list[str] = []

    async def join_port_answer(host: str, port: int, token: Any, request: Any, **kwargs: Any) -> Any:
        if request.get("op") != "keys":
            raise AuthError("only the key question is served to an older epoch")
        keys_asked.append(host)
        return {"key_epoch": 2, "envelope": None, "member": False, "version": since + 7, "generation": 0}

    peers_answer(monkeypatch, join_port_answer)
    store.raft.set_leader(None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(voter_role.watch_role, watch, local)
        with trio.fail_after(30):
            await owner.removed_asked.wait()
        nursery.cancel_scope.cancel()
    [(expected, why)] = owner.removed
    assert expected is local and why.endswith("holds no record of it") and owner.switched == []
    assert set(keys_asked) <= {"10.0.0.1", "10.0.0.3"}


async def test_a_node_that_still_hears_the_leader_leaves_once_its_record_is_deleted(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`node rm` whose key rotation failed: the removed replica keeps following the leader, so it never
    goes leaderless and never asks its peers; its own replicated state tells it, within a check."""
    store, local, owner, watch = await setup([record(1), record(2, "replica"), record(3)])
    local = replace(local, role="replica", voters=(VOTERS[0], VOTERS[2]))

    async def nobody_asked(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a node that follows the leader asks no peer")

    peers_answer(monkeypatch, nobody_asked)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(voter_role.watch_role, watch, local)
        await trio.sleep(3 * voter_role.ROLE_SAFETY_CHECK_S)  # settled, following: stays
        assert owner.removed == []
        removed_at = trio.current_time()
        await store.write(C.RemoveNode(at=0.0, node_id="n2").encode())
        with trio.fail_after(30):
            await owner.removed_asked.wait()
        asked_at = trio.current_time()
        await trio.sleep(10 * voter_role.ROLE_CHECK_S)  # asked once, not on every check after
        nursery.cancel_scope.cancel()
    [(expected, why)] = owner.removed
    assert expected is local and "record was deleted" in why and owner.switched == []
    assert asked_at - removed_at <= 2 * voter_role.ROLE_CHECK_S  # the commit woke the check


async def test_a_leaderless_node_its_peers_still_record_stays(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, local, owner, watch = await setup([record(1), record(2), record(3)])
    version = store.snapshot().version

    async def join_port_answer(host: str, port: int, token: Any, request: Any, **kwargs: Any) -> Any:
        if request.get("op") == "keys":
            return {"key_epoch": 0, "envelope": None, "member": True, "version": version, "generation": 0}
        return None  # no leader seen there either (a partition): nothing to follow

    peers_answer(monkeypatch, join_port_answer)
    store.raft.set_leader(None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(voter_role.watch_role, watch, local)
        await trio.sleep(5 * voter_role.LEADERLESS_ASK_S)
        nursery.cancel_scope.cancel()
    assert owner.removed == [] and owner.switched == []


def count_checks(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The mock times at which the watcher ran a check."""
    checks: list[float] = []
    check = voter_role._check_role

    async def counted(*args: Any) -> Any:
        checks.append(trio.current_time())
        return await check(*args)

    monkeypatch.setattr(voter_role, "_check_role", counted)
    return checks


async def test_a_settled_node_does_not_check_every_second_and_wakes_on_a_commit(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, local, owner, watch = await setup([record(1), record(2), record(3), record(4, "replica")])
    checks = count_checks(monkeypatch)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(voter_role.watch_role, watch, local)
        await trio.sleep(60.0)
        # idle with a leader: the safety checks only (it used to check 60 times)
        assert 1 <= len(checks) <= 60 / voter_role.ROLE_SAFETY_CHECK_S + 1
        idle_checks = len(checks)
        committed_at = trio.current_time()
        await store.write(C.UpdateNode(at=0.0, node_id="n4", role="voter").encode())
        while not owner.saved:
            await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    # the commit woke one check, one ROLE_CHECK_S later (no safety period waited)
    assert len(checks) == idle_checks + 1
    assert checks[-1] - committed_at <= voter_role.ROLE_CHECK_S + 0.01
    assert owner.saved[-1] == replace(local, voters=(*VOTERS, "10.0.0.4:7947"))


async def test_a_settled_node_wakes_on_a_gossip_change(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, local, owner, watch = await setup([record(1), record(2), record(3)])
    checks = count_checks(monkeypatch)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(voter_role.watch_role, watch, local)
        await trio.sleep(3.5)
        before = len(checks)
        watch.board.gossip_changed()
        await trio.sleep(voter_role.ROLE_CHECK_S + 0.1)
        nursery.cancel_scope.cancel()
    assert before == 1  # settled after its first check
    assert len(checks) == before + 1


async def test_a_settled_voter_that_loses_its_leader_asks_its_peers_in_time(
    autojump_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, local, owner, watch = await setup([record(1), record(2), record(3)])
    asked: list[float] = []

    async def join_port_answer(host: str, port: int, token: Any, request: Any, **kwargs: Any) -> Any:
        asked.append(trio.current_time())
        return {"leader": "10.0.0.1:7947", "role": "replica", "voters": ["10.0.0.1:7947"], "generation": 1}

    monkeypatch.setattr(voter_role, "request_join", join_port_answer)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(voter_role.watch_role, watch, local)
        await trio.sleep(25.5)  # settled, in the middle of a safety wait
        store.raft.set_leader(None)  # the role change wakes the watcher
        lost_at = trio.current_time()
        await owner.switch_asked.wait()
    [(_, new, switched_at)] = owner.switched
    assert new.role == "replica"
    assert min(asked) - lost_at >= voter_role.LEADERLESS_ASK_S
    assert switched_at - lost_at <= voter_role.LEADERLESS_ASK_S + 2 * voter_role.ROLE_CHECK_S
