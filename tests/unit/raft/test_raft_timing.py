"""Raft timeouts follow the round trip between the farthest voters; a LAN keeps the measured defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pysyncobj import SyncObjConf

from p2porch.config import load_config
from p2porch.errors import ConfigError
from p2porch.raft.store_config import StoreConfig
from p2porch.raft.timing import RaftTiming, timing_for_rtt


def replica_config(timing: RaftTiming) -> StoreConfig:
    """A replica's store settings with ``timing``."""
    return StoreConfig(
        self_addr=None,
        voters=("1.2.3.4:7947",),
        data_dir=Path("."),
        password="x",
        heartbeat_period_s=timing.heartbeat_s,
        idle_heartbeat_period_s=timing.idle_heartbeat_s,
        election_timeout_min_s=timing.election_min_s,
        election_timeout_max_s=timing.election_max_s,
    )


def test_lan_and_40ms_keep_the_defaults() -> None:
    defaults = StoreConfig(self_addr=None, voters=("1.2.3.4:7947",), data_dir=Path("."), password="x")
    expected = RaftTiming(
        defaults.heartbeat_period_s, defaults.election_timeout_min_s, defaults.election_timeout_max_s
    )
    assert timing_for_rtt(0.0) == timing_for_rtt(0.04) == RaftTiming(0.1, 0.5, 1.2) == expected


@pytest.mark.parametrize("rtt_s", [0.06, 0.15, 0.3, 1.0])
def test_far_voters_get_heartbeats_of_two_round_trips_and_a_proportional_election_window(
    rtt_s: float,
) -> None:
    timing = timing_for_rtt(rtt_s)
    assert timing.heartbeat_s == pytest.approx(2 * rtt_s)
    assert timing.election_min_s == pytest.approx(5 * timing.heartbeat_s)
    assert timing.election_max_s == pytest.approx(12 * timing.heartbeat_s)
    # what StoreConfig insists on: more than 3 heartbeats in the shortest election timeout
    replica_config(timing).validate()


def test_the_setting_is_read_and_checked() -> None:
    assert load_config(env={"P2PORCH_RAFT_RTT_MS": "120"}).raft.rtt_ms == 120.0
    with pytest.raises(ConfigError) as bad:
        load_config(env={"P2PORCH_RAFT_RTT_MS": "-1"})
    assert bad.value.field == "raft.rtt_ms"


@pytest.mark.parametrize("rtt_ms", [0.0, 250.0, 750.0, 1000.0])
def test_every_accepted_round_trip_gives_pysyncobj_a_valid_timing(rtt_ms: float) -> None:
    """Up to raft.rtt_ms's largest value, pysyncobj's own checks hold, and the leader steps down only
    after the longest election timeout (it once stepped down after 3 s, under 2 heartbeats)."""
    timing = timing_for_rtt(load_config(env={"P2PORCH_RAFT_RTT_MS": str(rtt_ms)}).raft.rtt_ms / 1000.0)
    config = replica_config(timing)
    config.validate()
    options = config.pysyncobj_timing()
    SyncObjConf(**options).validate()  # its bare asserts
    assert options["leaderFallbackTimeout"] >= timing.election_max_s
    assert options["leaderFallbackTimeout"] >= 3 * timing.heartbeat_s


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -0.1])
def test_store_timing_must_be_finite_and_positive(bad: float) -> None:
    with pytest.raises(ConfigError) as info:
        StoreConfig(
            self_addr=None, voters=("1.2.3.4:7947",), data_dir=Path("."), password="x", heartbeat_period_s=bad
        ).validate()
    assert info.value.field == "heartbeat_period_s"
