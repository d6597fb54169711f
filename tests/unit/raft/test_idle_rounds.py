"""An idle leader's append rounds (raft/heartbeat_rounds.py) come at the idle period, a busy one's at the
heartbeat; the mixin runs over a stand-in for pysyncobj's round (what it schedules and who it sends to)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from p2porch.errors import ConfigError
from p2porch.raft.flow import FlowLimits
from p2porch.raft.heartbeat_rounds import QuietReplicaRounds
from p2porch.raft.heartbeats import ReplicaHeartbeats
from p2porch.raft.pacer import TickPacer
from p2porch.raft.store_config import StoreConfig
from p2porch.raft.timing import DEFAULT, timing_for_rtt


class _Conf:
    appendEntriesPeriod = 0.1


class _Transport:
    _connections: dict[Any, Any] = {}  # noqa: RUF012 (no connection: nothing buffered)


class _PysyncobjRound:
    """What pysyncobj's ``__sendAppendEntries`` does that the mixin relies on: it schedules the next
    round one ``appendEntriesPeriod`` after now (on its own clock) and sends to voters and replicas."""

    def __init__(self) -> None:
        self._SyncObj__conf = _Conf()
        self._SyncObj__readonlyNodes: set[Any] = {"r1"}
        self._SyncObj__connectedNodes: set[Any] = {"v1", "r1"}
        self._SyncObj__raftCommitIndex = 5
        self._SyncObj__raftLog = [(b"", 5, 1)]
        self._SyncObj__raftNextIndex = {"v1": 6, "r1": 6}
        self._SyncObj__raftMatchIndex = {"v1": 5, "r1": 5}
        self._SyncObj__otherNodes: set[Any] = {"v1"}
        self._SyncObj__transport = _Transport()
        self._SyncObj__newAppendEntriesTime = 0.0
        self.clock = 100.0  # pysyncobj's own clock (CLOCK_MONOTONIC_RAW), unrelated to time.monotonic
        self.sent_to: list[set[Any]] = []

    def _SyncObj__sendAppendEntries(self) -> None:  # noqa: N802
        self._SyncObj__newAppendEntriesTime = self.clock + self._SyncObj__conf.appendEntriesPeriod
        self.sent_to.append({"v1"} | self._SyncObj__readonlyNodes)


class _Leader(QuietReplicaRounds, _PysyncobjRound):
    def __init__(self, pacer: TickPacer | None, idle_round_s: float) -> None:
        super().__init__()
        self._replica_beats = ReplicaHeartbeats(2.0)
        self.round_pacer = pacer
        self.idle_round_s = idle_round_s


def _round(leader: _Leader) -> float:
    """One round; seconds until the next one is due."""
    leader._SyncObj__sendAppendEntries()
    return leader._SyncObj__newAppendEntriesTime - leader.clock


def test_an_idle_leader_waits_the_idle_period_and_a_busy_one_the_heartbeat() -> None:
    pacer = TickPacer(busy_period_s=0.005, idle_period_s=0.5, linger_s=1.0)
    leader = _Leader(pacer, idle_round_s=0.2)
    assert _round(leader) == pytest.approx(0.2)  # idle: nothing seen yet
    pacer.work(time.monotonic())  # a proposal (the mixin reads time.monotonic, as the store does)
    assert _round(leader) == pytest.approx(0.1)
    assert leader.rounds_sent == 2
    assert leader.sent_to[0] == {"v1", "r1"}  # voters in every round, the replica's first beat too


def test_an_idle_leader_keeps_the_heartbeat_while_a_connected_peer_still_lacks_entries() -> None:
    leader = _Leader(TickPacer(busy_period_s=0.005, idle_period_s=0.5), idle_round_s=0.2)
    leader._SyncObj__raftLog = [(b"", 5, 1), (b"x", 6, 1)]  # the round had no time to send entry 6 to v1
    assert _round(leader) == pytest.approx(0.1)
    leader._SyncObj__connectedNodes.discard("v1")  # a peer that is not connected does not hold it back
    leader._SyncObj__raftNextIndex["r1"] = 7
    assert _round(leader) == pytest.approx(0.2)


def test_without_a_pacer_or_an_idle_period_rounds_keep_pysyncobj_s_heartbeat() -> None:
    assert _round(_Leader(None, idle_round_s=0.2)) == pytest.approx(0.1)
    assert _round(_Leader(TickPacer(0.005, 0.5), idle_round_s=0.0)) == pytest.approx(0.1)


def test_the_idle_period_fits_two_and_a_half_times_in_the_shortest_election_timeout() -> None:
    base = {"self_addr": None, "voters": ("1.2.3.4:7947",), "data_dir": Path("."), "password": "x"}
    StoreConfig(**base).validate()  # type: ignore[arg-type]
    assert StoreConfig(**base).idle_heartbeat_period_s == DEFAULT.idle_heartbeat_s == 0.2  # type: ignore[arg-type]
    StoreConfig(**base, idle_heartbeat_period_s=0.0).validate()  # type: ignore[arg-type]  # off
    with pytest.raises(ConfigError) as info:
        StoreConfig(**base, idle_heartbeat_period_s=0.25).validate()  # type: ignore[arg-type]
    assert info.value.field == "idle_heartbeat_period_s"
    for rtt_s in (0.0, 0.06, 0.15, 0.3, 1.0):
        timing = timing_for_rtt(rtt_s)
        assert timing.idle_heartbeat_s == pytest.approx(2 * timing.heartbeat_s)
        assert 2.5 * timing.idle_heartbeat_s == pytest.approx(timing.election_min_s)


def test_an_idle_leader_reads_its_followers_buffers_only_for_the_flow_log_line() -> None:
    pacer = TickPacer(busy_period_s=0.005, idle_period_s=0.5, linger_s=1.0)
    leader = _Leader(pacer, idle_round_s=0.2)
    for _ in range(10):  # idle: the first round logs (and so reads), the next nine within 5 s do not
        _round(leader)
    assert (leader.rounds_sent, leader.flow_samples) == (10, 1)
    assert leader.flow_stats.rounds == 9  # every round is counted (the first log line took its own)
    leader._flow_logged_at -= 5.0  # the next log line is due: it reads them once more
    _round(leader)
    assert leader.flow_samples == 2
    pacer.work(time.monotonic())  # busy (a proposal): every round reads them again
    for _ in range(3):
        _round(leader)
    assert leader.flow_samples == 5
    assert leader.flow_stats.max_inflight == {"voter": 0, "replica": 0}  # what was read is still counted


def test_without_a_pacer_every_round_reads_its_followers_buffers() -> None:
    leader = _Leader(None, idle_round_s=0.2)
    for _ in range(4):
        _round(leader)
    assert leader.flow_samples == 4


def test_a_lone_voter_with_flow_control_leaves_a_quiet_replica_out() -> None:
    leader = _Leader(None, idle_round_s=0.0)
    leader.flow_limits = FlowLimits()  # as the store runs: one pysyncobj call per follower
    leader._flow_broken = set()
    leader._SyncObj__otherNodes = set()  # no other voter: a quiet replica left nobody to send to
    leader._SyncObj__connectedNodes = {"r1"}
    for _ in range(3):
        _round(leader)
    # the stand-in's round always names "v1"; the replica hears the first round only (then quiet for 2 s)
    assert [sent - {"v1"} for sent in leader.sent_to] == [{"r1"}, set(), set()]
    assert leader._SyncObj__readonlyNodes == {"r1"}  # still connected, restored after each round


def test_with_flow_control_a_round_with_nothing_to_send_is_one_pysyncobj_round() -> None:
    leader = _Leader(None, idle_round_s=0.0)
    leader.flow_limits = FlowLimits()
    leader._flow_broken = set()
    _round(leader)  # every follower holds entry 5, the log's end: heartbeats only, one call for all
    assert leader.sent_to == [{"v1", "r1"}]
    leader._SyncObj__raftLog = [(b"", 5, 1), (b"x", 6, 1)]  # entry 6 for both: one call per follower
    _round(leader)
    assert leader.sent_to[1:] == [{"v1"}, {"v1", "r1"}]  # (the stand-in names "v1" in every call)
    leader._SyncObj__raftNextIndex = {"v1": 7, "r1": 7}
    leader._SyncObj__raftCommitIndex = 6
    _round(leader)  # caught up again (the moved commit index still reaches the replica)
    assert leader.sent_to[3:] == [{"v1", "r1"}]


class _Connection:
    """A follower's connection as the flow sample reads it: what its socket refused plus the cork."""

    def __init__(self) -> None:
        self.refused = 0  # bytes the socket would not take (a follower that does not read)
        self.corked = 0  # this tick's frames, handed to the socket at the tick's flush

    def getSendBufferSize(self) -> int:  # noqa: N802 (pysyncobj's)
        return self.refused + self.corked

    def refused_bytes(self) -> int:
        return self.refused


