"""The dump encoder packs in pieces (one C call per entry near the top) yet writes exactly ``packb``'s bytes,
so the dump format is unchanged and a dump written before still loads (``dumps.pack_in_pieces``)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import msgpack
import pytest

from p2porch.model import ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft import dumps
from p2porch.raft.fsm import apply_batch, encode_batch
from p2porch.raft.state import EMPTY_STATE, ClusterState


def _packb(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _random_value(rng: random.Random, levels: int) -> Any:
    kind = rng.randrange(9 if levels > 0 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:  # every int width msgpack has: fixint, int8..int64, uint8..uint64
        return rng.choice([0, 1, -1, 127, 128, -33, 255, 256, -129, 65536, -(2**31) - 1, 2**32, 2**64 - 1])
    if kind == 3:
        return rng.choice(["", "x", "é" * 40, "s" * 300, "k" * 70000])
    if kind == 4:
        return rng.choice([b"", b"\x00\xff", bytes(300), bytes(70000)])
    if kind == 5:
        return rng.choice([0.5, -1e300])
    if kind == 6:
        return rng.choice([[], {}, ()])
    size = rng.choice([1, 3, 15, 16, 17])  # fixmap/fixarray up to 15, map16/array16 from 16
    if kind == 7:
        return [_random_value(rng, levels - 1) for _ in range(size)]
    return {f"k{i}" if i % 3 else i: _random_value(rng, levels - 1) for i in range(size)}


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 6])
def test_pieces_are_byte_for_byte_packb(depth: int) -> None:
    rng = random.Random(depth)
    values = [None, 7, "s", b"b", [], {}, (1, (2, [3])), {"a": {"b": {"c": [1, {"d": None}]}}}]
    values += [_random_value(rng, 4) for _ in range(30)]
    values.append({"big": list(range(70000)), "map": {str(i): i for i in range(70000)}})  # array32/map32
    for value in values:
        packed = dumps.pack_in_pieces(value, depth)
        assert packed == _packb(value)
        assert msgpack.unpackb(packed, raw=False, strict_map_key=False) == msgpack.unpackb(
            _packb(value), raw=False, strict_map_key=False
        )


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
