"""The subnet pool gives the lease the CIDR scan gave, over long random sequences of every command that
takes or frees a lease (joins, leaves, node removals, batches, snapshot installs, restores, replays of
the log, writes on an older state) and on hand-made snapshots with odd leases (raft/subnet_pool.py)."""

from __future__ import annotations

import dataclasses
import ipaddress
import random

import pytest

from p2porch.model import Node, SubnetLease
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply, apply_batch, encode_batch
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.raft.subnet_pool import SubnetPool

AT = 1000.0


def scanned(state: ClusterState) -> str | None:
    """The lowest free subnet as the FSM found it before the pool: every subnet of the CIDR in order."""
    taken = {lease.subnet for lease in state.leases.values()}
    cidr = ipaddress.IPv4Network(state.cluster_cidr)
    return next(
        (str(s) for s in cidr.subnets(new_prefix=state.subnet_prefix_len) if str(s) not in taken), None
    )


def check(state: ClusterState) -> None:
    """The carried pool answers as the scan does and holds what a pool built afresh holds."""
    pool = state.subnet_pool()
    assert pool.lowest_free() == scanned(state)
    fresh = SubnetPool.build(
        state.cluster_cidr, state.subnet_prefix_len, [lease.subnet for lease in state.leases.values()], {}
    )
    assert (pool.high, pool.holes, pool.shared) == (fresh.high, fresh.holes, fresh.shared)


def node(i: int) -> Node:
    return Node(f"id{i}", f"n{i}", f"10.0.{i // 250}.{i % 250 + 1}", 7947, 7946)


def lease_cmd(node_id: str) -> bytes:
    return C.LeaseSubnet(at=AT, node_id=node_id).encode()


class Walk:
    """One random history: the state, the log that made it and older states to write on."""

    def __init__(self, seed: int, cidr: str, prefix_len: int) -> None:
        self.rng = random.Random(seed)
        init = C.InitCluster(
            at=AT, cluster_id=f"c{seed:014d}"[:16], cluster_cidr=cidr, subnet_prefix_len=prefix_len
        )
        self.log: list[bytes] = []
        self.state = EMPTY_STATE
        self.run(init.encode())
        self.next_id = 1
        self.older: list[tuple[ClusterState, list[bytes]]] = []  # (state, the log that made it)

    def run(self, command: bytes) -> dict:
        """Apply one command as its own Raft entry (the store applies every entry as a batch)."""
        before = self.state
        entry = encode_batch([command])
        self.state, (result,), _ = apply_batch(self.state, entry)
        self.log.append(entry)
        if type(C.decode_command(command)) is C.LeaseSubnet and self.state is not before:
            assert result["value"] == scanned(before)  # the lease given is the one the scan gave
        return result

    def step(self) -> None:
        rng, state = self.rng, self.state
        ids = sorted(state.nodes)
        leased = sorted(state.leases)
        unleased = [i for i in ids if i not in state.leases]
        choice = rng.random()
        if choice < 0.25 or not ids:  # a join: the node, then its lease (one entry, as admission writes)
            n = node(self.next_id)
            self.next_id += 1
            batch = encode_batch([C.AddNode(at=AT, node=n).encode(), lease_cmd(n.node_id)])
            before = self.state
            self.state, results, _ = apply_batch(self.state, batch)
            self.log.append(batch)
            if results[1]["ok"]:
                assert results[1]["value"] == scanned(apply(before, C.AddNode(at=AT, node=n).encode())[0])
        elif choice < 0.40 and unleased:
            self.run(lease_cmd(rng.choice(unleased)))
        elif choice < 0.55 and leased:  # a leave gives the subnet back
            self.run(C.ReleaseSubnet(at=AT, node_id=rng.choice(leased)).encode())
        elif choice < 0.70:  # node rm
            self.run(C.RemoveNode(at=AT, node_id=rng.choice(ids)).encode())
        elif choice < 0.75 and leased:  # a lease asked for again: the same subnet, nothing written
            node_id = rng.choice(leased)
            assert self.run(lease_cmd(node_id))["value"] == state.leases[node_id].subnet
        elif choice < 0.80:  # a snapshot installed: the state from its plain form, no pool carried
            self.state = ClusterState.from_dict(self.state.to_dict())
        elif choice < 0.83:  # a forced recovery: the state restored into a new log
            restore = C.RestoreState(at=AT, state=self.state).encode()
            self.state, self.log, self.older = EMPTY_STATE, [], []
            self.run(restore)
        elif choice < 0.88 and self.older:  # a write on an older state (a reader's snapshot, a retry)
            old, log = self.older.pop(rng.randrange(len(self.older)))
            self.state, self.log = old, list(log)
            check(old)
        else:
            self.older.append((self.state, list(self.log)))
            self.older = self.older[-8:]
        check(self.state)

    def replayed(self) -> ClusterState:
        """The state a member rebuilds by applying the whole log again from nothing."""
        state = EMPTY_STATE
        for entry in self.log:
            state = apply_batch(state, entry)[0]
            check(state)
        return state