class _CorkingRound(_PysyncobjRound):
    """pysyncobj's round, corking one heartbeat (162 B) per follower it sends to."""

    conns: dict[str, _Connection]

    def _SyncObj__sendAppendEntries(self) -> None:  # noqa: N802
        super()._SyncObj__sendAppendEntries()
        for node in self.sent_to[-1]:
            self.conns[node].corked += 162


class _CorkingLeader(QuietReplicaRounds, _CorkingRound):
    def __init__(self) -> None:
        super().__init__()
        self._replica_beats = ReplicaHeartbeats(2.0)
        self.round_pacer = TickPacer(busy_period_s=0.005, idle_period_s=0.5, linger_s=1.0)
        self.idle_round_s = 0.2
        self.flow_limits = FlowLimits()
        self._flow_broken = set()
        self.conns = {"v1": _Connection(), "r1": _Connection()}
        self._SyncObj__transport = type("T", (), {"_connections": self.conns})()

    def tick(self) -> None:
        """A tick of an idle leader: its round, then the flush before the poll."""
        self._SyncObj__sendAppendEntries()
        for conn in self.conns.values():
            conn.corked = 0


def _flow_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("raft flow")]


def test_an_idle_leader_logs_no_flow_line_for_its_own_queued_heartbeats(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """This round's heartbeats, corked until the tick's flush, are no backlog (it logged ``voters:
    buffered max 162 B`` every 5 s)."""
    caplog.set_level(logging.INFO, logger="p2porch.raft.heartbeat_rounds")
    leader = _CorkingLeader()
    for _ in range(3):
        leader._flow_logged_at = 0.0  # a log line due at every round
        leader.tick()
    assert leader.flow_samples == 3
    assert _flow_lines(caplog) == []


def test_a_follower_that_does_not_read_still_makes_the_flow_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="p2porch.raft.heartbeat_rounds")
    leader = _CorkingLeader()
    leader.tick()
    leader.conns["v1"].refused = 4096  # the socket refused what the last flush handed it
    leader._flow_logged_at = 0.0
    leader.tick()
    (line,) = _flow_lines(caplog)
    assert "voters: buffered max 4096 B" in line


def test_a_quiet_replica_whose_answer_moved_its_next_index_back_is_in_the_next_round() -> None:
    """The quiet set is kept between rounds; an answer that moves a replica's next index makes the next
    round look again (``ReplicaHeartbeats.changed``), so the replica that lacks entries gets them."""
    leader = _Leader(None, idle_round_s=0.0)
    leader.flow_limits = FlowLimits()
    leader._flow_broken = set()
    _round(leader)
    _round(leader)
    assert [sent - {"v1"} for sent in leader.sent_to] == [{"r1"}, set()]  # quiet after its first beat
    leader._SyncObj__raftNextIndex["r1"] = 4  # its answer: it holds entries up to 3 only (a refusal)
    leader._flow_answered("r1", 6, {"success": False, "reset": True})
    _round(leader)
    assert "r1" in leader.sent_to[-1]
