"""The member side of a join (membership/admission.py) over the real FSM in memory (shell tier)."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.clock import TrioClock
from p2porch.config import Config
from p2porch.errors import ConfigError, ConflictError
from p2porch.membership.admission import Admissions
from p2porch.membership.keys import b64, keys_from_text, new_cluster_keys
from p2porch.membership.localstate import LocalClusterState
from p2porch.model import Node, NodeStatus
from p2porch.raft import commands as C
from p2porch.raft.frames import cluster_key
from p2porch.testing.memstore import MemoryRaft, MemoryStore

LOCAL = LocalClusterState(
    cluster_id="c0ffee0123456789",
    cluster_key=new_cluster_keys("c0ffee0123456789").to_text(),
    node_id="n1",
    node_name="n1",
    role="voter",
    raft_addr="10.0.0.1:7947",
    voters=("10.0.0.1:7947",),
)


def node_id(n: int) -> str:
    return f"{n:016x}"


def request(n: int, name: str | None = None) -> dict[str, object]:
    return {
        "node_id": node_id(n),
        "name": name or f"n{n}",
        "addr": f"10.0.0.{n}",
        "raft_port": 7947,
        "gossip_port": 7946,
        "labels": {"zone": "a"},
        "cpu_nanos": 2_000_000_000,
        "memory_bytes": 1 << 30,
        "key_pub": base64.b64encode(bytes([n]) * 32).decode(),  # the joiner's node key
    }


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def cluster_of_one() -> MemoryStore:
    store = MemoryRaft(["10.0.0.1:7947"], leader="10.0.0.1:7947").store("10.0.0.1:7947")
    await store.write(C.InitCluster(at=0.0, cluster_id=LOCAL.cluster_id).encode())
    await store.write(
        C.AddNode(
            at=0.0, node=Node(node_id="n1", name="n1", addr="10.0.0.1", raft_port=7947, gossip_port=7946)
        ).encode()
    )
    await store.write(C.UpdateNode(at=0.0, node_id="n1", role="voter").encode())
    return store


async def join(
    store: MemoryStore,
    body: dict[str, object],
    source: str | None = None,
    admissions: Admissions | None = None,
    write: Callable[[list[bytes]], Awaitable[Any]] | None = None,
    lock: trio.Lock | None = None,
) -> dict[str, object]:
    """``body`` as if it came over a connection from ``source`` (default: the address it claims)."""
    return await (admissions or Admissions()).admit(
        lambda: (store, LOCAL),
        write or store.write_together,
        Config(),
        TrioClock(),
        body,
        source or str(body["addr"]),
        lock or trio.Lock(),
    )


async def test_joiners_are_voters_until_the_target_then_replicas_with_a_leased_subnet() -> None:
    store = await cluster_of_one()
    roles = [(await join(store, request(n)))["role"] for n in (2, 3, 4)]
    assert roles == ["voter", "voter", "replica"]  # raft.voters = 3
    state = store.snapshot()
    assert {n.node_id: n.role for n in state.nodes.values()} == {
        "n1": "voter",
        node_id(2): "voter",
        node_id(3): "voter",
        node_id(4): "replica",
    }
    assert set(state.leases) == {
        node_id(2),
        node_id(3),
        node_id(4),
    }  # n1's own lease is init's job, not admission's
    reply = await join(store, request(5))
    assert reply["voters"] == ["10.0.0.1:7947", "10.0.0.2:7947", "10.0.0.3:7947"]
    assert (reply["cluster_id"], reply["cluster_key"]) == (LOCAL.cluster_id, LOCAL.cluster_key)
    assert "token" not in str(reply)  # the join token is never handed out, only the cluster key
    # and the Raft frames' key of that cluster key, so the joiner derives no PBKDF2 on its way in
    keys = keys_from_text(reply["cluster_id"], reply["key_epoch"], reply["cluster_key"])
    assert reply["raft_key"] == b64(cluster_key(keys.raft_password(reply["generation"])))


async def test_a_name_in_use_is_refused_and_nothing_is_written() -> None:
    store = await cluster_of_one()
    await join(store, request(2, name="web1"))
    before = store.snapshot().version
    with pytest.raises(ConflictError) as caught:
        await join(store, request(3, name="web1"))
    assert caught.value.field == "--name"
    assert store.snapshot().version == before


async def test_the_name_of_a_node_that_left_can_be_taken_again() -> None:
    store = await cluster_of_one()
    await join(store, request(2, name="web1"))
    await store.write(C.UpdateNode(at=0.0, node_id=node_id(2), status=NodeStatus.LEFT).encode())
    await join(store, request(3, name="web1"))
    state = store.snapshot()
    assert node_id(2) not in state.nodes
    assert state.node_by_name("web1") is not None and state.node_by_name("web1").node_id == node_id(3)


async def test_a_malformed_request_is_a_config_error_naming_the_request() -> None:
    store = await cluster_of_one()
    body = request(2)
    del body["raft_port"]
    before = store.snapshot().version
    with pytest.raises(ConfigError) as caught:
        await join(store, body)
    assert caught.value.field == "raft.port"
    assert store.snapshot().version == before


async def test_a_joiner_is_joining_until_gossip_sees_it_and_must_come_from_its_address() -> None:
    store = await cluster_of_one()
    await join(store, request(2))
    assert store.snapshot().nodes[node_id(2)].status == "joining"  # no tasks yet
    before = store.snapshot().version
    for body, source in (
        (request(3), "10.0.0.99"),
        (request(4, name="n4") | {"addr": "10.0.0.2"}, "10.0.0.2"),
    ):
        with pytest.raises(ConfigError) as caught:  # not its connection's address / another node's
            await join(store, body, source)
        assert caught.value.field == "--advertise-addr"
    assert store.snapshot().version == before


async def test_a_replica_from_its_own_address_is_ready_at_admission_one_behind_nat_is_joining() -> None:
    """A replica's admission is its join's only write (no ready mark later); a voter and a joiner
    behind NAT stay joining until gossip sees them (admission_plan.admitted_status)."""
    store = await cluster_of_one()
    for n in (2, 3):
        await join(store, request(n))  # voters (raft.voters = 3)
    before = store.snapshot().version
    await join(store, request(4))
    await join(store, request(5) | {"behind_nat": True}, "192.0.2.5")
    state = store.snapshot()
    assert [state.nodes[node_id(n)].status for n in (2, 3, 4, 5)] == [
        "joining",
        "joining",
        "ready",
        "joining",
    ]
    assert [state.nodes[node_id(n)].role for n in (4, 5)] == ["replica", "replica"]
    assert state.version == before + 4  # record and lease each, nothing else
    assert {node_id(4), node_id(5)} <= set(state.leases)
    # the ready replica's join run again from its own address is the same node: resumed, not refused
    again = await join(store, request(4))
    assert again["role"] == "replica" and store.snapshot().nodes[node_id(4)].status == "ready"


async def test_a_joiner_retrying_from_the_same_address_replaces_its_joining_record() -> None:
    store = await cluster_of_one()
    await join(store, request(2))  # its attempt "timed out" on the joiner's side, the record committed
    first = {n.node_id for n in store.snapshot().nodes.values() if n.name == "n2"}
    retry = {**request(2), "node_id": node_id(22)}  # the retry carries a fresh node id
    await join(store, retry)
    nodes = [n for n in store.snapshot().nodes.values() if n.name == "n2"]
    assert first == {node_id(2)} and [n.node_id for n in nodes] == [node_id(22)]
    assert node_id(2) not in store.snapshot().leases and node_id(22) in store.snapshot().leases


async def test_a_name_in_use_from_another_address_or_with_another_key_is_refused() -> None:
    store = await cluster_of_one()
    await join(store, request(2))
    with pytest.raises(ConflictError):  # same name, another host
        await join(store, {**request(3, name="n2"), "node_id": node_id(33)})
    with pytest.raises((ConflictError, ConfigError)):  # same name and address, another key: no retry
        await join(store, {**request(2), "node_id": node_id(22), "key_pub": request(9)["key_pub"]})
    await store.write(C.UpdateNode(at=1.0, node_id=node_id(2), status=NodeStatus.READY).encode())
    with pytest.raises((ConflictError, ConfigError)):  # a running node's name, asked for with another key
        await join(store, {**request(2), "node_id": node_id(22), "key_pub": request(9)["key_pub"]})


async def test_a_retry_after_the_joiner_failed_midway_keeps_its_record() -> None:
    store = await cluster_of_one()
    first = await join(store, request(2))
    # the joiner gave up (its record wait timed out) and runs the same join again: same id, address
    # and key
    before = store.snapshot()
    again = await join(store, request(2))
    assert again["role"] == first["role"] == "voter"
    # the record and the lease stand; one conditional write confirms the record is still the one seen
    after = store.snapshot()
    assert after.version == before.version + 1
    assert after.nodes[node_id(2)].status == NodeStatus.JOINING
    assert after.leases == before.leases
    await store.write(C.ReleaseSubnet(at=2.0, node_id=node_id(2)).encode())
    await join(store, request(2))  # a lease lost meanwhile is leased again
    assert node_id(2) in store.snapshot().leases


async def test_a_retry_for_a_voter_already_ready_is_refused_and_changes_nothing() -> None:
    # its failed attempt wiped its Raft state; back in the configuration with an empty journal it could
    # vote twice in a term (admission_plan.py). A replica past joining is resumed (unit tests).
    store = await cluster_of_one()
    await join(store, request(2))
    await store.write(C.UpdateNode(at=1.0, node_id=node_id(2), status=NodeStatus.READY).encode())
    before = store.snapshot().version
    for again in (request(2), {**request(2), "node_id": node_id(22)}):
        with pytest.raises((ConflictError, ConfigError)):  # its name, or its addresses, are taken
            await join(store, again)
    assert store.snapshot().version == before
    assert store.snapshot().nodes[node_id(2)].status == NodeStatus.READY


async def test_joins_that_arrive_together_are_planned_in_turn_and_committed_together() -> None:
    # eight joiners at once (the sandbox's formation): each is planned against the others still in
    # flight, so the voter seats are not over-given, and all eight writes wait for one commit round
    store = await cluster_of_one()
    admissions, lock = Admissions(), trio.Lock()
    replies: dict[int, dict[str, object]] = {}
    store.raft.hold()  # a commit in flight: nothing commits until released
    async with trio.open_nursery() as nursery:
        for n in range(2, 10):

            async def one(n: int = n) -> None:
                replies[n] = await join(store, request(n), admissions=admissions, lock=lock)

            nursery.start_soon(one)
        await trio.testing.wait_all_tasks_blocked()
        assert admissions.in_flight == 8  # all planned, none committed, none waiting for another
        assert set(store.snapshot().nodes) == {"n1"}
        store.raft.release()
    roles = [replies[n]["role"] for n in range(2, 10)]
    one_by_one = await cluster_of_one()
    expected = [(await join(one_by_one, request(n)))["role"] for n in range(2, 10)]
    assert (
        sorted(roles) == sorted(expected) and roles.count("voter") == 4
    )  # as one at a time: 5 voters with n1
    state = store.snapshot()
    assert {node_id(n) for n in range(2, 10)} <= set(state.leases)
    assert len({lease.subnet for lease in state.leases.values()}) == len(state.leases)
    assert admissions.in_flight == 0


async def test_a_name_or_an_address_in_flight_counts_as_taken() -> None:
    store = await cluster_of_one()
    admissions, lock = Admissions(), trio.Lock()
    outcome: dict[str, object] = {}
    store.raft.hold()
    async with trio.open_nursery() as nursery:

        async def first() -> None:
            outcome["first"] = await join(store, request(2, name="web1"), admissions=admissions, lock=lock)

        async def same_name() -> None:  # another node: waits for the first, then finds the name taken
            try:
                await join(store, request(3, name="web1"), admissions=admissions, lock=lock)
            except ConflictError as exc:
                outcome["same_name"] = exc

        nursery.start_soon(first)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(same_name)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(ConfigError) as caught:  # n2's address and ports, still in flight
            await join(
                store, request(4, name="web2") | {"addr": "10.0.0.2"}, "10.0.0.2", admissions, lock=lock
            )
        assert caught.value.field == "--advertise-addr"
        store.raft.release()
    assert isinstance(outcome["same_name"], ConflictError) and outcome["first"]["role"] == "voter"
    assert [n.node_id for n in store.snapshot().nodes.values() if n.name == "web1"] == [node_id(2)]


async def test_a_retry_while_its_first_attempt_is_in_flight_waits_for_it_and_writes_nothing_more() -> None:
    store = await cluster_of_one()
    admissions, lock = Admissions(), trio.Lock()
    replies: list[dict[str, object]] = []
    store.raft.hold()
    async with trio.open_nursery() as nursery:
        for _ in range(2):

            async def attempt() -> None:
                replies.append(await join(store, request(2), admissions=admissions, lock=lock))

            nursery.start_soon(attempt)
        await trio.testing.wait_all_tasks_blocked()
        assert admissions.in_flight == 1  # the second waits for the first's write
        version = store.snapshot().version
        store.raft.release()
    assert [r["role"] for r in replies] == ["voter", "voter"]
    # the record and the lease once, then the retry's check that the record it resumes is unchanged
    assert store.snapshot().version == version + 3
    assert [n.node_id for n in store.snapshot().nodes.values() if n.name == "n2"] == [node_id(2)]


class LaggingView:
    """A member whose applied state is behind the log: it reads ``seen``, its writes go to the log."""

    def __init__(self, seen: object) -> None:
        self.seen = seen

    def snapshot(self) -> object:
        return self.seen


async def test_a_lagging_member_cannot_resume_a_voter_the_log_already_made_ready() -> None:
    store = await cluster_of_one()
    await join(store, request(2))
    seen = store.snapshot()  # the member's view: n2 still joining
    await store.write(C.UpdateNode(at=1.0, node_id=node_id(2), status=NodeStatus.READY).encode())
    before = store.snapshot().version
    with pytest.raises(ConflictError):  # the conditional write meets the log's newer record
        await join(LaggingView(seen), request(2), "10.0.0.2", write=store.write_together)  # type: ignore[arg-type]
    assert store.snapshot().version == before
    assert store.snapshot().nodes[node_id(2)].status == NodeStatus.READY
