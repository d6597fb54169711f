"""The dump's bytes are ``packb`` of the head and the state's plain form, its head reads without decoding
the state, and a dump loads back to the same state (``dumps.encode_dump``, ``dumps.read_head``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack

from p2porch.model import ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft import dumps
from p2porch.raft.fsm import apply_batch, encode_batch
from p2porch.raft.state import EMPTY_STATE, ClusterState


def _packb(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _state() -> ClusterState:
    commands = [C.InitCluster(at=1.0, cluster_id="c1").encode()]
    for i in range(40):
        spec = ServiceSpec.from_dict({"name": f"web{i}", "image": "busybox", "replicas": 2})
        commands.append(C.CreateService(at=2.0, service_id=f"s{i}", spec=spec).encode())
    state, results, _ = apply_batch(EMPTY_STATE, encode_batch(commands))
    assert all(r["ok"] for r in results)
    return state


def test_a_dump_encodes_as_before_and_loads(tmp_path: Path) -> None:
    state = _state()
    head = {"format": 1, "last": [b"cmd", 9, 2], "prev": [b"cmd", 8, 2], "cluster": ["127.0.0.1:7946"]}
    encoded = dumps.encode_dump(head, state.to_dict())
    assert encoded == _packb(head | {"state": state.to_dict()})  # the format before pieces
    path = tmp_path / "raft.dump"
    path.write_bytes(encoded)
    assert dumps.read_head(path) == ((b"cmd", 8, 2), (b"cmd", 9, 2))
    body = msgpack.unpackb(path.read_bytes(), raw=False, strict_map_key=False)  # as RaftStore._read_dump
    loaded = ClusterState.from_dict(body["state"])
    assert loaded.to_dict() == state.to_dict() and len(loaded.services) == 40
