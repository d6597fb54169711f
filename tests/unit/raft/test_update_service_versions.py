"""``update_service`` is versioned so that a journal replays as it was applied: entries of version 0 (the
op-map layout) and 1 change a service's mode as they did when they were committed; only version 2, written
since the FSM refuses a change of mode, is refused (``service mode change is not allowed``)."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from p2porch.model import ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.wire import pack

AT = 1000.0
WEB = ServiceSpec.from_dict({"name": "web", "image": "busybox", "replicas": 2})
GLOBAL_WEB = ServiceSpec.from_dict({"name": "web", "image": "busybox", "mode": "global"})


@pytest.fixture
def state() -> ClusterState:
    s = EMPTY_STATE
    for cmd in (C.InitCluster(at=AT, cluster_id="c"), C.CreateService(at=AT, service_id="s1", spec=WEB)):
        s, result, _ = apply(s, cmd.encode())
        assert result["ok"], result
    return s


def to_global(version: int) -> bytes:
    """The bytes of an ``update_service`` making ``web`` global, as version ``version`` wrote them."""
    if version == 0:  # the op-map layout from before typed commands: the bookkeeping inside the spec
        return pack({"op": "update_service", "at": AT, "service_id": "s1", "spec": GLOBAL_WEB.to_dict()})
    frame: dict[str, Any] = msgpack.unpackb(
        C.UpdateService(at=AT, service_id="s1", spec=GLOBAL_WEB).encode(), raw=False
    )
    assert frame["v"] == 2  # what this code writes
    return pack({**frame, "v": version})


@pytest.mark.parametrize("version", [0, 1])
def test_an_entry_written_before_the_refusal_changes_the_mode_as_it_did(state, version):
    decoded = C.decode_command(to_global(version))
    assert isinstance(decoded, C.UpdateService) and decoded.keeps_mode is False
    new, result, _ = apply(state, to_global(version))
    assert result["ok"], result
    assert new.services["s1"].spec.mode == "global" and new.version == state.version + 1
    # written again (a snapshot's replay, a forwarded entry), it stays an entry that applies
    assert msgpack.unpackb(decoded.encode(), raw=False)["v"] == 1


def test_an_entry_of_version_2_is_refused_and_changes_nothing(state):
    assert C.decode_command(to_global(2)).keeps_mode is True
    new, result, _ = apply(state, to_global(2))
    assert not result["ok"]
    assert (result["error"], result["field"]) == ("NotAllowedError", "mode")
    assert result["message"].startswith("service mode change is not allowed")
    assert new is state


def test_a_version_2_update_that_keeps_the_mode_applies(state):
    same_mode = ServiceSpec.from_dict({"name": "web", "image": "busybox", "replicas": 5})
    new, result, _ = apply(state, C.UpdateService(at=AT, service_id="s1", spec=same_mode).encode())
    assert result["ok"], result
    assert new.services["s1"].spec.replicas == 5


def test_a_command_newer_than_its_own_version_is_refused_as_unreadable(state):
    frame = msgpack.unpackb(C.CreateService(at=AT, service_id="s2", spec=WEB).encode(), raw=False)
    new, result, _ = apply(state, pack({**frame, "v": 2}))  # create_service is at version 1
    assert (result["ok"], result["error"]) == (False, "WireError")
    assert "create_service version 2" in result["message"]
    assert new is state
    future = pack({**msgpack.unpackb(to_global(2), raw=False), "v": C.COMMAND_VERSION + 1})
    assert apply(state, future)[1]["error"] == "WireError"
