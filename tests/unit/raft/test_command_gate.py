"""The write gate (pure): members' advertisements -> the version each command may be written in."""

from __future__ import annotations

import dataclasses
import importlib.util
from typing import Any

import msgpack
import pytest

from p2porch.errors import NotAllowedError, WireError
from p2porch.gossip import messages
from p2porch.model import NodeStatus, ServiceSpec
from p2porch.raft import command_gate as G
from p2porch.raft import commands as C

NEW = G.advertisement()
HELD = C.UpdateNode(at=1.0, node_id="id1", restart_until=9.0, restart_incarnation=2)
HELD_AND_DOWN = C.UpdateNode(
    at=1.0, node_id="id1", status=NodeStatus.DOWN, restart_until=0.0, restart_incarnation=0
)


def never() -> dict[str, Any]:
    raise AssertionError("a command within the baseline needs no advertisement")


def test_this_release_advertises_update_node_2_and_spec_7_above_the_baseline() -> None:
    # put_secret 2 (defer_roll) and roll_done: a stack deploy's pending roll of a new object version
    assert NEW == {"put_secret": 2, "roll_done": 1, "spec": 7, "update_node": 2}
    # what the release before the gate reads, pinned: every tag it knew at 1, update_service at 2, the
    # spec fields of then (spec version 1)
    assert dict(G.BASELINE) == {
        "spec": 1,
        **dict.fromkeys(
            [
                "add_node",
                "claim_leader_epoch",
                "create_network",
                "create_service",
                "init_cluster",
                "lease_subnet",
                "noop",
                "put_access_token",
                "put_secret",
                "put_tasks",
                "release_subnet",
                "remove_access_token",
                "remove_network",
                "remove_node",
                "remove_secret",
                "remove_service",
                "report_task_states",
                "reseal_secret",
                "restore_state",
                "rotate_keys",
                "set_join_token",
                "update_node",
            ],
            1,
        ),
        "update_service": 2,
    }
    # the gossip meta's label budget holds the advertisement at its largest: what this release advertises
    # (main's said spec 2 after spec 3 came)
    assert messages._LARGEST_META["cv"] == NEW
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


def test_a_bumped_or_new_command_is_advertised_and_gated(monkeypatch: pytest.MonkeyPatch) -> None:
    """The baseline is a literal, not this code's versions: a release that bumps a command (here
    ``remove_secret`` to 2) or adds one advertises it and writes it only once every member reads it."""
    monkeypatch.setattr(C.RemoveSecret, "VERSION", 2)
    spec = importlib.util.find_spec(G.__name__)
    assert spec is not None and spec.loader is not None
    bumped = importlib.util.module_from_spec(spec)  # the gate module as that release imports it
    spec.loader.exec_module(bumped)
    assert bumped.BASELINE["remove_secret"] == 1 and "brand_new" not in bumped.BASELINE
    advertised = bumped.advertisement()
    assert advertised == {**NEW, "remove_secret": 2}
    assert bumped.advertisement({**bumped.reads(), "brand_new": 1}) == {"brand_new": 1, **advertised}
    gate = bumped.gate({"a": advertised, "b": NEW, "c": None})
    assert not gate.allows("remove_secret", 2) and gate.allows("remove_secret", 1)
    assert gate.behind("remove_secret", 2) == ["b", "c"]
    assert bumped.gate({"a": advertised, "b": advertised}).allows("remove_secret", 2)
    with pytest.raises(NotAllowedError, match="brand_new version 1 .* a read up to version 0"):
        bumped.admit(msgpack.packb({"t": "brand_new", "v": 1, "b": {}}), lambda: {"a": None})


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
    with pytest.raises(WireError, match="'spec' is not a command tag"):  # the advertisement's spec entry
        G.admit(msgpack.packb({"t": "spec", "v": 1, "b": {}}), lambda: {})


