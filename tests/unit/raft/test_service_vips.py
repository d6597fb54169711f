"""Service VIPs are allocated by the FSM: deterministic, unique, kept across updates, freed on rm."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from p2porch.model import ServiceSpec
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.state import EMPTY_STATE, ClusterState
from p2porch.raft.vips import VIP_CIDR, allocate_vip

AT = 100.0


def create(sid: str, name: str, **kw: object) -> bytes:
    return C.CreateService(at=AT, service_id=sid, spec=ServiceSpec(name=name, image="x", **kw)).encode()  # type: ignore[arg-type]


def update(state: ClusterState, sid: str, **kw: object) -> bytes:
    svc = state.services[sid]
    spec = ServiceSpec.from_dict({**svc.spec.to_dict(), **kw})
    return C.UpdateService.of(svc, at=AT, spec=spec).encode()


def remove(sid: str) -> bytes:
    return C.RemoveService(at=AT, service_id=sid).encode()


def ok(state: ClusterState, cmd: bytes) -> ClusterState:
    new, result, _ = apply(state, cmd)
    assert result["ok"], result
    return new


def test_vip_lifecycle_create_update_switch_remove() -> None:
    s = ok(EMPTY_STATE, C.InitCluster(at=AT, cluster_id="c1").encode())
    s = ok(s, create("s1", "web"))
    s = ok(s, create("s2", "db", endpoint_mode="dnsrr"))
    vip = s.services["s1"].vip
    assert ipaddress.IPv4Address(vip) in ipaddress.IPv4Network(VIP_CIDR)
    assert s.services["s2"].vip == ""  # dnsrr: no virtual address
    # an update keeps the address; a switch to dnsrr drops it and back to vip allocates again
    s = ok(s, update(s, "s1", image="y"))
    assert s.services["s1"].vip == vip
    s = ok(s, update(s, "s1", endpoint_mode="dnsrr"))
    assert s.services["s1"].vip == ""
    s = ok(s, update(s, "s2", endpoint_mode="vip"))
    assert s.services["s2"].vip == allocate_vip("s2", ())
    # replaying the same log anywhere gives the same addresses; the record survives a snapshot
    again = ClusterState.from_dict(s.to_dict())
    assert again.services["s2"].vip == s.services["s2"].vip
    s = ok(s, remove("s2"))
    assert all(svc.vip != again.services["s2"].vip for svc in s.services.values())


def test_colliding_hash_slots_probe_to_a_free_address() -> None:
    first = allocate_vip("a", (), "10.9.0.0/29")
    assert allocate_vip("a", (first,), "10.9.0.0/29") != first
    full = [str(a) for a in ipaddress.IPv4Network("10.9.0.0/29").hosts()]
    assert allocate_vip("a", full, "10.9.0.0/29") == ""


@given(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=40, unique=True))
def test_every_live_service_has_a_distinct_vip(ids: list[str]) -> None:
    s = ok(EMPTY_STATE, C.InitCluster(at=AT, cluster_id="c1").encode())
    for i, sid in enumerate(ids):
        s = ok(s, create(sid, f"s{i}"))
    for sid in ids[::2]:
        s = ok(s, remove(sid))
    for i, sid in enumerate(ids[::2]):
        s = ok(s, create(sid + "-n", f"n{i}"))
    vips = [svc.vip for svc in s.services.values()]
    assert all(vips) and len(set(vips)) == len(vips)
