"""Flow control per follower on real pysyncobj voters (our RaftBridge, three on loopback, ticked by the
test): a follower that stops reading makes the leader buffer at most about the bound for it, while the
other follower keeps hearing the leader and entries keep committing; once it reads again it catches up.
Without the bound the leader queues every entry for it."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from p2porch.raft.bridge import RaftBridge
from p2porch.raft.flow import FlowLimits
from p2porch.testing.raft_bridges import elect_leader, loopback_voters, tick

ENTRY = 100_000  # bytes per entry (random: compression keeps them whole): above the 64 KiB batch, in chunks
ENTRIES = 60
LIMIT = 512 * 1024


@pytest.fixture
def voters() -> Iterator[list[RaftBridge]]:
    with loopback_voters() as nodes:  # 30 s connection timeout: the stalled follower's outlives the test
        yield nodes


def _node_of(leader: RaftBridge, follower: RaftBridge) -> Any:
    return next(n for n in leader._SyncObj__otherNodes if n.id == follower.selfNode.id)


def _flow_line_after_a_round(
    leader: RaftBridge, nodes: list[RaftBridge], caplog: pytest.LogCaptureFixture
) -> str:
    """Make the leader's 5 s flow line due, tick until its next round; the line ("" when none)."""
    caplog.clear()
    leader._flow_logged_at = 0.0
    rounds, deadline = leader.rounds_sent, time.monotonic() + 5
    with caplog.at_level(logging.INFO, logger="p2porch.raft.heartbeat_rounds"):
        while leader.rounds_sent == rounds and time.monotonic() < deadline:
            tick(nodes)
            time.sleep(0.005)
        tick(nodes)  # (the round's own messages, flushed before this tick's poll)
    assert leader.rounds_sent > rounds
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("raft flow")]
    return "\n".join(lines)


def test_an_idle_leader_logs_no_flow_line(voters: list[RaftBridge], caplog: pytest.LogCaptureFixture) -> None:
    """Its own heartbeats, queued by a round until the tick's flush, are no backlog (the line said
    "voters: buffered max 162 B" every 5 s)."""
    leader = elect_leader(voters)
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:  # settled: the first rounds' answers read
        tick(voters)
        time.sleep(0.005)
    for _ in range(3):
        assert _flow_line_after_a_round(leader, voters, caplog) == ""


def test_a_follower_that_stops_reading_is_bounded_and_the_other_keeps_committing(
    voters: list[RaftBridge], caplog: pytest.LogCaptureFixture
) -> None:
    leader = elect_leader(voters)
    slow, fast = (so for so in voters if so is not leader)
    leader.flow_limits = FlowLimits(max_buffered_bytes=LIMIT)
    slow_node, fast_node = _node_of(leader, slow), _node_of(leader, fast)
    for _ in range(ENTRIES):
        leader.apply_entry(os.urandom(ENTRY))
    target = leader._SyncObj__raftLog[-1][1] + ENTRIES
    largest, deadline = 0, time.monotonic() + 60
    fast_heard: set[float] = set()
    while fast.raftCommitIndex < target and time.monotonic() < deadline:
        tick([leader, fast])  # the slow follower does not tick: it reads nothing
        largest = max(largest, leader._buffered(slow_node), leader._buffered(fast_node))
        fast_heard.add(fast._SyncObj__raftElectionDeadline)
    assert fast.raftCommitIndex >= target  # a majority (leader + fast) committed every entry
    assert leader._isLeader() and fast._getLeader() is not None
    assert len(fast_heard) > 1  # its election deadline kept moving: it heard the leader
    assert largest <= LIMIT + 2 * ENTRY  # the bound plus at most one entry's chunks and a heartbeat
    # the slow one was held back (the total: the 5 s log line resets the per-period counts)
    assert leader.flow_stats.held_ever > 0
    line = _flow_line_after_a_round(leader, [leader, fast], caplog)  # the backlog is in the 5 s line
    match = re.search(r"voters: buffered max (\d+) B", line)
    assert match is not None and int(match.group(1)) > 0, line
    deadline = time.monotonic() + 60
    while slow._SyncObj__raftLog[-1][1] < target and time.monotonic() < deadline:
        tick(voters)  # it reads again: it catches up
    assert slow._SyncObj__raftLog[-1][1] >= target
    assert leader._isLeader()


def test_unbounded_the_leader_queues_far_more_than_followers_read(
    voters: list[RaftBridge],
) -> None:
    """pysyncobj's own pipelining (flow control off): the same load queues megabytes for the followers,
    the one that reads among them (entries re-sent after each acknowledgement rewinds the next index)."""
    leader = elect_leader(voters)
    slow, fast = (so for so in voters if so is not leader)
    leader.flow_limits = None
    nodes = [_node_of(leader, so) for so in (slow, fast)]
    for _ in range(ENTRIES):
        leader.apply_entry(os.urandom(ENTRY))
    largest, deadline = 0, time.monotonic() + 30
    while largest <= 8 * LIMIT and time.monotonic() < deadline:
        tick([leader, fast])
        largest = max(largest, *(leader._buffered(node) for node in nodes))
    assert largest > 8 * LIMIT