def test_header_peeks_at_the_first_bytes_of_a_large_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """An 8 MiB proposal's header is read from its first bytes, not fed whole to an Unpacker; a header
    running past them (a long tag) is read from the whole command."""
    fed: list[int] = []
    real = G._first_keys

    def counted(data: bytes | memoryview) -> dict[str, Any]:
        fed.append(len(data))
        return real(data)

    monkeypatch.setattr(G, "_first_keys", counted)
    large = C.UpdateNode(at=1.0, node_id="id1", engine_error="x" * 200, restart_until=9.0).encode()
    assert G.header(large) == ("update_node", 2) and fed == [G.PEEK_BYTES]
    fed.clear()
    long_tag = msgpack.packb({"t": "x" * 300, "v": 1, "b": {}})
    assert G.header(long_tag) == ("x" * 300, 1) and fed == [G.PEEK_BYTES, len(long_tag)]
    fed.clear()
    with pytest.raises(WireError):
        G.header(b"\xc1" * 300)
    assert fed == [G.PEEK_BYTES, 300]


def test_the_gossip_meta_carries_the_advertisement() -> None:
    meta = messages.NodeMeta(advertise_addr="10.0.0.1", command_versions=NEW)
    wire = meta.to_wire()
    assert wire["cv"] == NEW and messages.NodeMeta.from_wire(wire) == meta
    assert messages.command_versions({"cv": {**NEW, 3: 1, "x": True, "y": -1}}) == NEW
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
    assert fitted["cv"] == NEW and skipped == ["r", "e"]


GATE_RELEASE = {"update_node": 2}  # the release that brought the gate: no ``spec`` entry, reads version 2
MEMSWAP = ServiceSpec.from_dict(
    {"name": "web", "image": "busybox", "limit_memory": "64M", "container": {"memswap_limit": "128M"}}
)
DRIVERLESS = ServiceSpec.from_dict({"name": "web", "image": "busybox", "container": {"log_opts": {"a": "b"}}})
PLAIN = ServiceSpec(name="web", image="busybox")


def test_a_spec_field_some_member_does_not_read_is_refused_naming_it_and_the_members() -> None:
    members = {"a": NEW, "b": None, "c": GATE_RELEASE}
    with pytest.raises(NotAllowedError) as exc:
        G.admit_spec(MEMSWAP, None, lambda: members)
    assert exc.value.field == "container.memswap_limit"
    assert exc.value.message == (
        "container.memswap_limit (spec version 2) is not read by every node yet: b read spec fields up "
        "to version 1; upgrade them first, or leave it out"
    )
    both = dataclasses.replace(
        MEMSWAP, container=dataclasses.replace(MEMSWAP.container, log_opts=(("a", "b"),))
    )
    with pytest.raises(
        NotAllowedError, match=r"log_driver \(spec version 2\), container.memswap_limit .* are"
    ):
        G.admit_spec(both, PLAIN, lambda: members)
    with pytest.raises(NotAllowedError, match="log_opts without log_driver"):
        G.admit_spec(DRIVERLESS, None, lambda: members)


def test_a_spec_within_what_every_member_reads_is_admitted() -> None:
    behind = {"a": NEW, "b": None}
    G.admit_spec(PLAIN, None, never)  # nothing newer used: the members are not even read
    G.admit_spec(MEMSWAP, None, None)  # no gate (a store without members' advertisements)
    G.admit_spec(MEMSWAP, None, lambda: {"a": NEW, "c": GATE_RELEASE})  # the gate's release reads it
    G.admit_spec(MEMSWAP, None, lambda: {})  # no member yet: this node's own reads
    # an update keeps a field the service already uses (committed before the member fell behind)
    G.admit_spec(dataclasses.replace(MEMSWAP, replicas=3), MEMSWAP, lambda: behind)
    with pytest.raises(NotAllowedError, match="memswap_limit"):
        G.admit_spec(MEMSWAP, PLAIN, lambda: behind)
    assert G.gate({"a": NEW, "b": GATE_RELEASE}).allows(G.SPEC, 2)
    assert G.member_reads({"update_node": 2, "spec": 5})[G.SPEC] == 5
    assert G.member_reads(None)[G.SPEC] == 1
