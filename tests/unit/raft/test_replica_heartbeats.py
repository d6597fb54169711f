"""ReplicaHeartbeats: which read-only replicas an idle leader's append round may leave out.
EarlyRounds: when the leader sends a round ahead of its heartbeat period. replica_connection_timeout_s: the
read timeout of a replica's connection, at both ends."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from pysyncobj.node import TCPNode

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


# --- the incremental answer (issue 19: a round's cost must not grow with the replicas left out) -------


class _CountingNode(TCPNode):
    """pysyncobj's node, counting the calls of its Python ``__hash__`` (what each ``d[node]`` costs)."""

    hashes = 0

    def __hash__(self) -> int:
        _CountingNode.hashes += 1
        return super().__hash__()


def _scan(
    sent: dict[Any, tuple[int, float]],
    replicas: set[Any],
    nexts: dict[Any, int],
    last: int,
    commit: int,
    now: float,
    period: float,
) -> set[Any]:
    """The rule, replica by replica (the oracle: what ``quiet`` answered before it kept its own set)."""
    return {
        node
        for node in replicas
        if node in sent
        and nexts.get(node, 0) > last
        and sent[node][0] == commit
        and now - sent[node][1] < period
    }


@pytest.mark.parametrize("seed", range(8))
def test_quiet_answers_what_a_look_at_every_replica_would(seed: int) -> None:
    """Random rounds of a leader: entries appended, commits, answers that move a next index, replicas
    connecting and going away, rounds that leave a replica short; every round's answer is the oracle's."""
    rng = random.Random(seed)
    period = 1.0
    beats = ReplicaHeartbeats(period_s=period)
    pool = [f"r{i}" for i in range(12)]
    replicas = set(pool[:8])
    last = commit = 10
    nexts = {node: last + 1 for node in replicas}
    sent: dict[Any, tuple[int, float]] = {}
    now = 0.0
    for _ in range(400):
        now += rng.choice((0.05, 0.1, 0.2, 0.2, 0.2, 0.6))
        event = rng.random()
        if event < 0.05:
            last += 1  # a proposal: an entry nobody has yet
        elif event < 0.1:
            commit = last
        elif event < 0.15 and replicas:
            node = rng.choice(sorted(replicas))  # it answered: its next index moved
            nexts[node] = rng.randint(last - 2, last + 1)
            beats.changed()
        elif event < 0.2 and replicas:
            node = rng.choice(sorted(replicas))  # went away (pysyncobj drops its indexes)
            replicas.discard(node)
            nexts.pop(node, None)
            beats.changed()
        elif event < 0.27:
            node = rng.choice(pool)  # (re)connected
            replicas.add(node)
            nexts[node] = last + 1
            beats.changed()
        quiet = beats.quiet(replicas, nexts, last, commit, now)
        assert quiet == _scan(sent, replicas, nexts, last, commit, now, period)
        active = replicas - quiet
        for node in active:  # the round: most catch up, a few are left short (its time ran out)
            if rng.random() < 0.9:
                nexts[node] = last + 1
        beats.sent(active, commit, now)
        sent.update({node: (commit, now) for node in active})
        beats.forget(replicas)
        sent = {node: record for node, record in sent.items() if node in replicas}


def test_an_idle_round_looks_only_at_the_replicas_it_sends_to() -> None:
    """1,000 caught-up replicas, a heartbeat every 0.2 s, each replica due every 4 s: after the first
    look, a round hashes only the ~50 replicas whose period ran out (and those it sent to)."""
    beats = ReplicaHeartbeats(period_s=4.0)
    replicas = {_CountingNode(f"10.0.{i // 250}.{i % 250}:7947") for i in range(1000)}
    nexts = {node: 11 for node in replicas}
    now, per_round = 0.0, []
    for _ in range(60):
        _CountingNode.hashes = 0
        active = replicas - beats.quiet(replicas, nexts, 10, 10, now)
        beats.sent(active, 10, now)
        beats.forget(replicas)
        per_round.append((_CountingNode.hashes, len(active)))
        now += 0.2 + (len(per_round) == 1) * 0.001  # (the first round sent to all: spread them out)
        if len(per_round) == 1:
            for i, node in enumerate(sorted(replicas, key=lambda n: n.id)):
                beats._sent[node] = (10, -4.0 + 4.0 * i / 1000)  # as after 20 rounds of 50 each
            beats.changed()
    assert beats.full_looks == 2
    steady = per_round[5:]
    assert sum(sent for _, sent in steady) == pytest.approx(len(steady) * 50, rel=0.1)
    # six lookups per replica sent to (its record, next index, the quiet set, when due), none per
    # replica left out: looking at every replica hashed 3 per replica, 3,050 a round
    assert max(hashes for hashes, _ in steady) <= 6 * max(sent for _, sent in steady)
    assert per_round[1][0] <= 3 * len(replicas) + 6 * per_round[1][1]  # a full look: 3 per replica