@pytest.mark.parametrize(
    ("cidr", "prefix_len"),
    [("10.0.0.0/22", 26), ("10.240.0.0/16", 24), ("172.16.0.0/12", 24)],  # 16 subnets: full often
)
@pytest.mark.parametrize("seed", range(12))
def test_the_pool_gives_the_scans_lease_over_random_histories(seed, cidr, prefix_len):
    walk = Walk(seed, cidr, prefix_len)
    for _ in range(600):
        walk.step()
    replayed = walk.replayed()
    assert dict(replayed.leases) == dict(walk.state.leases)


def test_a_full_cidr_refuses_as_the_scan_did():
    walk = Walk(1, "10.0.0.0/24", 26)  # 4 subnets
    for i in range(1, 6):
        walk.run(C.AddNode(at=AT, node=node(i)).encode())
    results = [walk.run(lease_cmd(f"id{i}")) for i in range(1, 6)]
    assert [r["value"] for r in results[:4]] == [f"10.0.0.{64 * i}/26" for i in range(4)]
    assert (results[4]["error"], results[4]["field"]) == ("ConflictError", "cluster_cidr")
    walk.run(C.RemoveNode(at=AT, node_id="id3").encode())
    assert walk.run(lease_cmd("id5"))["value"] == "10.0.0.128/26"


@pytest.mark.parametrize("seed", range(40))
def test_hand_made_snapshots_with_odd_leases(seed):
    """Leases a hand-made snapshot may hold: one subnet twice, texts that are no subnet of the CIDR
    (another length, outside it, host bits, not an address): the scan ignored the odd ones."""
    rng = random.Random(seed)
    cidr, prefix_len = "10.1.0.0/24", 28  # 16 subnets
    pick = [f"10.1.0.{16 * i}/28" for i in range(16)] + [
        "10.1.0.3/28", "10.1.0.0/27", "10.2.0.0/28", "10.1.0.16/24", "nonsense", "10.1.0.256/28",
        "10.1.0.016/28",
    ]  # fmt: skip
    nodes = {f"id{i}": node(i) for i in range(1, 40)}
    leases = {
        node_id: SubnetLease(node_id, rng.choice(pick)) for node_id in sorted(nodes) if rng.random() < 0.5
    }
    state = ClusterState(
        cluster_id="c1",
        cluster_cidr=cidr,
        subnet_prefix_len=prefix_len,
        nodes=nodes,
        leases=leases,
        version=5,
    )
    check(state)
    for _ in range(80):
        node_id = rng.choice(sorted(nodes))
        kind = rng.choice(["lease", "release", "remove"])
        if kind == "lease":
            before = state
            state, result, _ = apply(state, lease_cmd(node_id))
            if state is not before:
                assert result["value"] == scanned(before)
        elif kind == "release":
            state = apply(state, C.ReleaseSubnet(at=AT, node_id=node_id).encode())[0]
        elif node_id in state.nodes:
            state = apply(state, C.RemoveNode(at=AT, node_id=node_id).encode())[0]
        check(state)


def test_the_pool_is_carried_not_rebuilt_by_lease_writes():
    """A join's lease writes derive the pool from the last one (no rebuild per apply); a state whose
    leases map is another (a snapshot) builds its own."""
    walk = Walk(3, "10.240.0.0/16", 24)
    for i in range(1, 4):
        walk.run(C.AddNode(at=AT, node=node(i)).encode())
        walk.run(lease_cmd(f"id{i}"))
    pool = walk.state.subnet_pool()
    walk.run(C.AddNode(at=AT, node=node(9)).encode())
    walk.run(lease_cmd("id9"))
    assert walk.state._subnet_pool is not None and walk.state._subnet_pool.of is walk.state.leases
    assert walk.state.subnet_pool().high == pool.high + 1
    installed = ClusterState.from_dict(walk.state.to_dict())
    assert installed._subnet_pool is None
    assert installed.subnet_pool().lowest_free() == "10.240.4.0/24"


def test_a_state_whose_leases_were_replaced_by_hand_builds_its_own_pool():
    """``dataclasses.replace`` copies the pool with the other fields: it describes the old leases, so the
    state must not answer from it."""
    walk = Walk(5, "10.240.0.0/16", 24)
    for i in range(1, 4):
        walk.run(C.AddNode(at=AT, node=node(i)).encode())
        walk.run(lease_cmd(f"id{i}"))
    assert walk.state.subnet_pool().lowest_free() == "10.240.3.0/24"
    emptied = dataclasses.replace(walk.state, leases={"id2": SubnetLease("id2", "10.240.1.0/24")})
    assert emptied.subnet_pool().lowest_free() == scanned(emptied) == "10.240.0.0/24"
