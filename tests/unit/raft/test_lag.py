"""LagClock: lag is the age of the oldest committed entry a node lacks (pure, injected time)."""

from __future__ import annotations

from types import SimpleNamespace

from p2porch.raft.lag import LagClock, peer_matches, progress_view


def test_a_node_that_keeps_up_under_constant_writes_shows_no_lag() -> None:
    clock = LagClock()
    for step in range(100):  # commit runs one entry ahead of what is applied, every 10 ms
        lag = clock.observe(step * 0.01, have=step, commit=step + 1)
        assert lag <= 0.011


def test_a_node_that_stops_applying_shows_growing_lag_until_it_catches_up() -> None:
    clock = LagClock()
    assert clock.observe(0.0, have=10, commit=12) == 0.0
    for t in (1.0, 2.0, 5.0):
        assert clock.observe(t, have=10, commit=12 + int(t)) == t
    assert clock.observe(6.0, have=12, commit=17) == 5.0  # 13 was first heard at t=1.0
    assert clock.observe(7.0, have=17, commit=17) == 0.0


def test_unknown_commit_means_no_lag() -> None:
    assert LagClock().observe(5.0, have=3, commit=None) == 0.0


def test_progress_view_self_and_peers_from_the_leader() -> None:
    status = SimpleNamespace(
        last_applied=90, leader_commit_index=100, lag_s=4.5, is_leader=True, commit_index=100,
        peers={"10.0.0.2:7947": {"match_index": 100, "lag_s": 0.0}},
    )  # fmt: skip
    assert progress_view(status, "10.0.0.1:7947", is_self=True) == {
        "applied_index": 90, "behind_entries": 10, "lag_s": 4.5, "lagging": True,
    }  # fmt: skip
    assert progress_view(status, "10.0.0.2:7947", is_self=False)["behind_entries"] == 0
    assert progress_view(status, "10.0.0.3:7947", is_self=False)["lagging"] is None


def test_node_ls_cell_shows_index_distance_and_flag() -> None:
    from p2porch.cli.node import _progress_cell

    assert _progress_cell(None) == "?"
    assert (
        _progress_cell({"applied_index": 812, "behind_entries": 0, "lag_s": 0.0, "lagging": False})
        == "812 (-0)"
    )
    lagging = {"match_index": 700, "behind_entries": 112, "lag_s": 7.2, "lagging": True}
    assert _progress_cell(lagging) == "700 (-112) LAGGING 7s"


def test_a_peer_the_leader_has_not_heard_from_yet_shows_a_dash_not_zero() -> None:
    """Right after ``node rm`` every member restarts its store with the new key; the leader's pysyncobj
    starts each match index at 0, and ``node ls`` showed a just-promoted voter as ``0 (-233)`` until
    its first reply. Not known yet is ``-``; known again, the index comes back."""
    from p2porch.cli.node import _progress_cell

    status = SimpleNamespace(
        is_leader=True, commit_index=233, peers={"10.0.0.2:7947": {"match_index": 0, "lag_s": 0.0}},
    )  # fmt: skip
    view = progress_view(status, "10.0.0.2:7947", is_self=False)
    assert view["match_index"] is None and view["behind_entries"] is None
    assert _progress_cell(view) == "-"
    status.peers["10.0.0.2:7947"] = {"match_index": 233, "lag_s": 0.0}
    assert _progress_cell(progress_view(status, "10.0.0.2:7947", is_self=False)) == "233 (-0)"
    follower = SimpleNamespace(is_leader=False, peers={})
    assert _progress_cell(progress_view(follower, "10.0.0.2:7947", is_self=False)) == "?"


def test_peer_matches_keys_voters_by_address_and_replicas_by_their_host() -> None:
    raw = {
        "match_idx_server_10.0.0.2:7947": 40,
        "match_idx_server_0": 38,  # pysyncobj's read-only replicas: a counter each
        "match_idx_server_1": 12,
        "match_idx_server_2": 9,
        "match_idx_server_3": 7,
        "match_idx_server_4": 5,
        "commit_idx": 41,
    }
    hosts = {"0": "10.0.0.5", "1": "10.0.0.6", "2": "10.0.0.7", "3": "10.0.0.7", "4": ""}
    # two replicas from one host cannot be told apart, nor one whose host is unknown: neither is shown
    assert peer_matches(raw, hosts) == {"10.0.0.2:7947": 40, "replica@10.0.0.5": 38, "replica@10.0.0.6": 12}


def test_a_replica_s_index_is_shown_on_the_leader_as_a_voter_s_is() -> None:
    from p2porch.cli.node import _progress_cell

    peers = {
        "10.0.0.2:7947": {"match_index": 40, "lag_s": 0.0},
        "replica@10.0.0.5": {"match_index": 38, "lag_s": 4.2},
    }
    leader = SimpleNamespace(is_leader=True, commit_index=41, peers=peers)
    assert (
        _progress_cell(progress_view(leader, "10.0.0.5:7947", is_self=False, replica=True))
        == "38 (-3) LAGGING 4s"
    )
    assert _progress_cell(progress_view(leader, "10.0.0.6:7947", is_self=False, replica=True)) == "?"
    # a voter is never read from a replica's entry on its host
    assert _progress_cell(progress_view(leader, "10.0.0.5:7948", is_self=False)) == "?"
    follower = SimpleNamespace(is_leader=False, commit_index=41, peers=peers)
    assert _progress_cell(progress_view(follower, "10.0.0.5:7947", is_self=False, replica=True)) == "?"
