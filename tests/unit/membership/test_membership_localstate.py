"""cluster.json: keys kept 0600, hidden from reprs, old files still load; following a key epoch."""

import json
import os
import stat
from pathlib import Path

import pytest

from p2porch.errors import AuthError
from p2porch.membership import localstate
from p2porch.membership.key_rotation import key_from_state
from p2porch.membership.keys import (
    ClusterKeys,
    new_cluster_keys,
    new_node_key,
    node_public_key,
    plan_rotation,
)
from p2porch.membership.localstate import LocalClusterState
from p2porch.membership.token import new_token
from p2porch.raft.state import ClusterState
from p2porch.raft.store import StoreConfig

CLUSTER = "c0ffee00c0ffee00"


def local(**changes) -> LocalClusterState:
    keys = new_cluster_keys(CLUSTER)
    base = LocalClusterState(
        cluster_id=CLUSTER,
        node_id="a" * 16,
        node_name="n1",
        role="voter",
        raft_addr="10.0.0.1:7947",
        voters=("10.0.0.1:7947",),
        cluster_key=keys.to_text(),
        node_key=new_node_key(),
    )
    return LocalClusterState(**{**base.__dict__, **changes})


def test_no_secret_shows_in_a_repr():
    state = local(token=str(new_token(CLUSTER)))
    text = repr(state)
    for secret in (state.cluster_key, state.node_key, state.token, state.keys.raft_password()):
        assert secret not in text
    config = StoreConfig("10.0.0.1:7947", (), Path("/tmp"), password=state.keys.raft_password())
    assert state.keys.raft_password() not in repr(config)
    assert new_token().secret.hex() not in repr(new_token())


def test_saved_0600_and_round_trips_with_previous_keys(tmp_path):
    state = local().with_keys(new_cluster_keys(CLUSTER, 1))
    localstate.save(str(tmp_path), state)
    path = localstate.path_in(str(tmp_path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = localstate.load(str(tmp_path))
    assert loaded == state and loaded.key_epoch == 1 and loaded.previous_keys[0][0] == 0


def test_a_file_from_before_the_separation_derives_what_its_token_derived(tmp_path):
    token = new_token(CLUSTER)
    old = {
        "cluster_id": CLUSTER,
        "token": str(token),
        "node_id": "b" * 16,
        "node_name": "n2",
        "role": "replica",
        "raft_addr": "10.0.0.2:7947",
        "voters": ["10.0.0.1:7947"],
        "generation": 2,
    }
    Path(localstate.path_in(str(tmp_path))).write_text(json.dumps(old))
    loaded = localstate.load(str(tmp_path))
    assert loaded is not None and loaded.keys == ClusterKeys(CLUSTER, 0, token.secret)
    assert loaded.keys.raft_password(2) == token.raft_password(2)


def test_with_keys_keeps_a_bounded_history_and_old_epochs_resolve():
    state = local()
    epochs = [state.keys]
    for epoch in range(1, 6):
        epochs.append(new_cluster_keys(CLUSTER, epoch))
        state = state.with_keys(epochs[-1])
    assert state.key_epoch == 5 and len(state.previous_keys) == localstate.PREVIOUS_KEYS_KEPT
    assert state.keys_of_epoch(4) == epochs[4] and state.keys_of_epoch(1) is None


def test_a_member_follows_a_rotation_it_is_in_and_a_removed_one_cannot():
    me, removed = local(), local(node_id="f" * 16, node_key=new_node_key())
    new = new_cluster_keys(CLUSTER, 1)
    members = [
        (me.node_id, node_public_key(me.node_key)),
        (removed.node_id, node_public_key(removed.node_key)),
    ]
    rotation = plan_rotation(new, members, exclude=[removed.node_id])
    state = ClusterState(cluster_id=CLUSTER, key_epoch=1, key_envelopes=rotation.envelopes)
    assert key_from_state(me, state) == new
    with pytest.raises(AuthError):
        key_from_state(removed, state)
    assert key_from_state(me.with_keys(new), state) is None  # already there
