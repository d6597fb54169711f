"""The write gate (pure): members' advertisements -> the version each command may be written in."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from p2porch.errors import NotAllowedError, WireError
from p2porch.gossip import messages
from p2porch.model import NodeStatus
from p2porch.raft import command_gate as G
from p2porch.raft import commands as C

NEW = G.advertisement()
HELD = C.UpdateNode(at=1.0, node_id="id1", restart_until=9.0, restart_incarnation=2)
HELD_AND_DOWN = C.UpdateNode(
    at=1.0, node_id="id1", status=NodeStatus.DOWN, restart_until=0.0, restart_incarnation=0
)


def never() -> dict[str, Any]:
    raise AssertionError("a command within the baseline needs no advertisement")


def test_this_release_advertises_update_node_version_2_above_the_baseline() -> None:
    assert NEW == {"update_node": 2}
    assert G.BASELINE["update_node"] == 1 and G.BASELINE["update_service"] == 2
    assert all(G.BASELINE[tag] == cls.VERSION for tag, cls in C.COMMANDS.items() if tag != "update_node")
    # the gossip meta's label budget holds the advertisement at its largest
    assert len(msgpack.packb(messages._LARGEST_META["cv"])) >= len(msgpack.packb(NEW))


def test_every_member_must_read_a_version_before_it_is_allowed() -> None:
    assert G.gate({"a": NEW, "b": NEW}).allows("update_node", 2)
    for behind in (None, {}, {"update_node": "2"}, {"update_node": 1}, ["update_node"]):
        gate = G.gate({"a": NEW, "b": behind})  # type: ignore[dict-item]
        assert not gate.allows("update_node", 2) and gate.allows("update_node", 1)
        assert gate.behind("update_node", 2) == ["b"]
    assert G.gate({}).allows("update_node", 2)  # no member yet: this node's own reads
    gate = G.gate({"a": {**NEW, "future_command": 1}, "b": NEW})
    assert not gate.allows("future_command", 1)  # a tag this node does not know is never allowed


def test_a_command_within_the_baseline_passes_unread() -> None:
    for command in (C.UpdateNode(at=1.0, node_id="id1", status=NodeStatus.DOWN), C.Noop(at=1.0, tag="x")):
        data = command.encode()
        assert G.admit(data, never) is data


def test_a_command_above_the_gate_is_written_as_its_older_body_or_refused() -> None:
    data = HELD_AND_DOWN.encode()
    assert G.admit(data, lambda: {"a": NEW, "b": NEW}) is data
    older = G.admit(data, lambda: {"a": NEW, "b": None})
    assert C.decode_command(older) == C.UpdateNode(at=1.0, node_id="id1", status=NodeStatus.DOWN)
    assert msgpack.unpackb(older)["v"] == 1
    behind = {f"n{i:02}": None for i in range(12)}
    with pytest.raises(NotAllowedError, match=r"update_node version 2 .* n00, n01.* and 2 more") as exc:
        G.admit(HELD.encode(), lambda: {"a": NEW, **behind})
    assert exc.value.field == "command"


def test_header_reads_the_tag_and_version_only() -> None:
    assert G.header(HELD.encode()) == ("update_node", 2)
    assert G.header(msgpack.packb({"op": "noop", "at": 1.0})) == ("", 0)  # the op-map layout
    assert G.header(msgpack.packb({"b": {}, "v": 2, "t": "update_node"})) == ("update_node", 2)
    for bad in (b"", b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"t": 1, "v": "x"})):
        with pytest.raises(WireError):
            G.header(bad)


def test_the_gossip_meta_carries_the_advertisement() -> None:
    meta = messages.NodeMeta(advertise_addr="10.0.0.1", command_versions=NEW)
    wire = meta.to_wire()
    assert wire["cv"] == NEW and messages.NodeMeta.from_wire(wire) == meta
    assert messages.command_versions({"cv": {"update_node": 2, 3: 1, "x": True, "y": -1}}) == NEW
    assert (
        messages.command_versions({"cv": "update_node"})
        == {}
        == messages.NodeMeta().wire_fields().get("cv", {})
    )
    # labels that fill the meta leave the optional keys out, the advertisement last
    for size in range(messages.META_MAX_BYTES, 0, -1):  # the longest label with room for cv alone
        full = messages.NodeMeta(
            labels={"k": "x" * size}, engine_version="27.0.1", command_versions=NEW, restart_until=2**40
        )
        fields = full.wire_fields()
        core = {k: v for k, v in fields.items() if k not in messages.OPTIONAL_META_KEYS or k == "cv"}
        if len(msgpack.packb(core)) <= messages.META_MAX_BYTES:
            break
    fitted, skipped = messages.fit_meta(fields)
    assert fitted["cv"] == NEW and skipped == ["e", "r"]
