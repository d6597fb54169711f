"""A node removed while it ran: which peer answers show it removed (pure), and what it keeps once it left:
a marker that makes commands say so until it joins again (membership/removal.py, manager)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from p2porch.config import load_config
from p2porch.errors import ConflictError
from p2porch.membership import localstate, removal
from p2porch.membership.localstate import LocalClusterState
from p2porch.membership.manager import ClusterManager
from p2porch.model import Node, NodeStatus
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState


def cluster(*nodes: Node) -> ClusterState:
    state = apply(EMPTY_STATE, C.InitCluster(at=1.0, cluster_id="c").encode())[0]
    for node in nodes:
        state, result, _ = apply(state, C.AddNode(at=1.0, node=node).encode())
        assert result["ok"], result
    return state


N1, N2 = Node("id1", "n1", "10.0.0.1", 7947, 7946), Node("id2", "n2", "10.0.0.2", 7947, 7946)


def test_a_peer_whose_newer_state_holds_no_record_of_the_node_shows_it_removed() -> None:
    mine = cluster(N1, N2)
    since = removal.since_version(mine, "id2")
    assert since == mine.nodes["id2"].version
    theirs = apply(mine, C.RemoveNode(at=2.0, node_id="id2").encode())[0]
    answer = removal.member_fields(theirs, "id2")
    assert answer == {"member": False, "version": theirs.version, "generation": 0}
    assert removal.removed_by(answer, 0, since)
    assert not removal.removed_by(removal.member_fields(mine, "id2"), 0, since)  # still recorded there


def test_a_node_marked_left_is_no_member_either() -> None:
    state = cluster(N1, N2)
    left = apply(state, C.UpdateNode(at=2.0, node_id="id2", status=NodeStatus.LEFT).encode())[0]
    assert removal.member_fields(left, "id2")["member"] is False


@pytest.mark.parametrize(
    "answer",
    [
        None,
        {},
        {"member": True, "version": 99, "generation": 0},
        {"member": False, "version": 5, "generation": 0},  # not past the node's record: before its admission
        {"member": False, "version": 99, "generation": 1},  # another Raft generation (a recovery)
        {"member": False, "version": "99", "generation": 0},
        {"key_epoch": 3, "envelope": None},  # a peer of a version that does not say
    ],
)
def test_other_answers_show_nothing(answer: object) -> None:
    assert not removal.removed_by(answer, 0, 5)  # type: ignore[arg-type]


def test_with_its_own_record_gone_the_node_compares_with_its_own_state() -> None:
    state = apply(cluster(N1, N2), C.RemoveNode(at=2.0, node_id="id2").encode())[0]
    assert removal.since_version(state, "id2") == state.version


def test_a_node_that_still_follows_reads_its_removal_from_its_own_state() -> None:
    """A replica that still hears the leader (a `node rm` whose key rotation failed) sees its record,
    then a newer state without it: removed, said once. Nothing else reads as a removal."""
    own = removal.OwnRecord()
    state = cluster(N1, N2)
    assert not own.gone(state, "id2") and own.seen_version == state.version
    later = apply(state, C.UpdateNode(at=2.0, node_id="id1", labels={"a": "b"}).encode())[0]
    assert not own.gone(later, "id2")
    removed = apply(later, C.RemoveNode(at=3.0, node_id="id2").encode())[0]
    assert own.gone(removed, "id2")
    assert not own.gone(removed, "id2")  # said once: the owner leaves once
    left = apply(state, C.UpdateNode(at=2.0, node_id="id2", status=NodeStatus.LEFT).encode())[0]
    assert not removal.OwnRecord().gone(left, "id2")  # leaving by itself is no removal


def test_a_record_never_seen_or_another_generation_is_no_removal() -> None:
    joining = cluster(N1)  # a joiner's state before its own record reached it
    assert not removal.OwnRecord().gone(joining, "id2")
    own = removal.OwnRecord()
    state = cluster(N1, N2)
    own.gone(state, "id2")
    assert not own.gone(joining, "id2")  # an older state (a store reopened from before): no removal
    recovered = apply(state, C.RemoveNode(at=3.0, node_id="id2").encode())[0].evolve(generation=1)
    assert not own.gone(recovered, "id2")  # a recovered cluster's state: its own rules (recovery.py)


LOCAL = LocalClusterState("c", "id2", "n2", "replica", "10.0.0.2:7947", ("10.0.0.1:7947",))


async def test_a_removed_node_leaves_says_so_and_may_join_again(tmp_path) -> None:
    overrides = {"node.data_dir": str(tmp_path), "node.advertise_addr": "10.0.0.2"}
    config = load_config(env={}, overrides=overrides)
    manager = ClusterManager(config, "n2")
    localstate.save(str(tmp_path), LOCAL)
    (tmp_path / "raft").mkdir()
    manager.local = LOCAL
    await manager._leave_removed(replace(LOCAL), "someone else's")  # not the running state: nothing
    assert manager.local is LOCAL and not (tmp_path / removal.MARKER).exists()
    await manager._leave_removed(LOCAL, "10.0.0.1 holds no record of it")
    assert manager.local is None and localstate.load(str(tmp_path)) is None
    assert not (tmp_path / "raft").exists()
    with pytest.raises(ConflictError) as refused:
        manager.require_store()
    assert refused.value.message == "this node was removed from the cluster; run p2porch join"
    manager._refuse_if_member()  # a join may run
    assert removal.load_marker(str(tmp_path))["why"] == "10.0.0.1 holds no record of it"  # type: ignore[index]
    removal.clear_marker(str(tmp_path))
    with pytest.raises(ConflictError) as plain:
        ClusterManager(config, "n2").require_store()
    assert "not part of a cluster" in plain.value.message


def test_status_says_the_node_was_removed(tmp_path) -> None:
    from p2porch.cli.cluster import render_status

    assert removal.status(str(tmp_path)) is None
    removal.save_marker(str(tmp_path), LOCAL, "10.0.0.1 holds no record of it", 5.0)
    removed = removal.status(str(tmp_path))
    assert removed is not None and removed["message"] == removal.REMOVED_MESSAGE
    status = {"node": {"name": "n2"}, "daemon": {"pid": 1, "version": "x", "uptime_s": 3}, "cluster": None}
    text = render_status({**status, "removed": removed})
    assert "cluster:  this node was removed from the cluster; run p2porch join" in text
    assert "not part of a cluster" in render_status(status)
