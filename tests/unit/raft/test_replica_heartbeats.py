"""ReplicaHeartbeats: which read-only replicas an idle leader's append round may leave out.
EarlyRounds: when the leader sends a round ahead of its heartbeat period. replica_connection_timeout_s: the
read timeout of a replica's connection, at both ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from p2porch.errors import ConfigError
from p2porch.raft.heartbeats import EarlyRounds, ReplicaHeartbeats, replica_connection_timeout_s
from p2porch.raft.store_config import StoreConfig


def test_a_replica_never_sent_to_is_never_left_out():
    beats = ReplicaHeartbeats(period_s=1.0)
    assert beats.quiet({"r1"}, {"r1": 11}, last_log_index=10, commit_index=10, now=0.0) == set()


def test_a_caught_up_replica_is_left_out_until_its_period_ends():
    beats = ReplicaHeartbeats(period_s=1.0)
    beats.sent({"r1", "r2"}, commit_index=10, now=0.0)
    next_index = {"r1": 11, "r2": 11}
    assert beats.quiet({"r1", "r2"}, next_index, 10, 10, now=0.5) == {"r1", "r2"}
    assert beats.quiet({"r1", "r2"}, next_index, 10, 10, now=1.0) == set()


def test_new_entries_or_a_moved_commit_index_reach_a_replica_at_once():
    beats = ReplicaHeartbeats(period_s=1.0)
    beats.sent({"r1", "r2"}, commit_index=10, now=0.0)
    # r1 lacks entry 11 (its next index is 11, the log ends at 11); r2 already got it
    assert beats.quiet({"r1", "r2"}, {"r1": 11, "r2": 12}, 11, 10, now=0.1) == {"r2"}
    # the commit index moved to 11: both must hear it
    assert beats.quiet({"r1", "r2"}, {"r1": 12, "r2": 12}, 11, 11, now=0.2) == set()


def test_forget_drops_replicas_that_went_away():
    beats = ReplicaHeartbeats(period_s=1.0)
    beats.sent({"r1", "r2"}, commit_index=3, now=0.0)
    beats.forget({"r2"})
    assert beats.quiet({"r1", "r2"}, {"r1": 4, "r2": 4}, 3, 3, now=0.1) == {"r2"}


def test_an_early_round_goes_at_once_but_at_most_once_per_gap():
    rounds = EarlyRounds(min_gap_s=0.01)
    assert rounds.due(now=5.0, scheduled=5.1) == 5.0  # a node connected: its round now
    assert rounds.due(now=5.002, scheduled=5.1) == 5.01  # a refusal right after: one gap later
    assert rounds.due(now=5.003, scheduled=5.1) == 5.02  # and the next one gap after that
    assert rounds.due(now=5.2, scheduled=5.25) == 5.2


def test_an_early_round_never_postpones_the_scheduled_heartbeat():
    rounds = EarlyRounds(min_gap_s=0.01)
    assert rounds.due(now=5.0, scheduled=5.1) == 5.0
    assert rounds.due(now=5.001, scheduled=5.005) == 5.005  # due before the gap is over anyway
    assert rounds.due(now=5.02, scheduled=5.1) == 5.02  # the scheduled round was no early one


def test_a_replica_connection_times_out_after_two_and_a_half_beats_never_before_the_voters() -> None:
    assert replica_connection_timeout_s(beat_s=4.0, connection_timeout_s=3.0) == 10.0
    assert replica_connection_timeout_s(beat_s=0.5, connection_timeout_s=3.0) == 3.0  # the voters' floor
    assert replica_connection_timeout_s(beat_s=2.0, connection_timeout_s=1.0) == 5.0


def test_only_a_replica_store_gets_the_longer_connection_timeout() -> None:
    def conf(self_addr: str | None, **kw: Any) -> StoreConfig:
        return StoreConfig(
            self_addr=self_addr, voters=("1.2.3.4:7947",), data_dir=Path("."), password="x", **kw
        )  # type: ignore[arg-type]

    replica, voter = conf(None), conf("1.2.3.5:7947")
    replica.validate()
    voter.validate()
    assert replica.replica_beat_s == 4.0  # an idle replica hears from the leader every 4 s (was 2 s)
    assert replica.pysyncobj_timing()["connectionTimeout"] == replica.replica_connection_timeout_s == 10.0
    assert voter.pysyncobj_timing()["connectionTimeout"] == 3.0  # voters keep theirs (failover)
    assert voter.replica_connection_timeout_s == 10.0  # the voter's end of a replica's connection
    # far voters (raft.rtt_ms): the voters' timeout follows the longest election timeout, and so does
    # the replicas' floor
    far = conf(
        None,
        replica_heartbeat_period_s=1.0,
        election_timeout_max_s=6.0,
        election_timeout_min_s=2.5,
        heartbeat_period_s=0.5,
    )
    far.validate()
    assert far.pysyncobj_timing()["connectionTimeout"] == 6.0
    assert conf(None, replica_heartbeat_period_s=8.0).pysyncobj_timing()["connectionTimeout"] == 20.0
    with pytest.raises(ConfigError) as info:
        conf(None, replica_heartbeat_period_s=0.0).validate()
    assert info.value.field == "replica_heartbeat_period_s"
