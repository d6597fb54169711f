"""Raft traffic with a node outside the configuration (raft/outside_config.py), on pysyncobj's real TCP
transport with our guard, on loopback: a stranger's appends reach pysyncobj and nothing else does, the
connection becomes the node's own once the configuration adds it, and a leader dials a voter that
should dial it and does not know it (a node that knows it refuses that dial)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pysyncobj.node import TCPNode
from test_raft_transport_frames import PASSWORD, Host, pump

from p2porch.raft import outside_config
from p2porch.raft.transport_guard import GuardedTCPTransport
from p2porch.testing.raftprocs import free_ports

APPEND = {"type": "append_entries", "term": 7, "commit_index": 3, "entries": []}
VOTE = {"type": "request_vote", "term": 9, "last_log_term": 7, "last_log_index": 3}


class RaftHost(Host):
    """A Host that says whether it leads (the leader's reverse dials ask), which node it names as
    leader and whether that leader is live (pre_vote_elections' ``leader_live``)."""

    def __init__(self, leads: bool = False) -> None:
        super().__init__(PASSWORD)
        self.leads = leads
        self.leader: TCPNode | None = None
        self.live = True

    def _isLeader(self) -> bool:  # noqa: N802 (pysyncobj's)
        return self.leads

    def _getLeader(self) -> Any:  # noqa: N802
        return self.leader

    def leader_live(self) -> bool:
        return self.live


def start(host: RaftHost, me: TCPNode, others: list[TCPNode]) -> GuardedTCPTransport:
    transport = GuardedTCPTransport(host, me, others)
    transport.setOnMessageReceivedCallback(lambda node, message: host.received.append((node, message)))
    transport.setOnNodeConnectedCallback(host.connected.append)
    transport.tryGetReady()
    return transport


@contextlib.contextmanager
def stale_and_leader(
    stale: TCPNode, other: TCPNode, leader: TCPNode
) -> Iterator[tuple[RaftHost, RaftHost, GuardedTCPTransport, GuardedTCPTransport]]:
    """A stale node configured with ``other`` only and a leader configured with both: hosts, transports,
    the stale node's connected to the leader as a stranger."""
    stale_host, leader_host = RaftHost(), RaftHost(leads=True)
    stale_t = start(stale_host, stale, [other])  # the stale node's configuration lacks the leader
    leader_t = start(leader_host, leader, [stale, other])
    try:
        pump([stale_host, leader_host], lambda: bool(stale_t.strangers))
        assert stale_t.stranger_stats.accepted == 1
        yield stale_host, leader_host, stale_t, leader_t
    finally:
        stale_t.destroy()
        leader_t.destroy()


@pytest.fixture
def nodes() -> Iterator[list[TCPNode]]:
    """Three loopback addresses, lowest first (pysyncobj's dialler is the higher address)."""
    yield [TCPNode(a) for a in sorted(f"127.0.0.1:{p}" for p in free_ports(3))]


def test_a_stranger_dialling_in_gets_its_appends_taken_and_nothing_else(nodes: list[TCPNode]) -> None:
    stale, other, leader = nodes  # the leader has the highest address: it dials the stale node
    with stale_and_leader(stale, other, leader) as (stale_host, leader_host, stale_t, leader_t):
        assert leader_t.send(stale, VOTE) and leader_t.send(stale, APPEND)
        pump([stale_host, leader_host], lambda: bool(stale_host.received))
        assert [m for _, m in stale_host.received] == [APPEND]  # the vote was dropped
        assert stale_t.stranger_stats.dropped == 1 and stale_t.stranger_stats.appends == 1
        assert stale_t.send(leader, {"type": "next_node_idx", "term": 7})  # its answer goes back
        pump([stale_host, leader_host], lambda: bool(leader_host.received))
        # a proposal is never forwarded to it: it would commit with its answer (a stranger's) dropped
        assert not stale_t.send(leader, {"type": "apply_command", "command": b"c", "request_id": 1})
        assert stale_t.stranger_stats.withheld == 1
        stale_host.raftCurrentTerm = 8  # an older term's append (a removed leader) is not taken either
        assert leader_t.send(stale, APPEND)
        pump([stale_host, leader_host], lambda: stale_t.stranger_stats.dropped == 2)
        assert [m for _, m in stale_host.received] == [APPEND]
        del stale_host.raftCurrentTerm
        assert stale_host.connected == []  # not a connected voter to pysyncobj until it is added
        stale_t.addNode(leader)  # the log reached the add: the connection is the node's own
        assert leader in stale_host.connected and stale_t.strangers == {}
        assert leader_t.send(stale, VOTE)
        pump([stale_host, leader_host], lambda: len(stale_host.received) == 2)
        assert stale_host.received[-1][1] == VOTE  # a voter of the configuration: its votes count


def test_the_leader_dials_a_voter_that_should_dial_it(
    nodes: list[TCPNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outside_config, "REVERSE_DIAL_AFTER_S", 0.1)
    leader, other, stale = nodes  # the stale node has the highest address: it would have to dial
    with stale_and_leader(stale, other, leader) as (stale_host, leader_host, stale_t, leader_t):
        assert leader_t.stranger_stats.reverse_dials >= 1
        assert leader_t.send(stale, APPEND)
        pump([stale_host, leader_host], lambda: bool(stale_host.received))
        stale_t.addNode(leader)  # the stale node dials from now on: the leader's dial is closed
        pump([stale_host, leader_host], lambda: leader in stale_host.connected)
        assert stale_t.stranger_stats.promoted == 1


def test_a_node_that_knows_the_leader_refuses_its_dial(
    nodes: list[TCPNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outside_config, "REVERSE_DIAL_AFTER_S", 0.1)
    leader, _, follower = nodes
    follower_host, leader_host = RaftHost(), RaftHost(leads=True)
    leader_t = start(leader_host, leader, [follower])
    follower_t = start(follower_host, follower, [leader])
    follower_t._lastConnectAttempt[leader] = float("inf")  # slow to dial: the leader dials it
    try:
        pump([follower_host, leader_host], lambda: follower_t.stranger_stats.refused_reverse >= 1)
        assert follower_t.strangers == {} and leader not in follower_host.connected
        del follower_t._lastConnectAttempt[leader]  # it dials: one connection, its own
        pump([follower_host, leader_host], lambda: leader in follower_host.connected)
    finally:
        follower_t.destroy()
        leader_t.destroy()


def test_a_leader_refuses_a_removed_voter_dialling_it(nodes: list[TCPNode]) -> None:
    """A voter removed while cut off still has the leader in its configuration and dials it: refused as
    before (taken as a stranger it looked connected to a leader, never learnt it was removed and never
    restarted as a replica: test_multisite_cut)."""
    leader, other, removed = nodes  # the removed node has the highest address: it dials the leader
    leader_host, removed_host = RaftHost(leads=True), RaftHost()
    leader_t = start(leader_host, leader, [other])  # the leader's configuration lacks it
    removed_t = start(removed_host, removed, [leader, other])
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            for host in (leader_host, removed_host):
                host.tick()
        assert leader_t.strangers == {} and leader_t.stranger_stats.accepted == 0
    finally:
        removed_t.destroy()
        leader_t.destroy()


def test_a_silent_old_leader_does_not_keep_the_new_one_out(nodes: list[TCPNode]) -> None:
    """A voter cut off while its leader was deposed names it again, connected, once the cut heals: that
    pointer alone must not refuse the new leader (outside its configuration); a stranger taken while no
    live leader was heard is closed once one is (a removed voter must not stay connected)."""
    stale, old, leader = nodes  # both others have higher addresses: they dial the stale node
    stale_host, old_host, leader_host = RaftHost(), RaftHost(), RaftHost(leads=True)
    stale_host.leader, stale_host.live = old, False  # the old leader: connected, no append for a while
    stale_t = start(stale_host, stale, [old])
    old_t = start(old_host, old, [stale])
    leader_t = None
    try:
        pump([stale_host, old_host], lambda: old in stale_host.connected)
        leader_t = start(leader_host, leader, [stale, old])
        pump([stale_host, old_host, leader_host], lambda: bool(stale_t.strangers))
        assert stale_t.stranger_stats.accepted == 1  # before: refused while the old leader was connected
        assert leader_t.send(stale, APPEND)
        pump([stale_host, old_host, leader_host], lambda: bool(stale_host.received))
        assert [m for _, m in stale_host.received] == [APPEND]
        stale_host.live = True  # the old leader's appends again (it leads a minority): the stranger goes
        pump([stale_host, old_host, leader_host], lambda: stale_t.stranger_stats.closed == 1)
        assert stale_t.strangers == {}
        deadline = time.monotonic() + 0.5  # its redials are refused while that leader is live
        while time.monotonic() < deadline:
            for host in (stale_host, old_host, leader_host):
                host.tick()
        assert stale_t.strangers == {} and stale_t.stranger_stats.accepted == 1
        stale_host.leader = leader  # following the new leader (its append came first): it is kept
        stale_host.live = False
        pump([stale_host, old_host, leader_host], lambda: bool(stale_t.strangers))
        stale_host.live = True
        for _ in range(20):
            stale_host.tick()
        assert list(stale_t.strangers) == [leader.address] and stale_t.stranger_stats.closed == 1
    finally:
        for transport in (stale_t, old_t, leader_t):
            if transport is not None:
                transport.destroy()
