"""A committed command whose decoder raises something unforeseen (a bug, an entry from another version)
is applied as a no-op, alike on every replica, and the FSM goes on with the next command (fsm._decode)."""

from __future__ import annotations

from typing import Any

import pytest

from p2porch.raft import commands as C
from p2porch.raft.fsm import apply, apply_batch, encode_batch, undecodable
from p2porch.raft.state import EMPTY_STATE, ClusterState

POISON = C.Noop(at=2.0, tag="poison").encode()


@pytest.fixture
def poisoned_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    real = C.decode_command

    def decode(data: bytes) -> C.Command:
        if data == POISON:
            raise KeyError("a decoder bug")
        return real(data)

    monkeypatch.setattr(C, "decode_command", decode)


def _base() -> ClusterState:
    init = C.InitCluster(at=1.0, cluster_id="c1", domain="p2p", cluster_cidr="10.200.0.0/16")
    state, result, _ = apply(EMPTY_STATE, init.encode())
    assert result["ok"], result
    return state


@pytest.mark.usefixtures("poisoned_decoder")
def test_an_undecodable_command_in_a_batch_is_a_no_op_and_the_rest_applies() -> None:
    base = _base()
    after = C.Noop(at=4.0, tag="after").encode()
    batch = encode_batch([POISON, after])
    runs: list[tuple[ClusterState, list[dict[str, Any]]]] = []
    for _ in range(2):  # two replicas applying the same entry
        state, results, changes = apply_batch(base, batch)
        runs.append((state, results))
        assert undecodable(results[0]) and "KeyError" in results[0]["message"], results[0]
        assert results[0]["version"] == base.version
        assert results[1]["ok"], results[1]
    assert runs[0][0].to_dict() == runs[1][0].to_dict() == base.to_dict()
    assert runs[0][1] == runs[1][1]


@pytest.mark.usefixtures("poisoned_decoder")
def test_an_undecodable_single_command_is_a_no_op() -> None:
    base = _base()
    state, result, changes = apply(base, POISON)
    assert state is base and changes == []
    assert undecodable(result) and not result["ok"]


def test_a_refused_command_is_not_counted_as_undecodable() -> None:
    base = _base()
    _, result, _ = apply(base, b"\xc1")  # not msgpack: a WireError, as before
    assert result["error"] == "WireError" and not undecodable(result)


def test_a_replica_out_of_memory_stops_rather_than_applies_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    """MemoryError is this replica's, not the command's: another replica decodes the entry, so a no-op here
    would diverge the states; the FSM stops on the entry instead (as before the no-op rule)."""

    base = _base()

    def decode(data: bytes) -> C.Command:
        raise MemoryError

    monkeypatch.setattr(C, "decode_command", decode)
    with pytest.raises(MemoryError):
        apply(base, POISON)
    with pytest.raises(MemoryError):
        apply_batch(base, encode_batch([POISON]))
