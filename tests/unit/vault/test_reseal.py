"""Re-sealing stored secret/config versions under the current key epoch (leader/reseal.py, FSM)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest
import trio
import trio.testing

from p2porch.clock import TrioClock
from p2porch.context import LocalBoard, LocalNode, MemberContext
from p2porch.control.events import describe_change
from p2porch.errors import ConflictError, NotFoundError
from p2porch.leader import reseal
from p2porch.leader.reseal import reseal_commands
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.testing.memstore import MemoryRaft
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


def test_the_loop_waits_for_a_commit_after_a_quiet_check_and_rechecks_at_its_safety(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop itself, on an in-memory store that leads, under trio's MockClock: a check after leading
    starts (2 s), then, having found nothing, a check only at a commit or after the 10 s safety."""
    checks: list[float] = []

    def counted(state: ClusterState, keys: Mapping[int, bytes], now: float) -> Any:
        checks.append(trio.current_time())
        return reseal_commands(state, keys, now)

    monkeypatch.setattr(reseal, "reseal_commands", counted)
    addr = "10.0.0.1:7947"
    store = MemoryRaft([addr], leader=addr).store(addr)
    clock = TrioClock(1_800_000_000.0)
    local = LocalNode("n1", "n1", "10.0.0.1", addr, "voter", 0, b"k" * 32, secrets_keys={0: K0, 1: K1})

    async def ask_member(host: str) -> None:
        return None

    ctx = MemberContext(
        store=store, voter_control=store, local=local, board=LocalBoard(), clock=clock,
        commit_timeout_s=5.0, ask_member=ask_member,
    )  # fmt: skip

    async def main() -> None:
        await store.write(C.InitCluster(at=AT, cluster_id="c" * 16).encode())
        sealed = seal_value(K0, "secret", "id-db", 1, b"db one").blob
        put_db = C.PutSecret(
            at=AT, kind="secret", name="db", object_id="id-db", secret_version=1, sealed=sealed,
            digest=digest_of(K0, b"db one"), size=6, key_epoch=0,
        )  # fmt: skip
        await store.write(put_db.encode())
        async with trio.open_nursery() as nursery:
            await nursery.start(reseal.serve_reseal, ctx)
            await trio.sleep(15.0)
            # a commit that gives it work: checked at once, re-sealed, checked again at that commit
            await store.write(C.RotateKeys(at=AT, epoch=1, envelopes={}).encode())
            await trio.sleep(15.0)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    # leading starts: 2 s; nothing found: the 10 s safety (12); at 15 each commit (the rotation, then the
    # leader's epoch claim and the re-seal it wrote) wakes a check; nothing found: the safety again (25)
    assert checks[:3] == [2.0, 12.0, 15.0]
    assert [t for t in checks if t != 15.0] == [2.0, 12.0, 25.0]
    (entry,) = store.snapshot().secrets["secret:db"].versions
    assert entry["key_epoch"] == 1
    assert open_value(K1, "secret", "id-db", 1, bytes(entry["sealed"])) == b"db one"
