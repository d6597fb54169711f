"""The settings of one Raft store and their validation (pure: no pysyncobj, no I/O)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from .election_timeout import election_cap_s
from .heartbeats import replica_connection_timeout_s

#: an idle leader's heartbeats that fit in the shortest election timeout (timing.py's proportions: 5
#: heartbeats, idle at 2 heartbeats)
IDLE_HEARTBEATS_PER_ELECTION = 2.5


@dataclass(frozen=True)
class StoreConfig:
    """Settings of one store. ``self_addr`` None makes a non-voting read-only replica.

    ``voters`` are the Raft voter addresses ("ip:port") this node starts with (self included or not);
    a replica connects to them to receive the log. Timing defaults were chosen by measurement
    (docs/raft.md): no append batching and a 5 ms tick give ~1-2 ms commits on loopback.
    """

    self_addr: str | None
    voters: tuple[str, ...]
    data_dir: Path
    password: str = field(repr=False)  # the pysyncobj password: never in a repr or a log
    bind_addr: str | None = None  # "ip:port" to listen on when it differs from self_addr (behind NAT)
    tick_period_s: float = 0.005  # while there is Raft work (pacer.py); idle_tick_period_s otherwise
    idle_tick_period_s: float = 0.5  # a voter; cut short by its election deadline or next heartbeat
    # a replica has no election timer: when idle its tick only retries connections (messages and
    # proposals still wake it at once; while a voter connection is down it ticks every
    # connection_retry_s, store.py)
    replica_idle_tick_period_s: float = 2.0
    heartbeat_period_s: float = 0.1
    # the leader's append rounds while idle (no proposal, no moved commit index for a second; pacer.py):
    # the election timeouts stay, so at least 2.5 of these fit in the shortest one; at most the heartbeat
    # (or 0): every round at the heartbeat
    idle_heartbeat_period_s: float = 0.2
    # a follower answers an empty heartbeat that would repeat its last answer at most this often
    # (heartbeat_answers.py); 0: every heartbeat is answered
    heartbeat_answer_period_s: float = 0.5
    # an idle read-only replica hears this often (heartbeats.py), and answers each time (> a heartbeat answer
    # period); its connections time out after 2.5 of these at both ends (replica_connection_timeout_s),
    # voters' after connection_timeout_s as before
    replica_heartbeat_period_s: float = 4.0
    election_timeout_min_s: float = 0.5
    election_timeout_max_s: float = 1.2
    # > 0: a voter joining a running cluster does not campaign before it has heard a leader (or this
    # long): until the leader adds it to the configuration no peer answers it, and the terms its
    # elections raise would make the leader step down the moment it is added
    join_hold_elections_s: float = 0.0
    connection_timeout_s: float = 3.0
    connection_retry_s: float = 0.5
    leader_fallback_timeout_s: float = 3.0
    log_compaction_min_entries: int = 5000
    log_compaction_min_time_s: float = 300.0
    max_batch_commands: int = 512
    max_inflight_batches: int = 2
    status_refresh_s: float = 0.05
    # a store opened on a journal is handed to readers once it has applied it up to its saved commit
    # index (so a reopened store never serves an older state than before), or after this long
    replay_wait_s: float = 30.0

    @property
    def replica_beat_s(self) -> float:
        """How often an idle replica hears from the leader: never more often than voters do."""
        return max(self.replica_heartbeat_period_s, self.heartbeat_period_s)

    @property
    def voter_connection_timeout_s(self) -> float:
        """pysyncobj's ``connectionTimeout`` between voters: never before the longest election timeout."""
        return max(self.connection_timeout_s, self.election_timeout_max_s)

    @property
    def replica_connection_timeout_s(self) -> float:
        """The read timeout of a replica's connections, at both ends (heartbeats.py)."""
        return replica_connection_timeout_s(self.replica_beat_s, self.voter_connection_timeout_s)

    @property
    def election_cap_s(self) -> float:
        """The most a voter's adapted election minimum grows to (``election_timeout.py``): the voters'
        connection timeout, also on a replica's settings (whose own connections wait longer)."""
        timing = self.pysyncobj_timing()
        return election_cap_s(timing["raftMaxTimeout"], self.voter_connection_timeout_s)

    def pysyncobj_timing(self) -> dict[str, float]:
        """pysyncobj's timing options for these settings. The connection and the leader's step-down
        (no majority answered) never time out before the longest election timeout, so far voters
        (``raft.rtt_ms``) keep the proportions pysyncobj's ``SyncObjConf.validate`` asserts. A read-only
        replica's connections (all to voters) hear from the leader once per idle replica heartbeat: their
        timeout is ``replica_connection_timeout_s`` (the leader sets the same on its end, bridge.py)."""
        replica = self.self_addr is None
        return {
            "autoTickPeriod": self.tick_period_s,
            "appendEntriesPeriod": self.heartbeat_period_s,
            "raftMinTimeout": self.election_timeout_min_s,
            "raftMaxTimeout": self.election_timeout_max_s,
            "connectionTimeout": (
                self.replica_connection_timeout_s if replica else self.voter_connection_timeout_s
            ),
            "connectionRetryTime": self.connection_retry_s,
            "leaderFallbackTimeout": max(self.leader_fallback_timeout_s, self.election_timeout_max_s),
        }

    def validate(self) -> None:
        if not self.password:
            raise ConfigError("the Raft password must be set", field="password")
        if self.self_addr is not None:
            split_addr(self.self_addr, "self_addr")
        for addr in self.voters:
            split_addr(addr, "voters")
        if self.self_addr is None and not self.voters:
            raise ConfigError("a replica needs at least one voter address", field="voters")
        timeouts = ("tick_period_s", "heartbeat_period_s", "election_timeout_min_s", "election_timeout_max_s")
        for name in timeouts:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number of seconds above 0", field=name)
        if not self.election_timeout_min_s > 3 * self.heartbeat_period_s:
            raise ConfigError(
                "election_timeout_min_s must exceed 3 heartbeats", field="election_timeout_min_s"
            )
        idle_s = self.idle_heartbeat_period_s  # at most the heartbeat: idle rounds are not slowed
        if not math.isfinite(idle_s) or (
            idle_s > self.heartbeat_period_s
            and IDLE_HEARTBEATS_PER_ELECTION * idle_s > self.election_timeout_min_s * (1 + 1e-9)
        ):
            raise ConfigError(
                f"idle_heartbeat_period_s must fit {IDLE_HEARTBEATS_PER_ELECTION} times in "
                "election_timeout_min_s",
                field="idle_heartbeat_period_s",
            )
        if not (math.isfinite(self.replica_heartbeat_period_s) and self.replica_heartbeat_period_s > 0):
            raise ConfigError(
                "replica_heartbeat_period_s must be a finite number of seconds above 0",
                field="replica_heartbeat_period_s",
            )
        fallback = min(self.connection_timeout_s, self.leader_fallback_timeout_s)
        if not (
            math.isfinite(self.heartbeat_answer_period_s)
            and 0 <= self.heartbeat_answer_period_s <= fallback / 4
        ):
            raise ConfigError(
                "heartbeat_answer_period_s must be 0 or at most a quarter of the connection and leader "
                "fallback timeouts",
                field="heartbeat_answer_period_s",
            )
        if self.max_batch_commands < 1 or self.max_inflight_batches < 1:
            raise ConfigError("batch limits must be >= 1", field="max_batch_commands")


def split_addr(addr: str, name: str) -> tuple[str, int]:
    """("ip", port) of an "ip:port" address; a ConfigError naming ``name`` otherwise."""
    host, sep, port = addr.rpartition(":")
    if (
        not sep
        or not host
        or not (port.isascii() and port.isdigit() and len(port) <= 5)
        or not 0 < int(port) < 65536
    ):
        raise ConfigError(f"bad address {addr!r}: expected ip:port", field=name)
    return host, int(port)
