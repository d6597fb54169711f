"""With corked frames on, a follower's answers leave in the tick that received the appends (durable_commit
flushes after the poll; transport_guard corks every frame until a flush)."""

from __future__ import annotations

from p2porch.raft.transport_guard import GuardedTCPTransport
from p2porch.testing.raft_bridges import elect_leader, loopback_voters, tick


def transport(so: object) -> GuardedTCPTransport:
    t: GuardedTCPTransport = so._SyncObj__transport  # type: ignore[attr-defined]
    return t


def test_a_followers_answer_is_written_before_its_tick_returns() -> None:
    with loopback_voters(3) as nodes:
        for so in nodes:
            transport(so).set_cork(True)  # off by default (transport_guard.CORK_FRAMES)
        leader = elect_leader(nodes)
        tick(nodes, rounds=5)
        followers = [so for so in nodes if so is not leader]
        done: list[object] = []
        before = leader.raftCommitIndex
        leader.apply_entry(b"entry", callback=lambda res, err: done.append(err))
        leader._onTick(0.0)  # the append leaves, flushed before the leader's poll (loopback: already there)
        assert not transport(leader).unflushed
        flushes = [transport(so).flushes for so in followers]
        for so in followers:
            so._onTick(0.0)  # receives the append in its poll, answers, flushes after the poll
            assert not transport(so).unflushed
            assert all(not c.corked for c in transport(so)._connections.values())
        assert all(transport(so).flushes > n for so, n in zip(followers, flushes, strict=True))  # answered
        leader._onTick(0.0)  # the answers are in: the entry commits in the leader's next tick
        leader._onTick(0.0)
        assert leader.raftCommitIndex > before
