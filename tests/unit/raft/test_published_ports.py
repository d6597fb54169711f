"""Assigned ingress ports (``--publish 80``, Compose ``"80"``): decided by the FSM from 30000-32767, the
lowest free port, kept across updates, freed on rm, never one another service publishes; the traffic
inputs serve it on every node like a chosen ingress port."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2porch.errors import ConflictError
from p2porch.member.views import traffic_of
from p2porch.model import ServiceSpec, SubnetLease
from p2porch.raft import commands as C
from p2porch.raft.fsm import apply
from p2porch.raft.published_ports import DYNAMIC_PORTS, assign_ports, endpoint_ports
from p2porch.raft.state import EMPTY_STATE, ClusterState

AT = 100.0


def create(sid: str, name: str, *publish: object, **kw: object) -> bytes:
    spec = ServiceSpec.from_dict({"name": name, "image": "x", "publish": list(publish), **kw})
    return C.CreateService(at=AT, service_id=sid, spec=spec).encode()


def update(state: ClusterState, sid: str, **kw: object) -> bytes:
    svc = state.services[sid]
    spec = ServiceSpec.from_dict({**svc.spec.to_dict(), **kw})
    return C.UpdateService.of(svc, at=AT, spec=spec).encode()


def ok(state: ClusterState, cmd: bytes) -> ClusterState:
    new, result, _ = apply(state, cmd)
    assert result["ok"], result
    return new


def refused(state: ClusterState, cmd: bytes) -> dict:
    new, result, _ = apply(state, cmd)
    assert not result["ok"] and new is state, result
    return result


def started() -> ClusterState:
    return ok(EMPTY_STATE, C.InitCluster(at=AT, cluster_id="c1").encode())


def test_the_range_is_swarms() -> None:
    assert (DYNAMIC_PORTS.start, DYNAMIC_PORTS.stop - 1) == (30000, 32767)


def test_the_lowest_free_port_per_protocol_and_a_kept_one() -> None:
    taken = {("tcp", 30000), ("udp", 30001)}
    keys = [("tcp", 80), ("udp", 53), ("tcp", 81)]
    assert assign_ports(keys, {}, taken) == (("tcp", 80, 30001), ("tcp", 81, 30002), ("udp", 53, 30000))
    # a kept port stays even when a lower one is free; a kept port someone else took is replaced
    assert assign_ports([("tcp", 80)], {("tcp", 80): 30500}, taken) == (("tcp", 80, 30500),)
    assert assign_ports([("tcp", 80)], {("tcp", 80): 30000}, taken) == (("tcp", 80, 30001),)


def test_a_full_range_is_a_clear_error() -> None:
    small = range(30000, 30002)
    with pytest.raises(ConflictError, match="no free port left in 30000-30001") as caught:
        assign_ports([("tcp", 80)], {}, {("tcp", 30000), ("tcp", 30001)}, small)
    assert caught.value.field == "--publish"
    assert assign_ports([("udp", 80)], {}, {("tcp", 30000), ("tcp", 30001)}, small) == (("udp", 80, 30000),)


def test_create_update_and_remove_in_the_fsm() -> None:
    s = started()
    s = ok(s, create("s1", "web", "80"))
    s = ok(s, create("s2", "api", "published=30001,target=8080"))  # a chosen port inside the range
    s = ok(s, create("s3", "dns", "53/udp", "target=80", "9090:90"))
    assert s.services["s1"].assigned_ports == (("tcp", 80, 30000),)
    assert s.services["s2"].assigned_ports == ()
    assert s.services["s3"].assigned_ports == (("tcp", 80, 30002), ("udp", 53, 30000))
    assert s.services["s1"].spec.publish[0].published is None  # the spec keeps none (Swarm's EndpointSpec)
    # an update keeps the assignment; a new container port gets the lowest free one
    s = ok(s, update(s, "s1", image="y"))
    assert s.services["s1"].assigned_ports == (("tcp", 80, 30000),)
    s = ok(s, update(s, "s1", publish=["80", "81"]))
    assert s.services["s1"].assigned_ports == (("tcp", 80, 30000), ("tcp", 81, 30003))
    # the record survives a snapshot; replaying gives the same numbers
    again = ClusterState.from_dict(s.to_dict())
    assert again.services["s1"].assigned_ports == s.services["s1"].assigned_ports
    # a chosen port that another service was assigned is refused (the race the API check cannot close)
    result = refused(s, update(s, "s2", publish=["30003:8080"]))
    assert result["error"] == "ConflictError" and result["field"] == "--publish"
    assert (
        "port '30003' (tcp) is already in use by service 'web' (s1) as an ingress port" in result["message"]
    )
    # rm frees it: the next service takes the lowest free port again
    s = ok(s, C.RemoveService(at=AT, service_id="s1").encode())
    s = ok(s, create("s4", "next", "80"))
    assert s.services["s4"].assigned_ports == (("tcp", 80, 30000),)
    # dropping the port drops the assignment
    s = ok(s, update(s, "s4", publish=["8081:80"]))
    assert s.services["s4"].assigned_ports == ()


def test_host_mode_without_a_number_is_assigned_nothing() -> None:
    s = ok(started(), create("s1", "web", "mode=host,target=80", {"target": 81}))
    assert s.services["s1"].assigned_ports == ()


def test_the_traffic_inputs_and_the_endpoint_view_serve_the_assigned_port() -> None:
    s = ok(started(), create("s1", "web", "80", "mode=host,target=81"))
    lease = SubnetLease("n1", "10.240.1.0/24")
    s = s.evolve(leases={"n1": lease})
    inputs = traffic_of(s, "n1", {})
    assert inputs is not None
    assert [(p.protocol, p.published, p.target) for p in inputs[0]] == [("tcp", 30000, 80)]
    views = endpoint_ports(s.services["s1"])
    assert [(v["published"], v["target"], v["mode"], v.get("assigned")) for v in views] == [
        (30000, 80, "ingress", True),
        (None, 81, "host", None),
    ]


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=1, max_size=40))
def test_assigned_ports_stay_distinct_over_creates_and_removes(steps: list[tuple[bool, int]]) -> None:
    s = started()
    for i, (add, pick) in enumerate(steps):
        live = sorted(s.services)
        used = {(p, n) for svc in s.services.values() for p, _, n in svc.assigned_ports}
        chosen = {
            (p.protocol, p.published) for v in s.services.values() for p in v.spec.publish if p.published
        }
        if add or not live:
            mine = ("tcp", 30000 + pick)
            if pick % 2 and mine in chosen:
                continue  # two chosen ports: the API's check refuses it (not the FSM's part)
            new, result, _ = apply(s, create(f"s{i}", f"n{i}", "80", f"{mine[1]}:90" if pick % 2 else "91"))
            assert result["ok"] or (result["field"] == "--publish" and mine in used), result
            s = new
        else:
            s = ok(s, C.RemoveService(at=AT, service_id=live[pick % len(live)]).encode())
        assigned = [(p, n) for svc in s.services.values() for p, _, n in svc.assigned_ports]
        chosen = {
            (p.protocol, p.published) for v in s.services.values() for p in v.spec.publish if p.published
        }
        assert len(set(assigned)) == len(assigned) and not set(assigned) & chosen
        assert all(n in DYNAMIC_PORTS for _, n in assigned)
        assert len(assigned) == 2 * sum(
            1 for v in s.services.values() if v.spec.publish[1].published is None
        ) + sum(1 for v in s.services.values() if v.spec.publish[1].published is not None)
