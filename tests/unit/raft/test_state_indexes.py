"""The FSM's O(1) write paths: name indexes kept step by step, sparse spec bodies that read back equal."""

from __future__ import annotations

import random

from p2porch.model import Node, ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState, copy_map

AT = 1000.0


def _ok(state: ClusterState, cmd: bytes) -> ClusterState:
    new, result, _ = apply(state, cmd)
    assert result["ok"], result
    return new


def _rebuilt(records: object) -> dict[str, str]:
    return {r.name: key for key, r in records.items()}  # type: ignore[attr-defined]


def test_incremental_name_indexes_equal_a_rebuild_after_every_write() -> None:
    rng = random.Random(7)
    s = _ok(EMPTY_STATE, C.InitCluster(at=AT, cluster_id="c1").encode())
    live_services: list[str] = []
    live_nodes: list[str] = []
    for step in range(300):
        roll = rng.random()
        if roll < 0.3 or not live_services:
            sid = f"s{step}"
            name = f"svc{rng.randrange(40)}"
            if s.service_by_name(name) is None:
                spec = ServiceSpec(name=name, image="busybox")
                s = _ok(s, C.CreateService(at=AT, service_id=sid, spec=spec).encode())
                live_services.append(sid)
        elif roll < 0.5:
            sid = live_services.pop(rng.randrange(len(live_services)))
            s = _ok(s, C.RemoveService(at=AT, service_id=sid).encode())
        elif roll < 0.6:
            svc = s.services[rng.choice(live_services)]
            new_spec = ServiceSpec(name=svc.name, image="other")
            s = _ok(s, C.UpdateService.of(svc, at=AT, spec=new_spec).encode())
        elif roll < 0.85 or not live_nodes:
            nid = f"id{step}"
            name = f"n{rng.randrange(40)}"
            if s.node_by_name(name) is None:
                node = Node(nid, name, f"10.0.{step // 250}.{step % 250 + 1}", 7947, 7946)
                s = _ok(s, C.AddNode(at=AT, node=node).encode())
                live_nodes.append(nid)
        else:
            nid = live_nodes.pop(rng.randrange(len(live_nodes)))
            s = _ok(s, C.RemoveNode(at=AT, node_id=nid).encode())
        assert dict(s._service_names) == _rebuilt(s.services)
        assert dict(s._node_names) == _rebuilt(s.nodes)
    assert live_services and live_nodes
    assert all(s.service_by_name(s.services[sid].name) is s.services[sid] for sid in live_services)


def test_copy_map_copies_the_dict_under_a_read_only_view() -> None:
    s = _ok(EMPTY_STATE, C.InitCluster(at=AT, cluster_id="c1").encode())
    s = _ok(s, C.AddNode(at=AT, node=Node("id1", "n1", "10.0.0.1", 7947, 7946)).encode())
    copied = copy_map(s.nodes)
    copied.clear()
    assert list(s.nodes) == ["id1"]


def test_sparse_spec_bodies_read_back_to_an_equal_spec() -> None:
    plain = ServiceSpec(name="web", image="busybox")
    assert plain.to_sparse_dict() == {"name": "web", "image": "busybox"}
    rich = ServiceSpec.from_dict(
        {
            "name": "api",
            "image": "nginx:1",
            "replicas": 3,
            "publish": ["8080:80"],
            "health": "true",
            "env": ["A=1"],
            "restart": {"condition": "on-failure", "max_attempts": 2},
            "update": {"parallelism": 2, "delay": "3s"},
            "stop_grace_period": "4s",
            "rebalance": True,
        }
    )
    sparse = rich.to_sparse_dict()
    assert set(sparse) < set(rich.to_dict())
    assert ServiceSpec.from_dict(sparse) == rich
    full = C.CreateService(at=AT, service_id="s1", spec=plain)
    decoded = C.decode_command(full.encode())
    assert decoded == full
    assert len(full.encode()) < 120  # the body names the two required fields only
