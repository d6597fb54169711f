"""Access tokens in the replicated state: add by name (digest only), refuse duplicates and malformed
fields, remove, survive a snapshot round trip, and show up in events without their digest."""

from __future__ import annotations

from p2porch.control.events import describe_change
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.vault.access import new_token

AT = 1000.0


def initialized() -> ClusterState:
    state, result, _ = apply(EMPTY_STATE, C.InitCluster(at=AT, cluster_id="0123456789abcdef").encode())
    assert result["ok"], result
    return state


def put(state: ClusterState, name: str, role: str = "read", **over: str):
    token = new_token()
    fields = {"name": name, "token_id": token.token_id, "role": role, "digest": token.digest, **over}
    return apply(state, C.encode_command(C.PutAccessToken(at=AT + 1, **fields)))


def test_put_list_remove_and_snapshot_round_trip():
    state, result, changes = put(initialized(), "ci", "operate")
    assert result["ok"], result
    record = state.access_tokens["ci"]
    assert record.role == "operate" and record.created_at == AT + 1 and len(record.digest) == 64
    event = describe_change(changes[0], None, state, AT)
    assert event == {"at": AT, "type": "access", "action": "created", "name": "ci", "role": "operate"}
    assert ClusterState.from_dict(state.to_dict()).access_tokens == state.access_tokens
    state, result, changes = apply(state, C.RemoveAccessToken(at=AT + 2, name="ci").encode())
    assert result["ok"] and "ci" not in state.access_tokens
    assert describe_change(changes[0], record, state, AT)["action"] == "removed"


def test_duplicates_and_malformed_fields_are_refused_without_change():
    state, result, _ = put(initialized(), "ci")
    assert result["ok"]
    for name, over, error in (
        ("ci", {}, "ConflictError"),
        ("x", {"role": "root"}, "ConfigError"),
        ("x", {"digest": "abc"}, "ConfigError"),
        ("x", {"token_id": "not-hex"}, "ConfigError"),
        ("", {}, "ConfigError"),
    ):
        new, result, changes = put(state, name, **over)
        assert not result["ok"] and result["error"] == error, (name, over, result)
        assert new is state and not changes
    dup_id = state.access_tokens["ci"].token_id
    new, result, _ = put(state, "other", token_id=dup_id)
    assert result["error"] == "ConflictError" and new is state
    new, result, _ = apply(state, C.RemoveAccessToken(at=AT, name="nope").encode())
    assert result["error"] == "NotFoundError" and new is state
