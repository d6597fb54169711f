"""``update_node`` version 2 is the body with the restart hold; version 1 bodies read as before.

``fixtures/v1_hold_journal.msgpack`` (``fixtures/make_v1_hold_journal.py``, run against main before
version 2) holds hold entries written as version-1 bodies: they replay to the same results and state and
encode back to the same bytes. A reader of version 1 only (a release before the hold) refuses version 2
with a WireError, state untouched: the reason writers keep within the gate (``command_gate.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import pytest

from p2porch.errors import WireError
from p2porch.model import Node, NodeStatus
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply_batch, encode_batch
from p2porch.raft.state import EMPTY_STATE

FIXTURE = Path(__file__).with_name("fixtures") / "v1_hold_journal.msgpack"


@pytest.fixture(scope="module")
def old() -> dict[str, Any]:
    return msgpack.unpackb(FIXTURE.read_bytes(), raw=False)  # type: ignore[no-any-return]


def version_of(data: bytes) -> int:
    return int(msgpack.unpackb(data, raw=False)["v"])


def test_hold_entries_written_as_version_1_replay_alike_and_encode_back(old: dict[str, Any]) -> None:
    state = EMPTY_STATE
    for entry, results in zip(old["entries"], old["results"], strict=True):
        state, got, _changes = apply_batch(state, encode_batch(entry))
        assert got == results
        for data in entry:
            command = C.decode_command(data)
            assert command.encode() == data  # written back as version 1, never turned into version 2
    assert state.to_dict() == old["state"]
    held = C.decode_command(old["entries"][2][0])
    assert isinstance(held, C.UpdateNode) and held.hold_in_version_1 and held.restart_until == 33.0


def test_the_hold_is_version_2_and_a_body_without_it_version_1() -> None:
    held = C.UpdateNode(at=1.0, node_id="id1", restart_until=9.0, restart_incarnation=2)
    plain = C.UpdateNode(at=1.0, node_id="id1", status=NodeStatus.DOWN)
    assert (version_of(held.encode()), version_of(plain.encode())) == (2, 1)
    assert C.decode_command(held.encode()) == held and C.decode_command(plain.encode()) == plain
    assert held.older_body(1) is None  # the hold was all it changed
    both = C.UpdateNode(
        at=1.0, node_id="id1", status=NodeStatus.DOWN, restart_until=0.0, restart_incarnation=0
    )
    assert both.older_body(1) == plain
    assert plain.older_body(1) is None  # nothing older than version 1


def test_a_reader_of_version_1_refuses_version_2_and_keeps_its_state(monkeypatch: pytest.MonkeyPatch) -> None:
    state = EMPTY_STATE
    setup = [
        C.InitCluster(at=1.0, cluster_id="c0ffee"),
        C.AddNode(at=2.0, node=Node("id1", "n1", "10.0.0.1", 7946, 7947)),
    ]
    state, _results, _changes = apply_batch(state, encode_batch([c.encode() for c in setup]))
    held = C.UpdateNode(at=3.0, node_id="id1", restart_until=9.0, restart_incarnation=2).encode()
    monkeypatch.setattr(C.UpdateNode, "VERSION", 1)  # what a release before version 2 reads
    with pytest.raises(WireError, match="update_node version 2"):
        C.decode_command(held)
    after, results, _changes = apply_batch(state, encode_batch([held]))
    assert results[0]["error"] == "WireError" and after.version == state.version
