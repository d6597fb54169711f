"""Re-sealing stored secret/config versions under the current key epoch (leader/reseal.py, FSM)."""

from __future__ import annotations

import os

from p2porch.control.events import describe_change
from p2porch.errors import ConflictError, NotFoundError
from p2porch.leader.reseal import RESEAL_CHECK_S, RESEAL_QUIET_CHECK_S, reseal_commands, reseal_wait_s
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.vault import digest_of, open_value, seal_value

AT = 1000.0
K0, K1, K2 = os.urandom(32), os.urandom(32), os.urandom(32)


def put(state: ClusterState, name: str, number: int, value: bytes, key: bytes, epoch: int) -> ClusterState:
    sealed = seal_value(key, "secret", f"id-{name}", number, value).blob
    state, result, _ = apply(
        state,
        C.PutSecret(
            at=AT, kind="secret", name=name, object_id=f"id-{name}", secret_version=number, sealed=sealed,
            digest=digest_of(key, value), size=len(value), key_epoch=epoch,
        ).encode(),
    )  # fmt: skip
    assert result["ok"], result
    return state


def rotated() -> ClusterState:
    """db v1, v2 under epoch 0, api v1 under epoch 1; the cluster is at epoch 1."""
    state = apply(EMPTY_STATE, C.InitCluster(at=AT, cluster_id="c" * 16).encode())[0]
    state = put(state, "db", 1, b"db one", K0, 0)
    state = put(state, "db", 2, b"db two", K0, 0)
    state = apply(state, C.RotateKeys(at=AT, epoch=1, envelopes={}).encode())[0]
    assert state.key_epoch == 1
    return put(state, "api", 1, b"api one", K1, 1)


def test_old_epoch_versions_are_resealed_under_the_current_one_and_still_open() -> None:
    state = rotated()
    before = state.secrets["secret:db"]
    commands, missing = reseal_commands(state, {0: K0, 1: K1}, AT)
    assert missing == [] and len(commands) == 1  # api is already current
    new, result, changes = apply(state, commands[0].encode())
    assert result["ok"] and result["value"] == 2, result
    record = new.secrets["secret:db"]
    assert [v["version"] for v in record.versions] == [1, 2] and record.current == 2  # no new version
    for entry, value in zip(record.versions, (b"db one", b"db two"), strict=True):
        assert entry["key_epoch"] == 1 and entry["digest"] == digest_of(K1, value)
        assert open_value(K1, "secret", "id-db", int(entry["version"]), bytes(entry["sealed"])) == value
    old_blobs = {bytes(v["sealed"]) for v in before.versions}
    snapshot = C.RestoreState(at=0, state=new).encode()
    assert not any(blob in snapshot for blob in old_blobs)  # only new-epoch ciphertext in the state
    event = describe_change(changes[0], before, new, AT)
    assert event is not None and event["action"] == "resealed" and event["version"] == 2
    assert reseal_commands(new, {0: K0, 1: K1}, AT) == ([], [])  # nothing left to do


def test_stale_or_wrong_reseals_are_refused_and_unknown_epochs_named() -> None:
    state = rotated()
    (command,), _ = reseal_commands(state, {0: K0, 1: K1}, AT)
    changed = put(state, "db", 3, b"db three", K1, 1)  # the record moved since the reseal was computed
    assert isinstance(C.error_of(apply(changed, command.encode())[1]), ConflictError)
    # computed for epoch 1, applied at epoch 2
    newer = apply(state, C.RotateKeys(at=AT, epoch=2, envelopes={}).encode())[0]
    assert isinstance(C.error_of(apply(newer, command.encode())[1]), ConflictError)
    gone = apply(state, C.RemoveSecret(at=AT, kind="secret", name="db").encode())[0]
    assert isinstance(C.error_of(apply(gone, command.encode())[1]), NotFoundError)
    # a node without epoch 0 cannot reseal db, and says which versions; without the current key, nothing
    assert reseal_commands(state, {1: K1}, AT) == ([], ["secret:db v1 (epoch 0)", "secret:db v2 (epoch 0)"])
    assert reseal_commands(state, {0: K0}, AT) == ([], [])
    # a wrong key for an old epoch is reported, never sealed as garbage
    assert reseal_commands(state, {0: K2, 1: K1}, AT)[1] == [
        "secret:db v1 (epoch 0)",
        "secret:db v2 (epoch 0)",
    ]


def test_the_loop_checks_again_soon_only_after_a_check_that_had_versions_to_reseal() -> None:
    assert reseal_wait_s(wrote=True) == RESEAL_CHECK_S  # a write may not have committed: try again soon
    assert reseal_wait_s(wrote=False) == RESEAL_QUIET_CHECK_S > RESEAL_CHECK_S  # only a commit gives work
